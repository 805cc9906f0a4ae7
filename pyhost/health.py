"""HTTP health probes and their statistics.

A probe is one GET with a timeout; its result says why it failed in the words
Node.js-style bridges log: ``Connection refused``, ``Timeout``, ``HTTP 500``.
"""
from __future__ import annotations

import collections
import dataclasses
import errno
import http.client
import os
import select
import socket
import threading
import time
from typing import Any, Callable, Deque, Dict, Optional, Set
from urllib.parse import urlsplit

from .protocol import PROBE_AGENT

__all__ = ["ProbeResult", "probe", "abort_probes", "HealthStats"]


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str
    status: Optional[int]
    latency: float
    at: float  # epoch seconds


class _AbortableConnect:
    """``connect()`` in short waits, so :func:`abort_probes` can end one in progress.

    A blocking ``connect()`` to an address that never answers (a full accept
    queue, a dropped SYN) cannot be woken by another thread; this one checks
    ``aborted`` every 50 ms. Loopback connects finish in the first wait.
    """

    aborted = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._create_connection = self._connect_abortably  # http.client's own hook

    def _connect_abortably(self, address: Any, timeout: Any = None,
                           source_address: Any = None) -> socket.socket:
        deadline = time.monotonic() + (timeout if isinstance(timeout, (int, float)) else 3600)
        error: Optional[OSError] = None
        for family, kind, proto, _, addr in socket.getaddrinfo(
                address[0], address[1], 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                if source_address:
                    sock.bind(source_address)
                sock.setblocking(False)
                code = sock.connect_ex(addr)
                while code in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
                    if self.aborted:
                        raise ConnectionAbortedError(errno.ECONNABORTED, "Aborted by stop()")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise socket.timeout("timed out")
                    if select.select([], [sock], [], min(remaining, 0.05))[1]:
                        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
                sock.settimeout(timeout)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
                if isinstance(exc, (ConnectionAbortedError, socket.timeout)):
                    break
        raise error if error is not None else OSError("getaddrinfo returned nothing")


class _ProbeHTTP(_AbortableConnect, http.client.HTTPConnection):
    pass


class _ProbeHTTPS(_AbortableConnect, http.client.HTTPSConnection):
    pass


def probe(url: str, *, timeout: float, require_2xx: bool,
          clock: Callable[[], float] = time.perf_counter,
          in_flight: Optional[Set[Any]] = None) -> ProbeResult:
    """GET ``url`` once. Alive means 2xx with a health path, any answer < 500 without."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    conn_cls = _ProbeHTTPS if https else _ProbeHTTP
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    started = clock()
    status: Optional[int] = None
    try:
        conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        if in_flight is not None:
            in_flight.add(conn)
        try:
            conn.request("GET", path, headers={"User-Agent": PROBE_AGENT, "Connection": "close"})
            response = conn.getresponse()
            status = response.status
            response.read(64 * 1024)
        finally:
            if in_flight is not None:
                in_flight.discard(conn)
            conn.close()
    except ConnectionRefusedError:
        reason = "Connection refused"
    except (socket.timeout, TimeoutError):
        reason = "Timeout"
    except ConnectionResetError:
        reason = "Connection reset"
    except (http.client.HTTPException, OSError) as exc:
        reason = _short(exc)
    else:
        ok = 200 <= status < 300 if require_2xx else status < 500
        reason = "HTTP %d" % status
        return ProbeResult(ok, reason, status, clock() - started, time.time())
    return ProbeResult(False, reason, status, clock() - started, time.time())


def abort_probes(in_flight: Set[Any]) -> None:
    """End probes that are connecting or waiting for an answer (stop() must not wait)."""
    for conn in list(in_flight):
        conn.aborted = True
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return "%s" % text


class HealthStats:
    """Thread-safe counters of probe results: counts, failure rate, latencies."""

    def __init__(self, keep: int = 200) -> None:
        self._lock = threading.Lock()
        self._latencies: Deque[float] = collections.deque(maxlen=keep)
        self.probes = 0
        self.failures = 0
        self.last: Optional[ProbeResult] = None
        self.last_ok_at: Optional[float] = None
        self._listeners: list = []

    def add_listener(self, listener: Callable[[ProbeResult], None]) -> None:
        self._listeners.append(listener)

    def record(self, result: ProbeResult) -> None:
        with self._lock:
            self.probes += 1
            if not result.ok:
                self.failures += 1
            else:
                self.last_ok_at = result.at
            self._latencies.append(result.latency)
            self.last = result
        for listener in list(self._listeners):
            listener(result)

    @property
    def last_check(self) -> Optional[float]:
        last = self.last
        return last.at if last is not None else None

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            latencies = sorted(self._latencies)
            last = self.last
            probes, failures = self.probes, self.failures
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))] \
            if latencies else None
        return {
            "probes": probes,
            "failures": failures,
            "failure_rate": (failures / probes) if probes else 0.0,
            "last_latency_ms": round(last.latency * 1000, 3) if last else None,
            "p95_latency_ms": round(p95 * 1000, 3) if p95 is not None else None,
            "last_result": last.reason if last else None,
        }
