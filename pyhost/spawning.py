"""How a child process is made: start-method contexts and the ``__main__`` check.

:func:`get_context` (forkserver preloads) and :func:`check_main_module`. The
child's own entry points live in :mod:`pyhost._child` (multiprocessing's
target is ``pyhost._child.mp_main``; another interpreter runs
``pyhost._child.BOOTSTRAP``). Standard library only at import time: a spawn
child re-running a script without the ``__main__`` guard reaches
:func:`check_main_module` too.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from typing import Any

__all__ = ["get_context", "check_main_module"]

_PRELOAD = ["pyhost._child", "pyhost._child.backends.werkzeug", "werkzeug.serving",
            "werkzeug.debug", "flask", "importlib.metadata"]
_preload_lock = threading.Lock()
_preload_set = False


def get_context(method: str) -> Any:
    """The multiprocessing context; forkserver gets Werkzeug, Flask and pyhost preloaded."""
    global _preload_set
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        with _preload_lock:
            if not _preload_set:
                # Only takes effect if the forkserver is not running yet; then
                # every child forks from a server that already imported these.
                ctx.set_forkserver_preload(_PRELOAD)
                _preload_set = True
    return ctx


def check_main_module(method: str) -> None:
    """Refuse, before any process starts, a ``__main__`` that spawn children cannot re-run.

    Under spawn and forkserver, multiprocessing re-imports the parent's
    ``__main__`` file in every child. A program read from standard input
    (``python - < script.py``) has ``__file__ == "<stdin>"``: every child would
    die in multiprocessing's own bootstrap, before pyhost's code runs.
    """
    if method == "fork":
        return
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        _refuse_in_bootstrap(method)
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return  # python -m: re-imported by name
    path = getattr(main, "__file__", None)
    if path is None:
        return  # a REPL or a notebook: nothing is re-imported
    base = getattr(multiprocessing.process, "ORIGINAL_DIR", None) or os.getcwd()
    if not os.path.isfile(os.path.join(base, path)):
        from .errors import SpawnError

        raise SpawnError(
            "this program's __main__ (%r) is not a file, and %s children re-import the main "
            "module: every child would fail before loading the app" % (path, method),
            troubleshooting=[
                "Run the program from a file (python script.py) or as a module (python -m pkg)",
                "Or use start_method='fork' (POSIX), which does not re-import __main__",
            ],
            details={"main": path, "start_method": method},
        )


def _refuse_in_bootstrap(method: str) -> None:
    """A host started while a spawn child re-imports ``__main__``: say so in a few lines.

    This runs in the child multiprocessing is preparing: a script that starts
    a host at module level, without the ``if __name__ == "__main__":`` guard.
    Uncaught, the error ends that child, and Python would print its whole
    traceback through multiprocessing's and runpy's frames (about 75 lines,
    and the parent's error follows). The child prints one line instead; the
    parent's error tells the whole story.
    """
    from .errors import SpawnError

    message = ("this program starts a host while a %s child re-imports its __main__ module "
               "(a script without the if __name__ == '__main__': guard); pyhost starts no "
               "process from there" % method)
    error = SpawnError(message, details={"reason": "bootstrap"})
    previous = sys.excepthook

    def excepthook(kind: Any, value: Any, tb: Any) -> None:
        if value is error:
            sys.stderr.write("pyhost: %s\n" % message)
        else:
            previous(kind, value, tb)

    sys.excepthook = excepthook
    raise error
