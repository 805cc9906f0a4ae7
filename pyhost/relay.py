"""The mechanics of relaying one HTTP exchange through WSGI (the route guard's parts).

Headers (hop-by-hop ones dropped, RFC 9110 §7.6.1), the path as the client
encoded it, a request body of known length, and :class:`Relay`, which passes
a urllib3 response on piece by piece as it arrives.
"""
from __future__ import annotations

import logging
import socket
import struct
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, unquote_to_bytes, urlsplit

__all__ = ["HOP_BY_HOP", "connection_tokens", "request_headers", "response_headers",
           "forwarded_path", "raw_path_info", "Limited", "Relay"]

log = logging.getLogger("pyhost")

Environ = Dict[str, Any]
Headers = List[Tuple[str, str]]

# RFC 9110 §7.6.1, plus Proxy-Connection (never standard, still sent) and
# Expect (the front server has answered 100-continue already).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "transfer-encoding",
                         "upgrade", "expect"})
# Set by the front server itself: passing the app's on would double them.
_FRONT_SETS = frozenset({"server", "date"})


def connection_tokens(value: Optional[str]) -> frozenset:
    if not value:
        return _NO_TOKENS
    return frozenset(t.strip().lower() for t in value.split(",") if t.strip())


_NO_TOKENS: frozenset = frozenset()
_REQUEST_DROP = HOP_BY_HOP | {"content-length"}
# environ key -> (header name, lower-case name); computed once per key. Bounded:
# header names are the client's to choose.
_NAMES: Dict[str, Tuple[str, str]] = {"CONTENT_TYPE": ("Content-Type", "content-type")}
_NAMES_MAX = 512


def _header_name(key: str) -> Tuple[str, str]:
    name = key[5:].replace("_", "-").title()
    found = (name, name.lower())
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[key] = found
    return found


def request_headers(environ: Environ, length: int) -> Dict[str, str]:
    """The headers to send upstream: end-to-end ones, X-Forwarded-*, the body's length."""
    connection = environ.get("HTTP_CONNECTION")
    drop = _REQUEST_DROP | connection_tokens(connection) if connection else _REQUEST_DROP
    names = _NAMES
    headers: Dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            found = names.get(key) or _header_name(key)
        elif key == "CONTENT_TYPE" and value:
            found = names[key]
        else:
            continue
        if found[1] not in drop:
            headers[found[0]] = value

    def append(name: str, value: Optional[str]) -> None:
        if value:
            previous = headers.get(name)
            headers[name] = "%s, %s" % (previous, value) if previous else value

    append("X-Forwarded-For", environ.get("REMOTE_ADDR"))
    append("X-Forwarded-Proto", environ.get("wsgi.url_scheme"))
    append("X-Forwarded-Host", environ.get("HTTP_HOST"))
    append("X-Forwarded-Prefix", environ.get("SCRIPT_NAME"))
    if length or environ.get("REQUEST_METHOD") in ("POST", "PUT", "PATCH"):
        headers["Content-Length"] = str(length)
    return headers


def forwarded_path(environ: Environ, prefix: str = "") -> str:
    """``prefix`` + PATH_INFO, percent-encoded as the client sent it where known."""
    # Forward the client's own encoding when the server kept it
    # (org%2Fmodel must not become org/model), else quote the decoded
    # bytes ("%" included) so /a%25b arrives as sent.
    prefix = quote(prefix, safe=_PATH_SAFE)
    raw = raw_path_info(environ)
    if raw is not None:
        return prefix + (quote(raw.encode("latin-1"), safe=_PATH_SAFE + "%") or "/")
    return prefix + quote((environ.get("PATH_INFO") or "/").encode("latin-1"),
                          safe=_PATH_SAFE)


class Limited:
    """Exactly ``size`` bytes of a WSGI input (reading past them would wait for more)."""

    def __init__(self, stream: Any, size: int) -> None:
        self._stream, self._left = stream, size

    def read(self, amount: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if amount is None or amount < 0 or amount > self._left:
            amount = self._left
        data = self._stream.read(amount)
        self._left -= len(data)
        if not data:
            self._left = 0
        return data


class Relay:
    """The response body, relayed piece by piece as it arrives.

    ``close()`` (called by the WSGI server when the client is done or gone)
    returns a fully read connection to the pool and closes one that is not.
    With ``store``, the body is also collected, up to ``collect`` bytes, and
    handed over once complete (the stale cache).
    """

    def __init__(self, response: Any, chunk_size: int,
                 store: Optional[Callable[[bytes], None]] = None,
                 collect: Optional[int] = None, name: str = "the app") -> None:
        self._response = response
        self._name = name
        self._chunk_size = chunk_size
        self._done = False
        self._store = store
        self._collect = collect
        self._parts: List[bytes] = []
        self._size = 0
        read1 = getattr(response, "read1", None)
        if read1 is not None:
            self._read = lambda n: read1(n, decode_content=False)
        else:  # urllib3 < 2.3: http.client's read1 has the same meaning
            self._read = response._fp.read1

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        try:
            data = self._read(self._chunk_size)
        except Exception as exc:
            # Raised on: the front server then drops the client's connection
            # instead of ending the body as if it were complete.
            log.warning("the answer from %s ended early: %s", self._name, exc)
            raise
        if not data:
            self._finish()
            raise StopIteration
        if self._store is not None:
            self._size += len(data)
            if self._size <= (self._collect or 0):
                self._parts.append(data)
        if getattr(self._response, "length_remaining", None) == 0:
            self._finish()  # all of a Content-Length body: no read just to see the end
        return data

    def _finish(self) -> None:
        self._done = True
        if self._store is not None and self._size == self._collect:
            self._store(b"".join(self._parts))
        self._parts = []

    def close(self) -> None:
        response = self._response
        if not self._done:
            # The client left mid-answer: the rest is unread, so the
            # connection cannot be reused. Reset rather than close it, so the
            # app's very next write fails (after a plain close the first
            # write still succeeds, and a stream notices an event later).
            _abort(getattr(response, "_connection", None))
            response.close()
        response.release_conn()
        self._parts = []


def _abort(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # closed already, or a platform without SO_LINGER: a plain close it is


_RESPONSE_DROP = HOP_BY_HOP | _FRONT_SETS


def response_headers(headers: Any) -> Headers:
    connection = headers.get("Connection")
    drop = _RESPONSE_DROP | connection_tokens(connection) if connection else _RESPONSE_DROP
    return [(name, value) for name, value in headers.iteritems() if name.lower() not in drop]



_PATH_SAFE = "/!$&'()*+,:;=@"
_HEX = frozenset("0123456789abcdefABCDEF")


def raw_path_info(environ: Environ) -> Optional[str]:
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
