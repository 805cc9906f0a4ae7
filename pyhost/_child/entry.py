"""Entry points and the order of startup (child side).

The parent hands over a plain ``spec`` dict and two pipe ends. The child:

1. points fds 1 and 2 at the output pipe (so C-level output reaches the parent too);
2. applies the parent's environment as of ``start()`` plus ``env`` (a forkserver
   started earlier would otherwise hand out a stale environment);
3. binds the listening socket itself (:mod:`.binding`), so EADDRINUSE arrives as an errno;
4. imports the target (:mod:`.loading`), classifying any failure (:mod:`.failures`);
5. reports ``Loaded`` and, once the chosen backend (:mod:`.backends`) accepts
   connections, ``Bound`` over the control pipe, and serves until asked to stop
   (:mod:`.control`) or until the parent dies.
"""
import faulthandler
import os
import signal
import sys
import time
import traceback

from .. import protocol
from .backends import choose as choose_backend
from .binding import bind, classify_bind_error
from .control import Control
from .failures import APP_LOAD_ERROR, CannotServe, app_traceback, classify_load_error, record
from .loading import app_kind, load_app

__all__ = ["mp_main", "exec_main"]


# --------------------------------------------------------------------------
# Entry points (child side)
# --------------------------------------------------------------------------
def mp_main(spec, conn, output):
    """Entry point under multiprocessing (fork, spawn, forkserver)."""
    _register_stacks_signal()
    # First word: pyhost's code runs. A child that dies without it died in
    # multiprocessing's own bootstrap (re-importing __main__, unpickling).
    try:
        conn.send(protocol.encode(protocol.Hello(os.getpid())))
    except OSError:
        os._exit(0)  # the parent is already gone (Ctrl-C during start)
    _redirect_output(output.fileno())
    # pyhost starts the child daemonic (multiprocessing ends it at the parent's
    # exit), but the app may start processes of its own (a Pool for inference).
    import multiprocessing

    multiprocessing.current_process().daemon = False
    output.close()
    if "logging" in sys.modules:
        # Under fork the parent's root handlers came along (a log file, pytest's
        # capture): the app's and Werkzeug's logs must go to the child's stderr.
        sys.modules["logging"].root.handlers.clear()
    parent = _parent_sentinel()
    _serve_child(spec, conn, parent)


def exec_main(conn_fd):
    """Entry point when another interpreter runs this file (HostConfig.python).

    fds 1 and 2 are already the output pipe (set by the parent's Popen); the
    spec arrives as the first message on the control connection.
    """
    from multiprocessing.connection import Connection

    _register_stacks_signal()
    conn = Connection(conn_fd)
    spec = conn.recv()
    conn.send(protocol.encode(protocol.Hello(os.getpid())))
    _serve_child(spec, conn, None)


def _parent_sentinel():
    try:
        import multiprocessing

        parent = multiprocessing.parent_process()
        return parent.sentinel if parent is not None else None
    except (AttributeError, ValueError):
        return None


def _redirect_output(fd):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    # Under fork the streams are whatever the parent had (pytest's capture file,
    # a Jupyter OutStream) and may not write to fds 1 and 2 at all.
    sys.stdout = _line_stream(1, sys.stdout)
    sys.stderr = _line_stream(2, sys.stderr)


def _line_stream(fd, current):
    """``current`` if it writes to ``fd`` (made line-buffered), else a new stream on ``fd``."""
    try:
        if current.fileno() == fd:
            current.reconfigure(line_buffering=True)
            return current
    except (AttributeError, ValueError, OSError):
        pass
    return open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace",
                closefd=False)


def _serve_child(spec, conn, parent_sentinel):
    # The parent orchestrates shutdown; a terminal Ctrl-C reaches the whole
    # process group, and the child must not die before the parent asks it to.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _enable_faulthandler()
    _apply_environment(spec)
    control = Control(conn, parent_sentinel)
    control.start()

    sock = None
    try:
        sock = bind(spec["host"], spec["port"])
    except OSError as exc:
        _report_failure(control, classify_bind_error(exc, spec))

    started = time.monotonic()
    # As under `flask run`: a module-level app.run() (no __main__ guard) prints
    # a hint and returns instead of serving on its own port inside the import.
    cli_flag = os.environ.get("FLASK_RUN_FROM_CLI")
    os.environ["FLASK_RUN_FROM_CLI"] = "true"
    try:
        app = load_app(spec["target"])
        kind = app_kind(app)
        backend = choose_backend(spec.get("server"), kind, spec.get("workers", 1),
                                 spec["target"]["label"])
    except SystemExit as exc:
        # sys.exit() while importing: a crash with that exit code, which the
        # parent may retry (the app may be waiting on something transient).
        code = exc.code if isinstance(exc.code, int) else 1
        sys.stderr.write(
            "pyhost: SystemExit(%r) raised while loading %s\n%s"
            % (exc.code, spec["target"].get("label"), app_traceback(exc))
        )
        sys.stderr.flush()
        os._exit(code)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, typed
        if not isinstance(exc, CannotServe):
            sys.stderr.write(app_traceback(exc))
        _report_failure(control, classify_load_error(exc, spec["target"]))
    if cli_flag is None:
        os.environ.pop("FLASK_RUN_FROM_CLI", None)
    else:
        os.environ["FLASK_RUN_FROM_CLI"] = cli_flag
    control.send(protocol.Loaded(time.monotonic() - started, kind))

    run = _Run(spec, control, sock.getsockname()[1], backend.NAME)
    try:
        backend.serve(app, kind, sock, run)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc()
        if not run.is_ready:
            _report_failure(control, record(
                APP_LOAD_ERROR, "could not start the %s server: %s: %s"
                % (backend.NAME, type(exc).__name__, exc), exc, server=backend.NAME))
        sys.stderr.flush()
        os._exit(1)
    control.send(protocol.Stopped())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class _Run:
    """What a backend needs from the child while it serves (see :mod:`.backends`)."""

    def __init__(self, spec, control, port, name):
        self.spec = spec
        self.control = control
        self.port = port
        self.name = name
        self.is_ready = False
        self.shutdown_timeout = float(spec.get("shutdown_timeout") or 5.0)

    def ready(self):
        """The server accepts connections: push ``Bound`` (readiness) to the parent."""
        if not self.is_ready:
            self.is_ready = True
            self.control.send(protocol.Bound(self.port, self.name))

    def serving(self, stop, abandon=None):
        self.control.serving(stop, abandon)

    def send(self, message):
        self.control.send(message)


def _register_stacks_signal():
    """``protocol.STACKS_SIGNAL`` writes every thread's stack to fd 2.

    Registered before the child says Hello: from then on the parent may send
    it (``ChildProcess.dump_stacks()``, before it kills a hung child), and the
    signal's default action would end the child. fd 2 is the output pipe by
    the time the signal can arrive, so the dump lands in ``host.logs()``;
    faulthandler writes from the C handler, so it works even while the app
    holds the GIL in C code.
    """
    signum = getattr(signal, protocol.STACKS_SIGNAL, None)
    if signum is None:
        return
    try:
        faulthandler.register(signum, file=2, all_threads=True)
    except (RuntimeError, ValueError, OSError):
        pass


def _enable_faulthandler():
    try:
        faulthandler.enable()  # fatal errors (a segfault in C code) show a stack too
    except (RuntimeError, ValueError, OSError, AttributeError):
        pass


def _report_failure(control, found):
    sys.stderr.flush()
    control.send(protocol.Failed(found))
    sys.stdout.flush()
    os._exit(protocol.EXIT_REPORTED)


def _apply_environment(spec):
    environ = spec.get("environ")
    if environ is not None and environ != os.environ:
        # Only the differences: a forked child usually has this environment
        # already, and clear() + update() (a putenv per variable, on pages
        # shared copy-on-write with the parent) cost ~0.5 ms of each start.
        for key in [key for key in os.environ if key not in environ]:
            del os.environ[key]
        for key, value in environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
    cwd = spec.get("cwd")
    if cwd:
        try:
            os.chdir(cwd)
        except OSError:
            pass
    for entry in reversed(spec.get("sys_path") or ()):
        if entry not in sys.path:
            sys.path.insert(0, entry)
