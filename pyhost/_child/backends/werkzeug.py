"""Werkzeug's threaded server: the default for WSGI apps, HTTP/1.1 keep-alive (child side)."""
import socket
import threading

from ... import protocol

NAME = "werkzeug"
KINDS = ("wsgi",)
WORKERS = False
REQUIRES = ("werkzeug",)
EXTRA = ""


def serve(app, kind, sock, run):
    from werkzeug.serving import WSGIRequestHandler, make_server

    connections = _Connections()

    class RequestHandler(WSGIRequestHandler):
        def handle_one_request(self):
            # Between requests a keep-alive connection waits here for the next
            # request line: idle, and closed at once when the server stops.
            connections.waiting(self.connection)
            try:
                if connections.closing:
                    self.close_connection = True
                    return
                super().handle_one_request()
            finally:
                connections.done(self.connection)

        def parse_request(self):
            connections.busy(self.connection)  # a request line arrived: let it finish
            return super().parse_request()

        def log_request(self, *args, **kwargs):
            # pyhost's own probes would add a line to the app's log every
            # liveness_interval; the parent keeps their results in HealthStats.
            if self.headers is not None and self.headers.get("User-Agent") == protocol.PROBE_AGENT:
                return
            super().log_request(*args, **kwargs)

    if run.spec.get("debug"):
        from werkzeug.debug import DebuggedApplication

        if hasattr(app, "debug"):
            app.debug = True
        app = DebuggedApplication(app, evalex=True)
        # Its multiprocessing.Value holds a semaphore registered with multiprocessing's
        # resource tracker; this child ends with os._exit(), so the tracker would
        # report it leaked. One process, threads only: a plain lock does. Dropping
        # the Value here runs its finalizer, which unregisters the semaphore.
        app._failed_pin_auth = _PinFailures()
    # The bound address, not the name: werkzeug picks the socket family from
    # it when wrapping fd= ("localhost" may have resolved to ::1). Threaded, so
    # Werkzeug speaks HTTP/1.1 with keep-alive.
    address = sock.getsockname()
    server = make_server(address[0], address[1], app, threaded=True,
                         request_handler=RequestHandler, fd=sock.fileno())
    sock.close()  # the server holds its own duplicate
    # Let in-flight requests finish on shutdown (the parent escalates to
    # SIGTERM/SIGKILL after shutdown_timeout if one never does).
    server.daemon_threads = False
    server.block_on_close = True

    def stop():
        connections.close_idle()
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        # serve_forever() checks its shutdown flag between select() calls of
        # up to 0.5 s; poke the socket so the flag is seen at once.
        while stopper.is_alive():
            try:
                socket.create_connection(protocol.connect_address(address), timeout=0.2).close()
            except OSError:
                pass
            stopper.join(0.05)

    run.serving(stop)
    run.ready()
    try:
        server.serve_forever()
    finally:
        server.server_close()  # joins the request threads: in-flight requests finish


class _PinFailures:
    """The debugger's failed-PIN counter (``.value``, ``.get_lock()``) for one process."""

    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def get_lock(self):
        return self._lock


class _Connections:
    """Which keep-alive connections are between requests (safe to close on stop)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle = set()
        self.closing = False

    def waiting(self, conn):
        with self.lock:
            self.idle.add(conn)

    def busy(self, conn):
        with self.lock:
            self.idle.discard(conn)

    def done(self, conn):
        self.busy(conn)

    def close_idle(self):
        with self.lock:
            self.closing = True
            idle = list(self.idle)
        for conn in idle:
            try:
                conn.shutdown(socket.SHUT_RD)  # its blocked read returns EOF
            except OSError:
                pass
