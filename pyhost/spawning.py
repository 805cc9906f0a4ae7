"""How a child process is made: start-method contexts, the ``__main__`` check, the
entry points.

Parent side: :func:`get_context` (forkserver preloads) and
:func:`check_main_module`. Child side: :func:`child_main`, multiprocessing's
target, which registers the stack-dump signal first, then hands over to
:mod:`pyhost._child` (another interpreter runs ``pyhost._child.BOOTSTRAP``).
This module imports only the standard library and :mod:`pyhost.protocol` at
import time: every spawn child imports it.
"""
from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any

from . import protocol

__all__ = ["get_context", "check_main_module", "child_main", "register_stacks_signal"]

_PRELOAD = ["pyhost._child", "pyhost._child.backends.werkzeug", "pyhost.spawning",
            "werkzeug.serving", "werkzeug.debug", "flask", "importlib.metadata"]
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


# ----------------------------------------------------------------- child side
def register_stacks_signal() -> None:
    """Child side: ``protocol.STACKS_SIGNAL`` writes every thread's stack to fd 2.

    ``faulthandler`` writes from the C signal handler, so the dump arrives
    even while the app holds the GIL in C code (a regex backtracking for
    minutes). fd 2 is the output pipe by the time anyone sends the signal
    (``_child`` redirects it first thing), so the dump lands in ``host.logs()``.
    """
    signum = getattr(signal, protocol.STACKS_SIGNAL, None)
    if signum is None:
        return
    try:
        faulthandler.register(signum, file=2, all_threads=True)
    except (RuntimeError, ValueError, OSError):
        pass


def child_main(spec: Any, conn: Any, output: Any) -> None:
    """Child side: multiprocessing's target under fork, spawn and forkserver."""
    register_stacks_signal()
    from . import _child

    _child.mp_main(spec, conn, output)
