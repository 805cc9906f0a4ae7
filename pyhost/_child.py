"""The child side of the process boundary: the only code that runs in the child.

The parent hands over a plain ``spec`` dict and two pipe ends. The child:

1. points fds 1 and 2 at the output pipe (so C-level output reaches the parent too);
2. applies the parent's environment as of ``start()`` plus ``env`` (a forkserver
   started earlier would otherwise hand out a stale environment);
3. binds the listening socket itself, so EADDRINUSE arrives as an errno
   (``werkzeug.serving.make_server`` would print and ``sys.exit(1)``);
4. imports the target, classifying any failure into an ``ErrorType`` value;
5. reports ``Loaded`` and ``Bound`` (:mod:`pyhost.protocol`) over the control pipe and
   serves with Werkzeug until asked to stop, or until the parent dies.

Messages are :mod:`pyhost.protocol`'s, as plain tuples: errors cross as dicts, never as pickled
exceptions. This module imports nothing from pyhost and only the standard
library at import time, so a different interpreter (``HostConfig.python``) can
run it as a plain file without pyhost's own dependencies installed.
"""
import errno
import faulthandler
import importlib
import importlib.util
import inspect
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback

if __package__ == "pyhost":
    from . import protocol
else:  # another interpreter loaded this file by path (HostConfig.python): its sibling too
    _spec = importlib.util.spec_from_file_location(
        "pyhost_protocol", os.path.join(os.path.dirname(os.path.abspath(__file__)), "protocol.py"))
    protocol = importlib.util.module_from_spec(_spec)
    sys.modules["pyhost_protocol"] = protocol
    _spec.loader.exec_module(protocol)

PROBE_AGENT = protocol.PROBE_AGENT
EXIT_REPORTED = protocol.EXIT_REPORTED

# ErrorType values, spelled out: this module must not import pyhost.errors.
SCRIPT_NOT_FOUND = "SCRIPT_NOT_FOUND"
DEPENDENCY_ERROR = "DEPENDENCY_ERROR"
APP_LOAD_ERROR = "APP_LOAD_ERROR"
PORT_IN_USE = "PORT_IN_USE"
NETWORK_ERROR = "NETWORK_ERROR"
PROCESS_SPAWN_ERROR = "PROCESS_SPAWN_ERROR"



class TargetNotFound(Exception):
    """The target's module, file or attribute does not exist."""


class NotWSGI(Exception):
    """The target resolved to something that is not a WSGI app."""


class ShipError(Exception):
    """A by-value callable could not be rebuilt in the child."""

    details: dict = {}  # e.g. the cloudpickle versions when they differ


# --------------------------------------------------------------------------
# Entry points (child side)
# --------------------------------------------------------------------------
def mp_main(spec, conn, output):
    """Entry point under multiprocessing (fork, spawn, forkserver)."""
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
    try:
        faulthandler.enable()
    except (RuntimeError, ValueError, OSError):
        pass
    _apply_environment(spec)
    control = _Control(conn, parent_sentinel)
    control.start()

    sock = None
    try:
        sock = _bind(spec["host"], spec["port"])
    except OSError as exc:
        _report_failure(control, _classify_bind_error(exc, spec))
    port = sock.getsockname()[1]

    started = time.monotonic()
    # As under `flask run`: a module-level app.run() (no __main__ guard) prints
    # a hint and returns instead of serving on its own port inside the import.
    cli_flag = os.environ.get("FLASK_RUN_FROM_CLI")
    os.environ["FLASK_RUN_FROM_CLI"] = "true"
    try:
        app = load_app(spec["target"])
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
        sys.stderr.write(app_traceback(exc))
        _report_failure(control, classify_load_error(exc, spec["target"]))
    if cli_flag is None:
        os.environ.pop("FLASK_RUN_FROM_CLI", None)
    else:
        os.environ["FLASK_RUN_FROM_CLI"] = cli_flag
    control.send(protocol.Loaded(time.monotonic() - started))

    try:
        server = _make_server(spec, sock, app)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc()
        _report_failure(control, _record(APP_LOAD_ERROR, "could not create the server: %s" % exc,
                                         exc))
    sock.close()  # the server holds its own duplicate
    workers = _Workers(server, spec.get("workers", 1) - 1) if spec.get("workers", 1) > 1 else None
    control.serving(server)
    control.send(protocol.Bound(port))
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if workers is not None:
            workers.stop()
    control.send(protocol.Stopped())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _report_failure(control, record):
    sys.stderr.flush()
    control.send(protocol.Failed(record))
    sys.stdout.flush()
    os._exit(EXIT_REPORTED)


class _Control(threading.Thread):
    """Waits on the control pipe and the parent's sentinel; stops the server.

    Runs in the child. A ``Stop`` message shuts the server down so that
    in-flight requests finish; EOF on the pipe or the parent's sentinel firing
    means the parent is gone, and the child must not outlive it.
    """

    def __init__(self, conn, parent_sentinel):
        super().__init__(name="pyhost-child-control", daemon=True)
        self.conn = conn
        self.parent_sentinel = parent_sentinel
        self.server = None
        self.lock = threading.Lock()
        self.stopping = False

    def send(self, message):
        with self.lock:
            try:
                self.conn.send(protocol.encode(message))
            except (OSError, EOFError, ValueError):
                pass  # the parent is gone; the watcher ends us

    def serving(self, server):
        with self.lock:
            self.server = server
            stop_now = self.stopping
        if stop_now:
            self._shutdown()

    def run(self):
        from multiprocessing.connection import wait

        waitables = [self.conn]
        if self.parent_sentinel is not None:
            waitables.append(self.parent_sentinel)
        while True:
            ready = wait(waitables)
            if self.parent_sentinel is not None and self.parent_sentinel in ready:
                os._exit(0)  # the parent died: no orphans
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                os._exit(0)
            try:
                stop = isinstance(protocol.decode(message), protocol.Stop)
            except protocol.ProtocolError:
                stop = False
            if stop:
                with self.lock:
                    self.stopping = True
                    server = self.server
                if server is None:
                    os._exit(0)  # still loading: nothing to finish gracefully
                self._shutdown()
                return

    def _shutdown(self):
        server = self.server
        # serve_forever() checks its shutdown flag between select() calls of
        # up to 0.5 s; poke the socket so the flag is seen at once.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        address = server.socket.getsockname()
        while stopper.is_alive():
            try:
                socket.create_connection(protocol.connect_address(address), timeout=0.2).close()
            except OSError:
                pass
            stopper.join(0.05)


class _Workers:
    """Extra worker processes forked from this child, serving the same socket.

    The child that pyhost started stays the one process the parent watches: if
    a worker dies, the child ends the whole group and exits with the worker's
    code, so the parent sees one crash and restarts by its policy. Workers exit
    on their own when this process dies (EOF on the ``alive`` pipe).
    """

    def __init__(self, server, count):
        import warnings

        alive_r, self.alive_w = os.pipe()
        self.pids = []
        self.stopping = False
        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(count):
            with warnings.catch_warnings():
                # 3.12+ warns about fork() with threads running; only the idle
                # control thread exists here and workers never use what it holds.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                os.close(self.alive_w)
                _worker_main(server, alive_r)
            self.pids.append(pid)
        os.close(alive_r)
        threading.Thread(target=self._reap, name="pyhost-child-reaper", daemon=True).start()

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return
            if pid in self.pids:
                self.pids.remove(pid)
            if self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            how = "was killed by signal %d" % -code if code < 0 else "exited with code %d" % code
            sys.stderr.write("pyhost: worker pid %d %s; ending the worker group\n" % (pid, how))
            sys.stderr.flush()
            self._signal_all(signal.SIGKILL)
            os._exit(code if code > 0 else 1)

    def _signal_all(self, signum):
        for pid in list(self.pids):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout=4.0):
        self.stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pids and time.monotonic() < deadline:
            time.sleep(0.02)
        self._signal_all(signal.SIGKILL)


def _worker_main(server, alive_r):
    """A forked worker: serve until SIGTERM (graceful) or until the child dies."""
    def watch_master():
        while os.read(alive_r, 1):
            pass
        os._exit(0)

    def graceful(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    threading.Thread(target=watch_master, daemon=True).start()
    signal.signal(signal.SIGTERM, graceful)
    code = 0
    try:
        # A short poll interval: SIGTERM's shutdown is seen within 0.1 s.
        server.serve_forever(poll_interval=0.1)
        server.server_close()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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


# --------------------------------------------------------------------------
# Socket and server
# --------------------------------------------------------------------------
def _bind(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host not in ("", "0.0.0.0", "::") and not _is_literal_ip(host):
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Not SO_REUSEPORT: two servers on one port must be an error, but a
        # restart must not wait for the old socket's TIME_WAIT.
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _is_literal_ip(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def _make_server(spec, sock, app):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class RequestHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            # pyhost's own probes would add a line to the app's log every
            # liveness_interval; the parent keeps their results in HealthStats.
            if self.headers is not None and self.headers.get("User-Agent") == PROBE_AGENT:
                return
            super().log_request(*args, **kwargs)

    if spec.get("debug"):
        from werkzeug.debug import DebuggedApplication

        if hasattr(app, "debug"):
            app.debug = True
        app = DebuggedApplication(app, evalex=True)
    # The bound address, not the name: werkzeug picks the socket family from
    # it when wrapping fd= ("localhost" may have resolved to ::1).
    server = make_server(sock.getsockname()[0], sock.getsockname()[1], app, threaded=True,
                         request_handler=RequestHandler, fd=sock.fileno())
    # Let in-flight requests finish on shutdown (the parent escalates to
    # SIGTERM/SIGKILL after shutdown_timeout if one never does).
    server.daemon_threads = False
    server.block_on_close = True
    return server


def _classify_bind_error(exc, spec):
    port = spec["port"]
    host = spec["host"]
    if exc.errno == errno.EADDRINUSE:
        record = _record(
            PORT_IN_USE,
            protocol.port_in_use_message(port, "another program (%s:%d)" % (host, port)), exc,
            with_traceback=False)
    elif exc.errno == errno.EACCES:
        record = _record(NETWORK_ERROR, "Permission denied binding %s:%d (ports below 1024 "
                         "need privileges)" % (host, port), exc, with_traceback=False)
    elif exc.errno == errno.EADDRNOTAVAIL:
        record = _record(NETWORK_ERROR, "Cannot bind %s:%d: the address is not available on "
                         "this machine" % (host, port), exc, with_traceback=False)
    else:
        record = _record(NETWORK_ERROR, "Cannot bind %s:%d: %s" % (host, port, exc), exc,
                         with_traceback=False)
    record["port"] = port
    record["details"].update(host=host, errno=exc.errno)
    return record


# --------------------------------------------------------------------------
# Loading the target
# --------------------------------------------------------------------------
def load_app(target):
    """Import ``target`` (a dict made by ``pyhost.targets``) and return a WSGI app."""
    kind = target["kind"]
    if kind == "callable":
        factory = _unship(target)
        if _is_wsgi_signature(factory):
            return factory  # FlaskHost(wsgi_function): the app itself, not a factory
        return as_wsgi(factory(), target["label"])
    module = _import_target_module(target)
    expr = target.get("attr")
    if expr is None:
        return find_best_app(module, target["label"])
    obj = _resolve_attr(module, expr, target["label"])
    call = target.get("call")
    if call is not None:
        args, kwargs = call
        if not callable(obj):
            raise TargetNotFound("%s: %r is not callable" % (target["label"], expr))
        obj = obj(*args, **kwargs)
    elif _is_factory(obj):
        obj = obj()
    return as_wsgi(obj, target["label"])


def _unship(target):
    payload = target["payload"]
    details = {}
    try:
        if target.get("format") == "cloudpickle":
            import cloudpickle

            theirs, ours = target.get("cloudpickle"), getattr(cloudpickle, "__version__", None)
            if theirs and ours and theirs != ours:
                details = {"cloudpickle_parent": theirs, "cloudpickle_child": ours,
                           "pin": "%s -m pip install cloudpickle==%s" % (sys.executable, theirs)}
        return pickle.loads(payload)
    except ModuleNotFoundError:
        raise
    except Exception as exc:
        mismatch = (" (pickled with cloudpickle %(cloudpickle_parent)s, this interpreter has "
                    "%(cloudpickle_child)s: %(pin)s)" % details) if details else ""
        error = ShipError("could not rebuild %s in the child: %s: %s%s"
                          % (target["label"], type(exc).__name__, exc, mismatch))
        error.details = details
        raise error from exc


def _import_target_module(target):
    if target["kind"] == "file":
        path = target["module"]
        if not os.path.isfile(path):
            raise TargetNotFound("no such file: %s" % path)
        root, name = _module_name_for_file(path)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith((exc.name or "?") + "."):
                # Not importable by name (e.g. a dash in the file name): load by path.
                return _load_file(name, path)
            raise
        if not _is_file_of(module, path):
            # The name is taken by another module: one this process already imported
            # (socket.py, inspect.py: the child uses them) or one imported before a fork.
            return _load_file("pyhost_app_" + name.replace(".", "_"), path)
        return module
    return importlib.import_module(target["module"])


def _load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_file_of(module, path):
    filename = getattr(module, "__file__", None)
    return bool(filename) and os.path.realpath(filename) == os.path.realpath(path)


def _module_name_for_file(path):
    """Like Flask's prepare_import: walk up packages to find the import root."""
    path = os.path.realpath(path)
    directory, filename = os.path.split(path)
    parts = [os.path.splitext(filename)[0]]
    if parts[0] == "__init__":
        parts = []
        directory, package = os.path.split(directory)
        parts.append(package)
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.append(package)
    return directory, ".".join(reversed(parts))


def _resolve_attr(module, expr, label):
    obj = module
    for part in expr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            hint = ""
            if module.__name__ in ("__main__", "__mp_main__"):
                hint = ("; this child re-ran the parent's script without its "
                        "`if __name__ == '__main__':` block, so names defined there do not "
                        "exist here: define the app at the script's top level, or pass a "
                        "factory function")
            raise TargetNotFound(
                "%s: module %r has no attribute %r%s" % (label, module.__name__, expr, hint)
            ) from None
    return obj


def _is_factory(obj):
    """A function that takes no arguments is an app factory, not a WSGI app."""
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return False
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in parameters
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return not required


def _is_wsgi_signature(obj):
    """Callable as ``obj(environ, start_response)`` but not as ``obj()``."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind()
        return False
    except TypeError:
        pass
    try:
        signature.bind(None, None)
        return True
    except TypeError:
        return False


def find_best_app(module, label):
    """Like ``flask --app module``: ``app``/``application``, one Flask app, or a factory."""
    for name in ("app", "application"):
        obj = getattr(module, name, None)
        if obj is not None and _wsgi_or_none(obj) is not None:
            return _wsgi_or_none(obj)
    candidates = []
    for value in vars(module).values():
        if _is_flask_app(value) and value not in candidates:
            candidates.append(value)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise TargetNotFound("%s: several Flask apps found; name one, e.g. '%s:app'"
                             % (label, module.__name__))
    for name in ("create_app", "make_app"):
        factory = getattr(module, name, None)
        if callable(factory):
            return as_wsgi(factory(), "%s:%s()" % (module.__name__, name))
    raise TargetNotFound(
        "%s: no 'app', 'application', Flask instance or 'create_app' factory in module %r; "
        "name the attribute, e.g. '%s:app'" % (label, module.__name__, module.__name__)
    )


def _is_flask_app(obj):
    return any(cls.__name__ == "Flask" and cls.__module__.startswith("flask")
               for cls in type(obj).__mro__)


def _wsgi_or_none(obj):
    server = getattr(obj, "server", None)  # Dash keeps its Flask app in .server
    if server is not None and callable(server) and not inspect.isroutine(obj):
        return server
    if callable(obj):
        return obj
    return None


def as_wsgi(obj, label):
    app = _wsgi_or_none(obj)
    if app is None:
        raise NotWSGI("%s returned %s, which is not a WSGI app (a Flask app, a Dash app or "
                      "a callable(environ, start_response))" % (label, type(obj).__name__))
    return app


# --------------------------------------------------------------------------
# Classifying failures (plain records, never pickled exceptions)
# --------------------------------------------------------------------------
def _record(error_type, message, exc=None, with_traceback=True, **details):
    record = {"type": error_type, "message": message, "details": details}
    if exc is not None and with_traceback:
        record["remote_traceback"] = app_traceback(exc)
    return record


def _is_app_frame(frame):
    """False for pyhost's loader and importlib's machinery: noise in the app's traceback."""
    filename = frame.filename
    return not (os.path.abspath(filename) == os.path.abspath(__file__)
                or filename.startswith("<frozen") or os.sep + "importlib" + os.sep in filename
                or frame.name == "pyhost_shipped_factory")  # pyhost.hosted's by-value wrapper


def app_traceback(exc):
    """The traceback as ``python app.py`` would show it: the app's frames, not the loader's."""
    formatted = traceback.TracebackException.from_exception(exc)
    seen = set()
    todo = [formatted]
    while todo:  # the exception and the ones it was raised from / during
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [frame for frame in current.stack if _is_app_frame(frame)])
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return "".join(formatted.format())


def classify_load_error(exc, target):
    """Decide SCRIPT_NOT_FOUND vs DEPENDENCY_ERROR vs APP_LOAD_ERROR for ``exc``."""
    label = target["label"]
    own = target.get("module") if target["kind"] != "file" else None
    if target["kind"] == "file":
        own = _module_name_for_file(target["module"])[1]
    if isinstance(exc, TargetNotFound):
        return _record(SCRIPT_NOT_FOUND, "App not found: %s" % exc, None, target=label)
    if isinstance(exc, ShipError):
        return _record(PROCESS_SPAWN_ERROR, str(exc), exc, target=label, **exc.details)
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        missing = exc.name
        if own and (own == missing or own.startswith(missing + ".")):
            if target["kind"] == "callable":
                return _record(PROCESS_SPAWN_ERROR,
                               "%s lives in module %r, which the child cannot import"
                               % (label, missing), exc, target=label)
            return _record(SCRIPT_NOT_FOUND, "App not found: no module named %r (target %s)"
                           % (missing, label), None, target=label)
        if own and own.split(".")[0] == missing.split(".")[0] and target["kind"] != "callable":
            return _load_error(exc, target, "the app imports its own missing module %r" % missing)
        record = _record(DEPENDENCY_ERROR,
                         "Missing dependency: no module named %r (needed by %s)" % (missing, label),
                         exc, module=own)
        record["missing_module"] = missing
        return record
    if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError) and exc.name:
        if not (own and own.split(".")[0] == exc.name.split(".")[0]):
            record = _record(DEPENDENCY_ERROR,
                             "Dependency problem while importing %s: %s (is %r the right version?)"
                             % (label, exc, exc.name), exc, module=own)
            record["missing_module"] = exc.name
            return record
    if isinstance(exc, NotWSGI):
        return _record(APP_LOAD_ERROR, str(exc), exc, target=label, module=own, reason="not_wsgi")
    return _load_error(exc, target, None)


def _load_error(exc, target, prefix):
    where = _where(exc)
    text = "%s: %s" % (type(exc).__name__, exc)
    message = "The app raised while loading %s: %s%s" % (
        target["label"], "%s: " % prefix if prefix else "", text)
    if where:
        message += " (at %s)" % where
    return _record(APP_LOAD_ERROR, message, exc, where=where, module=target.get("module"),
                   target=target["label"])


def _where(exc):
    if isinstance(exc, SyntaxError) and exc.filename:
        return "%s:%s" % (exc.filename, exc.lineno)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_app_frame(f)]
    # The line to fix is the app's own, not the library frame that raised
    # (a duplicate Flask endpoint raises deep inside flask/).
    own = [f for f in frames if not _is_library_path(f.filename)]
    frames = own or frames
    if not frames:
        return None
    frame = frames[-1]
    return "%s:%s" % (frame.filename, frame.lineno)


def _is_library_path(filename):
    import sysconfig

    path = os.path.abspath(filename)
    if "site-packages" in path or "dist-packages" in path:
        return True
    stdlib = sysconfig.get_paths().get("stdlib")
    return bool(stdlib) and path.startswith(os.path.abspath(stdlib) + os.sep)
