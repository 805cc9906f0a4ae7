"""The route guard: a streaming WSGI relay from a main app to the hosted app.

Built on urllib3's connection pool (the ``guard`` extra): upstream
connections are kept alive and reused, responses are read with
``preload_content=False`` and relayed as they arrive (``read1``: whatever the
socket has, never waiting to fill a buffer), so a server-sent event or a
streamed token reaches the client at once. When the client leaves, the front
server calls ``close()`` on the relay, which closes the upstream connection
(an unread response cannot go back to the pool), so the app's generator is
closed on its next write.

What is refused before anything is forwarded (RFC 9110/9112):

- ``Content-Length`` together with ``Transfer-Encoding``: 400 (the request
  smuggling shape; the two disagree on where the body ends);
- a body over ``max_body_size``: 413, from its ``Content-Length`` at once, or
  counted while a chunked body is read;
- ``Upgrade`` (WebSocket): 501 JSON; a WSGI relay cannot carry it.

Hop-by-hop headers (``Connection``, ``Keep-Alive``, ``Proxy-*``, ``TE``,
``Trailer``, ``Transfer-Encoding``, ``Upgrade`` and those named in
``Connection``) are dropped both ways.
"""
from __future__ import annotations

import json
import logging
import tempfile
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ._meta import pip_install
from .public import expose_details_for, public_error, public_status
from .relay import (
    Limited,
    Relay,
    connection_tokens,
    forwarded_path,
    raw_path_info,
    request_headers,
    response_headers,
)
from .stale import StaleCache, serve_stale, stale_cache_from_option
from .status import HostState

try:
    import urllib3
    from urllib3.exceptions import HTTPError as _Urllib3Error
    from urllib3.exceptions import ReadTimeoutError
except ImportError:  # pragma: no cover - exercised by a test that hides urllib3
    urllib3 = None  # type: ignore[assignment]

__all__ = ["ProxyApp", "unavailable_payload", "UNAVAILABLE", "DEFAULT_MAX_BODY_SIZE",
           "raw_path_info"]

log = logging.getLogger("pyhost")

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]
Headers = List[Tuple[str, str]]

#: The ``error`` field, kept so clients written against 0.1.0 bodies keep working.
UNAVAILABLE = "Flask service unavailable"

#: Request bodies larger than this get 413 unless ``max_body_size`` says otherwise.
DEFAULT_MAX_BODY_SIZE = 100 << 20

_STATE_MESSAGES = {
    HostState.STOPPED: "{name} is not running",
    HostState.STARTING: "{name} is starting; retry in a moment",
    HostState.RESTARTING: "{name} is restarting; retry in a moment",
    HostState.UNHEALTHY: "{name} is not answering its health checks",
    HostState.FAILED: "{name} has failed",
}

# Uploads of unknown length are counted into memory up to this, then on disk.
_SPOOL_MAX = 1 << 20


def unavailable_payload(host: Any, error: str = UNAVAILABLE,
                        expose_details: Optional[bool] = None) -> Dict[str, Any]:
    """The 503 body: ``error``, ``type``, ``message``, ``status`` (public by default)."""
    expose = expose_details_for(host, expose_details)
    status = host.status()
    last = status.last_error
    if status.state is HostState.UNHEALTHY or last is None:
        template = _STATE_MESSAGES.get(status.state, "{name} is not ready")
        message = template.format(name=host.name)
    else:
        message = public_error(last, expose)["message"]  # type: ignore[index]
    return {
        "error": error,
        "type": last.type.value if last is not None else "UNKNOWN",
        "message": message,
        "status": public_status(status, expose),
    }


def json_answer(start_response: StartResponse, status: str, payload: Any,
                headers: Optional[Headers] = None) -> List[bytes]:
    body = json.dumps(payload, default=str).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")] + list(headers or ()))
    return [body]


def require_urllib3() -> None:
    if urllib3 is None:
        raise ImportError("The route guard (proxy_app) needs urllib3, which is not installed: "
                          + pip_install("guard"), name="urllib3")


class ProxyApp:
    """Forward every request to the host's child; 503 + JSON while it is not ready.

    The forwarded path is ``prefix`` + ``PATH_INFO``: mounted at
    ``/api/model``, ``/api/model/predict`` reaches the child as
    ``/predict`` (with ``X-Forwarded-Prefix: /api/model``, which
    ``werkzeug.middleware.proxy_fix.ProxyFix(x_prefix=1)`` in the child
    understands); ``prefix="/api/model"`` forwards the full path instead.

    Options: ``timeout`` bounds connecting and each wait for data (an answer
    slower than that gets 504; a stream silent for longer ends);
    ``chunk_size`` is the most relayed in one piece (less is passed on as
    soon as it arrives); ``max_body_size`` (bytes, None: no limit) answers
    413 above it; ``pool_size`` is how many idle upstream connections are
    kept; ``stale_cache`` (True or a :class:`pyhost.stale.StaleCache`) serves
    the last good GET answers, marked stale, while the app is down;
    ``expose_details`` (None: the host's ``expose_details``) puts error
    details into the 503 body.
    """

    def __init__(self, host: Any, *, prefix: str = "", timeout: float = 120.0,
                 chunk_size: int = 1 << 16, error: str = UNAVAILABLE,
                 max_body_size: Optional[int] = DEFAULT_MAX_BODY_SIZE, pool_size: int = 16,
                 stale_cache: Any = None, expose_details: Optional[bool] = None) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("proxy_app(prefix=...): must be empty or start with '/' and not "
                             "end with '/' (got %r)" % (prefix,))
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("proxy_app(timeout=...): must be a positive number of seconds "
                             "(got %r)" % (timeout,))
        for name, value in (("chunk_size", chunk_size), ("pool_size", pool_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError("proxy_app(%s=...): must be a positive integer (got %r)"
                                 % (name, value))
        if max_body_size is not None and (not isinstance(max_body_size, int)
                                          or isinstance(max_body_size, bool)
                                          or max_body_size < 0):
            raise ValueError("proxy_app(max_body_size=...): must be a number of bytes >= 0 "
                             "or None for no limit (got %r)" % (max_body_size,))
        self.stale_cache: Optional[StaleCache] = stale_cache_from_option(stale_cache)
        self.expose_details = expose_details_for(host, expose_details)
        require_urllib3()
        self.host = host
        self.prefix = prefix
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.max_body_size = max_body_size
        self.error = error
        # Keyed by host.url: a restarted host on a new port gets a pool of its
        # own; the old one is dropped when num_pools is exceeded.
        self._pools = urllib3.PoolManager(num_pools=4, maxsize=pool_size, block=False,
                                          retries=False)
        self._pool: Any = None  # the pool of the last URL, the one nearly every request uses
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        # Built once: urllib3 would make (and log) one per request from retries=False.
        self._retries = urllib3.Retry(total=False, redirect=False)

    def __repr__(self) -> str:
        return "<ProxyApp for %s%s>" % (self.host.name, " (stale cache)" if self.stale_cache
                                        else "")

    # -- the request ---------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        result = self._forward(environ, start_response)
        if environ.get("REQUEST_METHOD") == "HEAD" and isinstance(result, list):
            return []  # the guard's own JSON answers: headers only (servers send what they get)
        return result

    def _forward(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        refused = self._refuse(environ, start_response)
        if refused is not None:
            return refused
        host = self.host
        url = host.url
        if not host.is_ready() or url is None:
            return self.unavailable(environ, start_response)
        target = forwarded_path(environ, self.prefix)
        query = environ.get("QUERY_STRING")
        if query:
            target += "?" + query
        closers: List[Callable[[], Any]] = []
        try:
            body, length = self._body(environ, closers)
        except _TooLarge:
            return self._too_large(start_response)
        headers = request_headers(environ, length)
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            pool = self._pool_for(url)
            response = pool.urlopen(
                method, target, body=body, headers=headers, retries=self._retries, redirect=False,
                assert_same_host=False, preload_content=False, decode_content=False,
                release_conn=False, timeout=self._timeout)
        except ReadTimeoutError:
            _close_all(closers)
            return json_answer(start_response, "504 Gateway Timeout", {
                "error": "Gateway timeout", "type": "UPSTREAM_TIMEOUT",
                "message": "%s did not answer within %s seconds" % (host.name, self.timeout)})
        except (_Urllib3Error, OSError) as exc:
            _close_all(closers)
            log.warning("%s: forwarding %s %s failed: %s", host.name, method, target, exc)
            if not host.is_ready() or self._stale(environ) is not None:
                return self.unavailable(environ, start_response)
            return json_answer(start_response, "502 Bad Gateway", {
                "error": "Bad gateway", "type": "UPSTREAM_ERROR",
                "message": "%s closed the connection or could not be reached" % host.name})
        _close_all(closers)
        status = "%d %s" % (response.status, response.reason or _phrase(response.status))
        out = response_headers(response.headers)
        collect = None
        if self.stale_cache is not None:
            collect = self.stale_cache.wants(environ, status, out)
        start_response(status, out)
        store = None
        if collect is not None:
            cache, key = self.stale_cache, self._key(environ)

            def store(data: bytes) -> None:
                cache.store(key, environ, status, out, data)  # type: ignore[union-attr]
        return Relay(response, self.chunk_size, store, collect, name=host.name)

    def _pool_for(self, url: str) -> Any:
        cached = self._pool
        if cached is not None and cached[0] == url:
            return cached[1]
        pool = self._pools.connection_from_url(url)
        self._pool = (url, pool)  # one assignment: other threads see the old or the new pair
        return pool

    def unavailable(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """The stale answer when there is one, else the 503 JSON."""
        found = self._stale(environ)
        if found is not None:
            return serve_stale(found[0], found[1], environ, start_response)
        payload = unavailable_payload(self.host, self.error, self.expose_details)
        headers = []
        if payload["status"]["state"] in (HostState.STARTING.value, HostState.RESTARTING.value):
            headers.append(("Retry-After", "1"))
        return json_answer(start_response, "503 Service Unavailable", payload, headers)

    # -- refusals --------------------------------------------------------------------
    def _refuse(self, environ: Environ, start_response: StartResponse
                ) -> Optional[Iterable[bytes]]:
        length = environ.get("CONTENT_LENGTH")
        chunked = environ.get("HTTP_TRANSFER_ENCODING")
        if length not in (None, "") and chunked:
            return json_answer(start_response, "400 Bad Request", {
                "error": "Bad request", "type": "AMBIGUOUS_BODY_LENGTH",
                "message": "The request has both Content-Length and Transfer-Encoding; "
                           "send one of them"}, [("Connection", "close")])
        if length not in (None, "") and not str(length).strip().isdigit():
            return json_answer(start_response, "400 Bad Request", {
                "error": "Bad request", "type": "BAD_CONTENT_LENGTH",
                "message": "Content-Length must be a number of bytes"}, [("Connection", "close")])
        upgrade = environ.get("HTTP_UPGRADE")
        asks = "upgrade" in connection_tokens(environ.get("HTTP_CONNECTION"))
        if (upgrade or asks) and connection_tokens(upgrade) != {"h2c"}:
            # h2c is an offer a server may ignore; anything else would be a silent 200.
            return json_answer(start_response, "501 Not Implemented", {
                "error": "Upgrade not supported", "type": "UPGRADE_NOT_SUPPORTED",
                "message": "The route guard relays HTTP requests and responses; it cannot "
                           "carry a protocol upgrade (%s). Connect to the app directly for "
                           "WebSocket." % (upgrade or "Connection: upgrade")})
        if (self.max_body_size is not None and length not in (None, "")
                and int(length) > self.max_body_size):
            return self._too_large(start_response)
        return None

    def _too_large(self, start_response: StartResponse) -> Iterable[bytes]:
        return json_answer(start_response, "413 Content Too Large", {
            "error": "Request body too large", "type": "BODY_TOO_LARGE",
            "message": "The request body is larger than %s bytes" % (self.max_body_size,)},
            [("Connection", "close")])

    # -- building the upstream request ------------------------------------------------
    def _body(self, environ: Environ, closers: List[Callable[[], Any]]) -> Tuple[Any, int]:
        """The body to send and its length: read as it is sent, or first counted
        into a spool when its length is unknown (a chunked upload)."""
        length = environ.get("CONTENT_LENGTH")
        stream = environ.get("wsgi.input")
        if length not in (None, ""):
            size = int(length)
            return (Limited(stream, size) if size else None), size
        terminated = environ.get("wsgi.input_terminated") or "chunked" in connection_tokens(
            environ.get("HTTP_TRANSFER_ENCODING"))
        if not terminated or stream is None:
            return None, 0
        block = stream.read(1 << 16)
        if not block:  # gunicorn marks every input terminated, bodiless ones too
            return None, 0
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX)
        closers.append(spool.close)
        limit = self.max_body_size
        while block:
            spool.write(block)
            if limit is not None and spool.tell() > limit:
                _close_all(closers)
                raise _TooLarge()
            block = stream.read(1 << 16)
        size = spool.tell()
        spool.seek(0)
        return (spool if size else None), size

    # -- the stale cache --------------------------------------------------------------
    def _key(self, environ: Environ) -> str:
        # The host's name first: one cache may serve the guards of several apps.
        query = environ.get("QUERY_STRING")
        return "%s %s%s" % (self.host.name, forwarded_path(environ, self.prefix),
                            "?" + query if query else "")

    def _stale(self, environ: Environ) -> Any:
        if self.stale_cache is None:
            return None
        return self.stale_cache.lookup(self._key(environ), environ)


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


class _TooLarge(Exception):
    pass


def _close_all(closers: List[Callable[[], Any]]) -> None:
    while closers:
        closers.pop()()


