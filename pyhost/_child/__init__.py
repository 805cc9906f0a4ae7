"""The child side of the process boundary: the only code that runs in the child.

One concern per module:

- :mod:`.entry` — the entry points (multiprocessing, another interpreter) and
  the order of startup: environment, bind, load, serve;
- :mod:`.control` — the thread that waits on the parent (``Stop``, or its death);
- :mod:`.binding` — the listening socket, bound by the child itself so a bind
  failure arrives as an errno;
- :mod:`.loading`, :mod:`.resolve` and :mod:`.paths` — importing the target and
  finding the app;
- :mod:`.failures` — classifying what went wrong into plain error records;
- :mod:`.backends` — one module per server (werkzeug, waitress, gunicorn, uvicorn).

Everything here imports only the standard library and its siblings
:mod:`pyhost.protocol` and :mod:`pyhost._meta` at import time (servers are
imported when used), so another interpreter (``HostConfig.python``) can load
this package by path without pyhost's dependencies: see :data:`BOOTSTRAP`.
"""
from .binding import classify_bind_error as _classify_bind_error  # noqa: F401 - older name
from .entry import exec_main, mp_main
from .failures import ShipError, app_traceback, classify_load_error
from .loading import load_app
from .resolve import unship as _unship  # noqa: F401 - older name

__all__ = ["mp_main", "exec_main", "load_app", "classify_load_error", "app_traceback",
           "ShipError", "BOOTSTRAP", "PACKAGE_DIR"]

import os as _os

#: The directory of pyhost's own modules (``pyhost/``).
PACKAGE_DIR = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))

#: ``python -c BOOTSTRAP PACKAGE_DIR FD`` runs the child under another interpreter,
#: where pyhost may not be installed: ``pyhost/`` becomes a private package
#: (its ``__init__`` is not run, so none of the parent side's dependencies are
#: needed) and the child's modules are imported from it by their relative names.
BOOTSTRAP = (
    "import importlib, sys, types\n"
    "p = types.ModuleType('_pyhost_child_pkg'); p.__path__ = [sys.argv[1]]\n"
    "sys.modules['_pyhost_child_pkg'] = p\n"
    "importlib.import_module('_pyhost_child_pkg._child.entry').exec_main(int(sys.argv[2]))\n"
)
