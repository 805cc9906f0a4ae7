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
        # Werkzeug writes the headers and the body in separate sends: on a kept
        # connection Nagle's algorithm would hold the body for the client's
        # delayed ACK (about 40 ms an answer).
        disable_nagle_algorithm = True

        def handle_one_request(self):
            self.rfile = getattr(self.rfile, "stream", self.rfile)  # the last one's _NoDrain
            self._keep_alive = False
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
            parsed = super().parse_request()
            if parsed and self._bodiless_keep_alive():
                # Werkzeug drains the socket after each answer (reading whatever
                # arrives within 10 ms, which would swallow the next request on
                # this connection) and so always answers "Connection: close". A
                # request without a body has nothing to drain: keep it open.
                self._keep_alive = True
                self.rfile = _NoDrain(self.rfile)
            return parsed

        def send_header(self, keyword, value):
            if self._keep_alive and keyword.lower() == "connection" and value.lower() == "close":
                return  # see parse_request; "close" from the client still ends it there
            super().send_header(keyword, value)

        def _bodiless_keep_alive(self):
            headers = self.headers
            if self.request_version != "HTTP/1.1" or connections.closing or self.close_connection:
                return False
            if headers.get("Transfer-Encoding") or headers.get("Upgrade"):
                return False
            return (headers.get("Content-Length") or "0").strip() == "0"

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


class _NoDrain:
    """The request stream of a bodiless request: its body reads as empty, so
    Werkzeug's drain after the answer leaves the next request line alone."""

    def __init__(self, stream):
        self.stream = stream

    def read(self, size=-1):
        return b""

    def read1(self, size=-1):
        return b""

    def readinto(self, buffer):
        return 0

    def __getattr__(self, name):
        return getattr(self.stream, name)


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
