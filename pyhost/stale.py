"""The route guard's stale cache: the last good GET responses, served while the app is down.

Graceful degradation: rather than a 503 for every page
while the hosted app restarts or has failed, a front can keep answering the
reads it has answered before, marked stale (``Warning: 110 - "Response is
Stale"``, ``Age``, ``X-Pyhost-Stale: 1``). Opt-in: ``proxy_app(stale_cache=True)``
or ``proxy_app(stale_cache=StaleCache(...))``.

What is stored, and why only that:

- answers ``200`` to ``GET`` with a ``Content-Length`` no larger than
  ``max_entry_bytes``: a streamed answer (SSE, a download without a length)
  is relayed as it arrives and never held;
- never an answer to a request carrying ``Cookie`` or ``Authorization``, nor
  one with ``Set-Cookie``, ``Cache-Control: no-store``/``private`` or
  ``Vary: *``: the cache is shared by every client of the front, and one
  user's page must not be served to another;
- the key is the path and query as forwarded, plus the request's values of
  the headers the answer names in ``Vary``.

Bounded by entry count and total bytes, least recently used first out.
Thread-safe: the front serves requests from many threads.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

__all__ = ["StaleCache", "StaleEntry", "stale_cache_from_option", "serve_stale", "stale_headers"]

Headers = List[Tuple[str, str]]

_PRIVATE_REQUEST_HEADERS = ("HTTP_COOKIE", "HTTP_AUTHORIZATION")


class StaleEntry(NamedTuple):
    status: str
    headers: Headers
    body: bytes
    stored_at: float
    vary: Tuple[Tuple[str, str], ...]


def _header(headers: Headers, name: str) -> Optional[str]:
    values = [v for k, v in headers if k.lower() == name]
    return ", ".join(values) if values else None


def _vary_key(vary: Optional[str], environ: Dict[str, object]) -> Optional[Tuple[Tuple[str, str],
                                                                           ...]]:
    if not vary:
        return ()
    names = sorted({n.strip().lower() for n in vary.split(",") if n.strip()})
    if "*" in names:
        return None
    return tuple((n, str(environ.get("HTTP_" + n.upper().replace("-", "_"), "")))
                 for n in names)


class StaleCache:
    """Last good answers to GET requests, bounded by ``max_entries`` and ``max_bytes``.

    ``max_entry_bytes`` is the largest body kept; ``max_age`` (seconds, None:
    no limit) how old an answer may be and still be served.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 16 << 20,
                 max_entry_bytes: int = 1 << 20, max_age: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes),
                            ("max_entry_bytes", max_entry_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError("StaleCache(%s=...): must be a positive integer (got %r)"
                                 % (name, value))
        if max_age is not None and (not isinstance(max_age, (int, float)) or max_age <= 0):
            raise ValueError("StaleCache(max_age=...): must be a positive number of seconds "
                             "or None (got %r)" % (max_age,))
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: "collections.OrderedDict[str, StaleEntry]" = collections.OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of bodies held."""
        return self._bytes

    def __repr__(self) -> str:
        return "<StaleCache %d entries, %d bytes (max %d, %d)>" % (
            len(self._entries), self._bytes, self.max_entries, self.max_bytes)

    # -- deciding ---------------------------------------------------------------
    def wants(self, environ: Dict[str, object], status: str, headers: Headers) -> Optional[int]:
        """The body length to collect for this answer, or None when it is not to be kept."""
        if environ.get("REQUEST_METHOD") != "GET" or not status.startswith("200"):
            return None
        if any(environ.get(name) for name in _PRIVATE_REQUEST_HEADERS):
            return None
        if _header(headers, "set-cookie") is not None:
            return None
        control = (_header(headers, "cache-control") or "").lower()
        if "no-store" in control or "private" in control:
            return None
        if _vary_key(_header(headers, "vary"), environ) is None:
            return None
        length = _header(headers, "content-length")
        if length is None or not length.strip().isdigit():
            return None  # streamed: relayed as it comes, never held
        size = int(length)
        return size if size <= self.max_entry_bytes else None

    # -- storing and serving ----------------------------------------------------------
    def store(self, key: str, environ: Dict[str, object], status: str, headers: Headers,
              body: bytes) -> None:
        vary = _vary_key(_header(headers, "vary"), environ)
        if vary is None or len(body) > self.max_entry_bytes:
            return
        entry = StaleEntry(status, list(headers), body, self._clock(), vary)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[key] = entry
            self._bytes += len(body)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)

    def lookup(self, key: str, environ: Dict[str, object]) -> Optional[Tuple[StaleEntry, int]]:
        """The entry and its age in whole seconds, if one may answer this request."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        if any(environ.get(name) for name in _PRIVATE_REQUEST_HEADERS):
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            age = self._clock() - entry.stored_at
            if self.max_age is not None and age > self.max_age:
                return None
            self._entries.move_to_end(key)
        names = [name for name, _ in entry.vary]
        if entry.vary != _vary_key(", ".join(names), environ):
            return None
        return entry, int(age)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def stale_headers(entry: StaleEntry, age: int) -> Headers:
    """The stored headers with the three stale markers."""
    kept = [(k, v) for k, v in entry.headers if k.lower() not in ("age", "warning")]
    kept.append(("Age", str(age)))
    kept.append(("Warning", '110 - "Response is Stale"'))
    kept.append(("X-Pyhost-Stale", "1"))
    return kept


def serve_stale(entry: StaleEntry, age: int, environ: Dict[str, object],
                start_response: Callable[..., object]) -> Iterable[bytes]:
    start_response(entry.status, stale_headers(entry, age))
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [entry.body]


def stale_cache_from_option(option: object) -> Optional[StaleCache]:
    """``proxy_app(stale_cache=...)``: None/False off, True a default cache, or a StaleCache."""
    if option is None or option is False:
        return None
    if option is True:
        return StaleCache()
    if isinstance(option, StaleCache):
        return option
    raise ValueError("proxy_app(stale_cache=...): must be True, False, None or a "
                     "pyhost.stale.StaleCache (got %r)" % (option,))
