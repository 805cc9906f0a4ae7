"""WSGI apps for a main app that sits in front of a host: the route guard and health.

The seed's Express app forwarded ``/api/deepfake`` to Flask, answered 503 +
JSON while Flask was not ready, and served ``/api/health/python``. In Python
the main app mounts these with Werkzeug's ``DispatcherMiddleware``::

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {
        "/api/deepfake": host.proxy_app(),
        "/api/health/python": host.health_app(),
    })

Forwarding is Werkzeug's ``ProxyMiddleware`` (``proxy_to``), aimed per
request at ``host.url``: the real port is only known after ``start()`` (port
0) and changes when the host is started again. Around it this module adds
what the guard needs: the 503 answer, the body of a chunked upload (which
``ProxyMiddleware`` would drop), byte-exact paths, ``X-Forwarded-*`` headers.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import quote, unquote_to_bytes, urlsplit

from werkzeug.http import parse_set_header
from werkzeug.middleware.http_proxy import ProxyMiddleware
from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator

from .status import HostState

__all__ = ["ProxyApp", "HealthApp", "proxy_app", "health_app", "unavailable_payload"]

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]

#: The seed's ``error`` field, kept so clients of the ancestor keep working.
UNAVAILABLE = "Flask service unavailable"

_STATE_MESSAGES = {
    HostState.STOPPED: "{name} is not running",
    HostState.STARTING: "{name} is starting; retry in a moment",
    HostState.RESTARTING: "{name} is restarting; retry in a moment",
    HostState.UNHEALTHY: "{name} is not answering its health checks (last: {last})",
    HostState.FAILED: "{name} has failed",
}

# Upstream headers the front server sets itself: passing them on duplicates them.
_DROP_RESPONSE_HEADERS = frozenset({"server", "date"})

# Uploads of unknown length are buffered in memory up to this, then on disk.
_SPOOL_MAX = 1 << 20


def unavailable_payload(host: Any, error: str = UNAVAILABLE) -> Dict[str, Any]:
    """The seed's 503 body: ``error``, ``type``, ``message``, ``status``."""
    status = host.status()
    last = status.last_error
    if status.state is HostState.UNHEALTHY or last is None:
        template = _STATE_MESSAGES.get(status.state, "{name} is not ready")
        message = template.format(name=host.name, last=status.health.get("last_result"))
    else:
        message = last.message
    return {
        "error": error,
        "type": last.type.value if last is not None else "UNKNOWN",
        "message": message,
        "status": status.to_dict(),
    }


def _json_response(payload: Any, status: int, headers: Optional[Dict[str, str]] = None
                   ) -> Response:
    response = Response(json.dumps(payload, default=str), status=status,
                        mimetype="application/json", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


class ProxyApp:
    """Forward every request to the host's child; 503 + JSON while it is not ready.

    The forwarded path is ``prefix`` + ``PATH_INFO``: mounted at
    ``/api/deepfake``, ``/api/deepfake/predict`` reaches the child as
    ``/predict`` (with ``X-Forwarded-Prefix: /api/deepfake``, which
    ``werkzeug.middleware.proxy_fix.ProxyFix(x_prefix=1)`` in the child
    understands); ``prefix="/api/deepfake"`` forwards the full path instead.

    Responses are relayed in pieces of ``chunk_size`` bytes (Werkzeug's
    ``ProxyMiddleware`` reads that much before passing data on), so a stream
    of small events arrives in batches of that size. ``timeout`` bounds
    connecting and each read: a request the app takes longer to answer gets 502.
    """

    def __init__(self, host: Any, *, prefix: str = "", timeout: float = 120.0,
                 chunk_size: int = 2 << 13, error: str = UNAVAILABLE) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("proxy_app(prefix=...): must be empty or start with '/' and not "
                             "end with '/' (got %r)" % (prefix,))
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("proxy_app(timeout=...): must be a positive number of seconds "
                             "(got %r)" % (timeout,))
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError("proxy_app(chunk_size=...): must be a positive number of bytes "
                             "(got %r)" % (chunk_size,))
        self.host = host
        self.prefix = prefix
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.error = error
        # One for every request: proxy_to() takes the target (host.url, which a
        # new start() may change) per call and keeps only timeout and chunk_size.
        self._proxy = ProxyMiddleware(_not_found, {}, chunk_size=chunk_size,
                                      timeout=timeout)  # type: ignore[arg-type]
        self._quoted_prefix = quote(prefix, safe=_PATH_SAFE)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        host = self.host
        url = host.url
        if not host.is_ready() or url is None:
            return self.unavailable(environ, start_response)
        environ = self._forwarded_environ(environ)
        closers: List[Callable[[], Any]] = []
        self._settle_body(environ, closers)
        opts = {
            "target": url + "/",
            "remove_prefix": False,
            # Keep the client's Host (url_for(_external=True) in the child then
            # names the front server); ProxyMiddleware's "<auto>" drops the port.
            "host": environ.get("HTTP_HOST") or "<auto>",
            "headers": {},
            "ssl_context": None,
        }
        app = self._proxy.proxy_to(opts, self._path(environ), "")
        result = app(environ, _filter_headers(start_response))
        return ClosingIterator(result, closers) if closers else result

    def unavailable(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        payload = unavailable_payload(self.host, self.error)
        headers = {}
        if payload["status"]["state"] in (HostState.STARTING.value, HostState.RESTARTING.value):
            headers["Retry-After"] = "1"
        return _json_response(payload, 503, headers)(environ, start_response)

    def _path(self, environ: Environ) -> str:
        # PATH_INFO is decoded bytes in a latin-1 str; ProxyMiddleware quotes a
        # str as UTF-8 and leaves "%" alone. Forward the client's own encoding
        # when the server kept it (org%2Fmodel must not become org/model), else
        # quote the decoded bytes ("%" included) so /a%25b arrives as sent.
        prefix = self._quoted_prefix
        raw = _raw_path_info(environ)
        if raw is not None:
            return prefix + (quote(raw.encode("latin-1"), safe=_PATH_SAFE + "%") or "/")
        return prefix + quote((environ.get("PATH_INFO") or "/").encode("latin-1"), safe=_PATH_SAFE)

    @staticmethod
    def _forwarded_environ(environ: Environ) -> Environ:
        environ = dict(environ)

        def append(key: str, value: Optional[str]) -> None:
            if value:
                previous = environ.get(key)
                environ[key] = "%s, %s" % (previous, value) if previous else value

        append("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
        append("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme"))
        append("HTTP_X_FORWARDED_HOST", environ.get("HTTP_HOST"))
        append("HTTP_X_FORWARDED_PREFIX", environ.get("SCRIPT_NAME"))
        return environ

    @staticmethod
    def _settle_body(environ: Environ, closers: List[Callable[[], Any]]) -> None:
        """Give the request a Content-Length, or none when it has no body.

        ``ProxyMiddleware`` forwards a body without Content-Length as chunked
        but never sends the closing chunk (the child would wait for it), and
        forwards nothing at all when the server (Werkzeug's among them) leaves
        CONTENT_LENGTH out for a chunked upload. So a body of unknown length is
        read here first, spooled to disk past 1 MiB.
        """
        length = environ.get("CONTENT_LENGTH")
        if length not in (None, "") and str(length).strip().isdigit():
            return
        environ.pop("CONTENT_LENGTH", None)
        unknown_length = environ.get("wsgi.input_terminated") or "chunked" in parse_set_header(
            environ.get("HTTP_TRANSFER_ENCODING"))
        if not unknown_length:
            return
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX)
        closers.append(spool.close)
        shutil.copyfileobj(environ["wsgi.input"], spool, 1 << 16)
        size = spool.tell()
        spool.seek(0)
        environ["wsgi.input"] = spool
        environ["CONTENT_LENGTH"] = str(size)
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)


_PATH_SAFE = "/!$&'()*+,:;=@"
_HEX = frozenset("0123456789abcdefABCDEF")


def _raw_path_info(environ: Environ) -> Optional[str]:
    """PATH_INFO as the client encoded it, from the raw request target.

    Werkzeug's server and gunicorn keep it in ``RAW_URI`` (others in
    ``REQUEST_URI``). The part that decodes to SCRIPT_NAME (the mount point)
    is cut off; None when the raw target does not decode to SCRIPT_NAME +
    PATH_INFO (a middleware rewrote the path: use the decoded one).
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return None
    raw = raw.split("?", 1)[0]
    if not raw.startswith("/"):  # absolute-form: http://host/path
        raw = urlsplit(raw).path or "/"
    script = (environ.get("SCRIPT_NAME") or "").encode("latin-1")
    path_info = (environ.get("PATH_INFO") or "").encode("latin-1")
    at, decoded = 0, 0
    while decoded < len(script) and at < len(raw):
        escaped = raw[at] == "%" and set(raw[at + 1:at + 3]) <= _HEX and len(raw) >= at + 3
        at += 3 if escaped else 1
        decoded += 1
    if unquote_to_bytes(raw[:at]) != script or unquote_to_bytes(raw[at:]) != path_info:
        return None
    return raw[at:]


def _filter_headers(start_response: StartResponse) -> StartResponse:
    def filtered(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        kept = [(k, v) for k, v in headers if k.lower() not in _DROP_RESPONSE_HEADERS]
        if exc_info is not None:
            return start_response(status, kept, exc_info)
        return start_response(status, kept)

    return filtered


def _not_found(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    # ProxyMiddleware's fallback app; never reached, proxy_to is called directly.
    return _json_response({"error": "not found"}, 404)(environ, start_response)


class HealthApp:
    """The seed's ``/api/health/python``: ``{"healthy": ..., **status}``, 200 or 503.

    ``/metrics`` under it answers Prometheus text (501 without prometheus_client).
    """

    def __init__(self, host: Any) -> None:
        self.host = host
        self._metrics_problem: Optional[str] = None
        try:
            from .metrics import collector_for
        except ImportError as exc:
            if not (getattr(exc, "name", None) or "").startswith("prometheus_client"):
                raise
            from ._meta import pip_install

            self._metrics_problem = (
                "Prometheus metrics need the prometheus_client package, which is not "
                "installed: %s (or: pip install prometheus-client)" % pip_install("metrics"))
        else:
            # Now, not at the first scrape: probes and errors count from here on.
            collector_for(host)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = (environ.get("PATH_INFO") or "/").rstrip("/") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            response = _json_response({"error": "method not allowed; use GET"}, 405,
                                      {"Allow": "GET, HEAD"})
        elif path == "/":
            status = self.host.status()
            body = {"healthy": status.is_ready, **status.to_dict()}
            response = _json_response(body, 200 if status.is_ready else 503)
        elif path == "/metrics":
            response = self._metrics(environ.get("HTTP_ACCEPT"))
        else:
            response = _json_response({"error": "not found; try / or /metrics"}, 404)
        return response(environ, start_response)

    def _metrics(self, accept: Optional[str]) -> Response:
        if self._metrics_problem is not None:
            return Response(self._metrics_problem + "\n", status=501, mimetype="text/plain")
        from .metrics import exposition

        body, content_type = exposition(self.host, accept)
        response = Response(body, status=200)
        response.headers["Content-Type"] = content_type
        response.headers["Cache-Control"] = "no-store"
        return response


def proxy_app(host: Any, **options: Any) -> ProxyApp:
    """``host.proxy_app()``: see :class:`ProxyApp` for ``prefix``, ``timeout``, ``chunk_size``."""
    return ProxyApp(host, **options)


def health_app(host: Any) -> HealthApp:
    """``host.health_app()``: status JSON (200 ready / 503) and ``/metrics``."""
    return HealthApp(host)
