"""The reliability scenarios, sized by their caller: the tests run them short,
``bench/reliability.py`` runs them long and prints the figures.

Each returns a dict of what it measured; nothing here asserts.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

import psutil

from pyhost import FlaskHost, HostError

from .conftest import app, hang_line

HELLO = "apps.hello:app"  # tests/apps, on sys.path through tests/conftest.py


# ------------------------------------------------------------------ resources
def resources() -> Dict[str, Any]:
    """What this process holds now: fds, threads, children, listening sockets, RSS."""
    me = psutil.Process()
    children = [p for p in me.children(recursive=True) if _counts(p)]
    listening = [c for c in me.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    return {"fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count(),
            "children": len(children), "listening": len(listening),
            "rss_mb": me.memory_info().rss / 1e6}


def _counts(proc: psutil.Process) -> bool:
    # multiprocessing's forkserver and resource tracker live as long as this process.
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "forkserver" not in cmdline and "resource_tracker" not in cmdline


def settled(before: Dict[str, Any], timeout: float = 10.0) -> Dict[str, Any]:
    """Resources after the work, once exited children and closed threads are gone."""
    deadline = time.monotonic() + timeout
    while True:
        now = resources()
        calm = all(now[key] <= before[key] for key in ("fds", "threads", "children", "listening"))
        if calm or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def delta(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, Any]:
    return {key: round(after[key] - before[key], 1) for key in before}


# --------------------------------------------------------------------- cycles
def start_stop_cycles(count: int, method: Optional[str] = None) -> Dict[str, Any]:
    with FlaskHost(HELLO, port=0, start_method=method):
        pass  # warm: the forkserver and resource tracker start once
    before = resources()
    started = time.monotonic()
    for _ in range(count):
        with FlaskHost(HELLO, port=0, start_method=method) as host:
            with urllib.request.urlopen(host.url, timeout=10) as response:
                response.read()
    seconds = time.monotonic() - started
    after = settled(before)
    return {"cycles": count, "seconds": round(seconds, 1), "leaked": delta(before, after)}


def _held_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


#: One target per error type a start can end in, and the config it needs.
FAILURES: Dict[str, Callable[[socket.socket], Dict[str, Any]]] = {
    "DependencyError": lambda held: {"app": "apps.missing_dep:app"},
    "AppLoadError": lambda held: {"app": "apps.raises_at_import:app"},
    "AppNotFound": lambda held: {"app": "apps.no_such_module_here:app"},
    "ProcessCrash": lambda held: {"app": "apps.crash_at_import:app", "auto_restart": False},
    "PortInUse": lambda held: {"app": HELLO, "port": held.getsockname()[1]},
    "HealthCheckTimeout": lambda held: {"app": app("hang_sleep"), "startup_timeout": 0.5},
}


def failed_starts(count: int, kinds: Optional[List[str]] = None) -> Dict[str, Any]:
    held = _held_port()
    try:
        for kind, make in FAILURES.items():  # warm each path once
            if kinds is None or kind in kinds:
                _fail_once(make(held))
        before = resources()
        raised: Dict[str, Dict[str, int]] = {}
        started = time.monotonic()
        for kind, make in FAILURES.items():
            if kinds is not None and kind not in kinds:
                continue
            seen: Dict[str, int] = {}
            for _ in range(count):
                name = _fail_once(make(held))
                seen[name] = seen.get(name, 0) + 1
            raised[kind] = seen
        seconds = time.monotonic() - started
        after = settled(before)
    finally:
        held.close()
    return {"per_type": count, "raised": raised, "seconds": round(seconds, 1),
            "leaked": delta(before, after)}


def _fail_once(fields: Dict[str, Any]) -> str:
    fields = dict(fields)
    target = fields.pop("app")
    fields.setdefault("port", 0)
    try:
        FlaskHost(target, **fields).start().stop()
    except HostError as exc:
        return type(exc).__name__
    return "started"


# ----------------------------------------------------------------- kill storm
def kill_storm(kills: int, method: Optional[str] = None, clients: int = 2) -> Dict[str, Any]:
    """SIGKILL the child ``kills`` times under client load; every kill must be recovered."""
    # Restarts back off exponentially (restart_delay × 2^n) until a child has
    # stayed healthy for restart_window: each kill comes after that, so each
    # outage is one plain restart, not a backoff that grew over the storm.
    window = 0.1
    host = FlaskHost(HELLO, port=0, start_method=method, restart_delay=0.01,
                     max_restart_attempts=kills + 10, restart_window=window,
                     liveness_interval=None)
    stop = threading.Event()
    # refused: the port had no server (the child was down); cut: a request
    # under way when its child was killed.
    counts = {"ok": 0, "refused": 0, "cut": 0}
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(host.url, timeout=5) as response:
                    response.read()
                key = "ok"
            except Exception as exc:  # noqa: BLE001 - refused, reset or cut short by a kill
                refused = isinstance(getattr(exc, "reason", exc), ConnectionRefusedError)
                key = "refused" if refused else "cut"
                time.sleep(0.005)
            with lock:
                counts[key] += 1

    outages: List[float] = []
    recovered = 0
    with host:
        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for _ in range(kills):
            pid = host.pid
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            deadline = killed + 30
            while time.monotonic() < deadline:
                if host.is_ready() and host.pid not in (None, pid) and _answers(host.url):
                    recovered += 1
                    outages.append(time.monotonic() - killed)
                    break
                time.sleep(0.002)
            else:
                break
            time.sleep(window * 1.5)  # served time between kills
        stop.set()
        for thread in threads:
            thread.join(10)
    return {"kills": kills, "recovered": recovered, "requests_ok": counts["ok"],
            "requests_refused": counts["refused"], "requests_cut": counts["cut"],
            "longest_outage_ms": round(max(outages) * 1000) if outages else None,
            "median_outage_ms": round(sorted(outages)[len(outages) // 2] * 1000)
            if outages else None}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------- floods
def flood_output(no_newline_mb: int, line_mb: int) -> Dict[str, Any]:
    """Output without a newline, then one huge line: the parent keeps a bounded amount."""
    with FlaskHost(app("flood"), port=0) as host:
        rss = psutil.Process().memory_info().rss
        _get(host.url_for("/no-newline?mb=%d" % no_newline_mb))
        _get(host.url_for("/one-line?mb=%d" % line_mb))
        _get(host.url)  # ends the unfinished line of the first flood
        deadline = time.monotonic() + 60
        expected = (no_newline_mb + line_mb) * 1024 * 1024
        buffer = host._output
        while buffer.total_bytes < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        grown = (psutil.Process().memory_info().rss - rss) / 1e6
        logs = host.logs(10_000)
        tail = buffer.tail()
        return {"written_mb": no_newline_mb + line_mb,
                "read_mb": round(buffer.total_bytes / 2**20, 1),
                "parent_rss_growth_mb": round(grown, 1),
                "logs_chars": sum(len(line) for line in logs),
                "longest_line_chars": max(len(line) for line in logs),
                "error_tail_chars": sum(len(line) for line in tail),
                "cut_lines": sum(1 for line in logs if "[cut " in line)}


def big_responses(count: int, megabytes: int) -> Dict[str, Any]:
    """Whole large responses, byte for byte."""
    received = []
    started = time.monotonic()
    with FlaskHost(app("flood"), port=0) as host:
        for _ in range(count):
            received.append(len(_get(host.url_for("/big?mb=%d" % megabytes))))
    seconds = time.monotonic() - started
    return {"responses": count, "mb_each": megabytes,
            "complete": sum(1 for size in received if size == megabytes * 2**20),
            "seconds": round(seconds, 1)}


def endless_responses_during_stop(clients: int) -> Dict[str, Any]:
    """stop() while clients read responses that never end: bounded, and the port is free."""
    host = FlaskHost(app("flood"), port=0, shutdown_timeout=2.0)
    host.start()
    port, pid = host.port, host.pid
    reading = threading.Barrier(clients + 1)

    def reader() -> None:
        try:
            with urllib.request.urlopen(host.url_for("/forever"), timeout=30) as response:
                response.read(65536)
                reading.wait(10)
                while response.read(65536):
                    pass
        except Exception:  # noqa: BLE001 - the response ends when the child stops
            pass

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    reading.wait(10)
    seconds, said = _stop_listening(host)
    # "✓ Stopped NAME (pid N, stopped|terminated|killed)": how the child ended.
    ended = [m.rsplit(", ", 1)[1].rstrip(")") for m in said.messages if "Stopped" in m]
    for thread in threads:
        thread.join(10)
    with socket.socket() as sock:
        # Free again for a server (which sets SO_REUSEADDR: TIME_WAIT is no obstacle).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    return {"clients": clients, "stop_seconds": round(seconds, 2),
            "ended": ended[0] if ended else None,
            "child_gone": not psutil.pid_exists(pid) or
            psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
            "readers_ended": sum(1 for thread in threads if not thread.is_alive())}


class _Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


# ---------------------------------------------------------------------- hangs
def hang(name: str, method: Optional[str] = None, startup_timeout: float = 2.0) -> Dict[str, Any]:
    """A hang at import: how long until the error, and whether it names the line."""
    started = time.monotonic()
    try:
        FlaskHost(app(name), port=0, startup_timeout=startup_timeout,
                  start_method=method).start().stop()
        return {"error": None}
    except HostError as exc:
        return {"error": type(exc).__name__, "seconds": round(time.monotonic() - started, 2),
                "names_line": hang_line(name) in exc.message}


# -------------------------------------------------------------------- orphans
def orphans(method: str, rounds: int) -> Dict[str, Any]:
    """SIGKILL a parent holding a host; count its processes still alive 10 s later."""
    from test_orphans import PARENT  # tests/test_orphans.py: one parent script for both

    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    processes = left = 0
    for _ in range(rounds):
        parent = subprocess.Popen([sys.executable, "-c", PARENT, tests, method],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            parent.stdout.readline()
            started = [int(pid) for pid in parent.stdout.readline().split()]
            processes += len(started)
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait(10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and [p for p in started if _alive(p)]:
                time.sleep(0.02)
            left += len([p for p in started if _alive(p)])
        finally:
            parent.kill()
            parent.wait()
            parent.stdout.close()
            parent.stdin.close()
    return {"method": method, "rounds": rounds, "processes": processes, "orphans": left}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def request_hang() -> Dict[str, Any]:
    """A request hang found by liveness probes: time to the error, and its line."""
    crashed: List[Any] = []
    host = FlaskHost(app("hang_request"), port=0, liveness_interval=0.3, liveness_failures=2,
                     restart_delay=0.1,
                     on_event=lambda e: crashed.append(e.error) if e.name == "crashed" else None)
    with host:
        _get(host.url_for("/hang"))
        threading.Thread(target=_answers, args=(host.url,), daemon=True).start()
        started = time.monotonic()
        while not crashed and time.monotonic() < started + 30:
            time.sleep(0.01)
        seconds = time.monotonic() - started
    error = crashed[0] if crashed else None
    return {"error": type(error).__name__ if error else None, "seconds": round(seconds, 2),
            "names_line": bool(error) and hang_line("hang_request") in error.message}


def _stop_listening(host: Any) -> Tuple[float, "_Said"]:
    """``host.stop()``: how long it took, and what pyhost logged meanwhile (INFO and up)."""
    said = _Said()
    logger = logging.getLogger("pyhost")
    level = logger.level
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    started = time.monotonic()
    try:
        host.stop()
    finally:
        seconds = time.monotonic() - started
        logger.removeHandler(said)
        logger.setLevel(level)
    return seconds, said


def sigterm_ignored(shutdown_timeout: float = 1.5) -> Dict[str, Any]:
    """stop() of a child that ignores SIGTERM and holds the GIL: killed, the line logged."""
    host = FlaskHost(app("ignores_sigterm"), port=0, shutdown_timeout=shutdown_timeout,
                     liveness_interval=None)
    host.start()
    threading.Thread(target=_answers, args=(host.url_for("/spin"),), daemon=True).start()
    while _answers(host.url):
        time.sleep(0.05)
    seconds, said = _stop_listening(host)
    warning = next((m for m in said.messages if "did not stop" in m), "")
    return {"stop_seconds": round(seconds, 2), "killed": "killing it" in warning,
            "names_line": hang_line("ignores_sigterm") in warning}
