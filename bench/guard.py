"""The route guard against the app served directly: first SSE event, req/s, disconnect.

Measured in one run, round-robin, medians:

- **time to first event**: from sending ``GET /sse`` to receiving the first
  ``data:`` line, on a fresh connection, directly from the child and through
  the guard (mounted in a main app served by Werkzeug's threaded server).
  Target: guard ≤ direct + 5 ms;
- **req/s and p99** of ``GET /hello`` with wrk (``-t2 -c8``) when installed,
  else a Python client on a keep-alive pool: directly, through the guard, and
  the front server alone answering a trivial app (the ceiling the guard
  cannot beat). Target: guard ≥ 0.8× direct. The same with the app served
  by waitress (keep-alive, so the guard's pool reuses connections) in a
  process of its own, reached through ``FlaskHost(external_url=...)``. And
  the main app as it is served in production: by gunicorn (2 gthread
  workers, 4 threads each) in a process of its own, its guard reaching either
  app through ``FlaskHost(external_url=...)``;
- **disconnect → upstream closed**: a client reads one event of an endless
  stream (an event every 50 ms) and closes its socket; the time until the
  app's generator is closed (it writes ``time.monotonic()`` to a file).

Run: ``.venv/bin/python bench/guard.py [--quick] [--duration S] [--json PATH]``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

c.setup_paths()

APP = os.path.join(c.APPS, "streams.py") + ":app"


@contextlib.contextmanager
def front(app: Any, server: str) -> Iterator[str]:
    """``app`` served in this process by ``server`` ("werkzeug" or "waitress")."""
    if server == "waitress":
        import waitress

        srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        try:
            yield "127.0.0.1:%s" % srv.effective_port
        finally:
            for channel in list(srv._map.values()):
                channel.close()
            thread.join(5)
        return
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1:%d" % srv.port
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@contextlib.contextmanager
def waitress_child() -> Iterator[str]:
    """The same app served by waitress (keep-alive) in a process of its own."""
    port = c.free_port()
    code = ("import sys, waitress; sys.path.insert(0, %r); from streams import app; "
            "waitress.serve(app, host='127.0.0.1', port=%d, threads=4, _quiet=True)"
            % (c.APPS, port))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("waitress did not start for the benchmark") from None
                time.sleep(0.05)
        yield "127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def gunicorn_front(upstream: str) -> Iterator[str]:
    """The main app with the guard served by gunicorn (2 gthread workers, 4 threads each)
    in a process of its own, as in production; each worker's guard reaches ``upstream``
    (a running app) through ``FlaskHost(external_url=...)``."""
    port = c.free_port()
    env = dict(os.environ, PYHOST_BENCH_UPSTREAM=upstream)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.abspath(__file__))]
                                        + [p for p in env.get("PYTHONPATH", "").split(
                                            os.pathsep) if p])
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread",
                             "--threads", "4", "-b", "127.0.0.1:%d" % port,
                             "--log-level", "warning", "guard:gunicorn_app()"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = "127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 60
        answered = 0
        while answered < 8:  # both workers up and their hosts ready
            try:
                c.get_ok("http://%s/g/hello" % address, timeout=2)
                answered += 1
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start for the benchmark") from None
                time.sleep(0.1)
        yield address
    finally:
        proc.terminate()
        proc.wait(20)


def gunicorn_app() -> Any:
    """gunicorn's app factory for :func:`gunicorn_front` (called in each worker)."""
    from pyhost import FlaskHost

    external = FlaskHost(external_url=os.environ["PYHOST_BENCH_UPSTREAM"],
                         liveness_interval=None)
    external.start()
    return mounted(external.proxy_app())


def mounted(guard: Any) -> Any:
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    main = Flask("front")
    main.wsgi_app = DispatcherMiddleware(main.wsgi_app, {"/g": guard})  # type: ignore[method-assign]
    return main


def trivial(environ: Any, start_response: Any) -> List[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def open_get(address: str, path: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, address)).encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise TimeoutError("no %r within %s s (got %r)" % (marker, timeout, data[:200]))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before %r" % marker)
        data += chunk
    return data


def first_event(address: str, path: str) -> float:
    """Milliseconds from sending the request to the first event."""
    started = c.clock()
    sock = open_get(address, path)
    try:
        read_until(sock, b"data: 0\n\n")
        return (c.clock() - started) * 1000
    finally:
        sock.close()


def disconnect(address: str, path: str, folder: str) -> float:
    """Milliseconds from the client's close to the app's generator being closed."""
    flag = os.path.join(folder, "flag-%d" % time.monotonic_ns())
    sock = open_get(address, path + "&flag=" + flag)
    try:
        read_until(sock, b"data: tick\n\n")
    finally:
        closed_at = c.clock()
        sock.close()
    deadline = closed_at + 10
    while c.clock() < deadline:
        try:
            with open(flag) as handle:
                text = handle.read()
            if text:
                return (float(text) - closed_at) * 1000
        except OSError:
            pass
        time.sleep(0.001)
    raise TimeoutError("the app's stream was not closed within 10 s")


def load(url: str, duration: float) -> Dict[str, float]:
    """``{"rps": ..., "p99": ms}`` from wrk, or from a Python pool client."""
    if shutil.which("wrk"):
        seconds = "-d%ds" % max(1, round(duration))
        out = subprocess.run(["wrk", "-t2", "-c8", seconds, "--latency", url],
                             capture_output=True, text=True, timeout=duration + 30).stdout
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if found is None:
            raise RuntimeError("wrk gave no figures for %s: %s" % (url, out[-300:]))
        rps = float(found.group(1))
        match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        p99 = float(match.group(1)) * scale[match.group(2)] if match else float("nan")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            raise RuntimeError("wrk: %s non-2xx answers from %s" % (errors.group(1), url))
        return {"rps": rps, "p99": p99}
    return python_load(url, duration)


def python_load(url: str, duration: float, clients: int = 8) -> Dict[str, float]:
    import urllib3

    pool = urllib3.PoolManager(maxsize=clients)
    latencies: List[float] = []
    lock = threading.Lock()
    stop = c.clock() + duration

    def worker() -> None:
        mine = []
        while c.clock() < stop:
            started = c.clock()
            pool.request("GET", url, retries=False)
            mine.append((c.clock() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"rps": len(latencies) / duration,
            "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")}


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        c.reexec_for_measurement("guard")
    parser = c.make_parser(__doc__.split("\n")[0], rounds=20, quick_rounds=3)
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of load per req/s sample (default 3, --quick 1)")
    args = parser.parse_args(argv)
    rounds = c.rounds_from(args)
    duration = args.duration or (1.0 if args.quick else 3.0)
    load_rounds = max(1, min(rounds, 3 if args.quick else 5))

    from pyhost import FlaskHost

    info = c.machine_info()
    tool = "wrk -t2 -c8" if shutil.which("wrk") else "Python pool client, 8 threads"
    print("pyhost guard benchmark: %d rounds (req/s: %d x %.0f s, %s), %s, %s cores, Python %s"
          % (rounds, load_rounds, duration, tool, info["date"], info["cpus"], info["python"]))
    logging.getLogger("waitress").setLevel(logging.ERROR)  # "Task queue depth" under load
    folder = tempfile.mkdtemp(prefix="pyhost-bench-guard-")
    host = FlaskHost(APP, port=0, liveness_interval=None, is_development=False)
    with waitress_child() as kept_alive, host, \
            FlaskHost(external_url="http://%s/hello" % kept_alive,
                      liveness_interval=None) as external, \
            front(mounted(external.proxy_app()), "waitress") as pooled_front, \
            front(mounted(host.proxy_app()), "werkzeug") as werkzeug_front, \
            front(mounted(host.proxy_app()), "waitress") as waitress_front, \
            front(trivial, "werkzeug") as bare_werkzeug, \
            front(trivial, "waitress") as bare_waitress, \
            gunicorn_front(host.url + "/hello") as gunicorn_guard, \
            gunicorn_front("http://%s/hello" % kept_alive) as gunicorn_pooled:
        direct = host.url.split("//", 1)[1]
        sse = "/sse?count=3&interval=0.2"
        forever = "/forever?interval=0.05"
        events = c.round_robin([
            ("first event/direct", lambda: first_event(direct, sse)),
            ("first event/guard (werkzeug front)", lambda: first_event(werkzeug_front, "/g" + sse)),
            ("first event/guard (waitress front)", lambda: first_event(waitress_front, "/g" + sse)),
            ("disconnect/direct", lambda: disconnect(direct, forever, folder)),
            ("disconnect/guard (werkzeug front)",
             lambda: disconnect(werkzeug_front, "/g" + forever, folder)),
        ], rounds)
        loads: Dict[str, List[Dict[str, float]]] = {}

        def sample(name: str, url: str) -> Any:
            def run() -> float:
                result = load(url, duration)
                loads.setdefault(name, []).append(result)
                return result["rps"]
            return run

        throughput = c.round_robin([
            ("req/s/direct", sample("direct", "http://%s/hello" % direct)),
            ("req/s/guard (werkzeug front)", sample("guard (werkzeug front)",
                                                    "http://%s/g/hello" % werkzeug_front)),
            ("req/s/guard (waitress front)", sample("guard (waitress front)",
                                                    "http://%s/g/hello" % waitress_front)),
            ("req/s/werkzeug front alone", sample("werkzeug front alone",
                                                  "http://%s/" % bare_werkzeug)),
            ("req/s/waitress front alone", sample("waitress front alone",
                                                  "http://%s/" % bare_waitress)),
            ("req/s/direct (waitress child)", sample("direct (waitress child)",
                                                     "http://%s/hello" % kept_alive)),
            ("req/s/guard (waitress front, waitress child)", sample(
                "guard (waitress front, waitress child)", "http://%s/g/hello" % pooled_front)),
            ("req/s/guard (gunicorn front)", sample("guard (gunicorn front)",
                                                    "http://%s/g/hello" % gunicorn_guard)),
            ("req/s/guard (gunicorn front, waitress child)", sample(
                "guard (gunicorn front, waitress child)",
                "http://%s/g/hello" % gunicorn_pooled)),
        ], load_rounds, warmup=0)
    shutil.rmtree(folder, ignore_errors=True)

    def med(results: Dict[str, Any], name: str) -> Optional[float]:
        return results.get(name, {}).get("median")

    direct_ttfe = med(events, "first event/direct")
    rows = []
    for name in ("direct", "guard (werkzeug front)", "guard (waitress front)"):
        value = med(events, "first event/" + name)
        rows.append([name, c.fmt_ms(value), c.fmt_ms(events.get("first event/" + name, {})
                                                       .get("p90")),
                     "-" if name == "direct" or value is None or direct_ttfe is None
                     else "%+.1f ms" % (value - direct_ttfe)])
    c.print_table("SSE time to first event (ms, fresh connection; an event every 200 ms)",
                  ["path", "median", "p90", "vs direct"], rows)

    rows = []
    for name in ("direct", "guard (werkzeug front)"):
        stats = events.get("disconnect/" + name, {})
        rows.append([name, c.fmt_ms(stats.get("median")), c.fmt_ms(stats.get("max"))])
    c.print_table("Client disconnect -> app's stream closed (ms; an event every 50 ms)",
                  ["path", "median", "max"], rows)

    direct_rps = med(throughput, "req/s/direct")
    kept_rps = med(throughput, "req/s/direct (waitress child)")
    rows = []
    for name, base in (("direct", direct_rps), ("guard (werkzeug front)", direct_rps),
                       ("guard (waitress front)", direct_rps),
                       ("guard (gunicorn front)", direct_rps),
                       ("werkzeug front alone", direct_rps), ("waitress front alone", direct_rps),
                       ("direct (waitress child)", kept_rps),
                       ("guard (waitress front, waitress child)", kept_rps),
                       ("guard (gunicorn front, waitress child)", kept_rps)):
        rps = med(throughput, "req/s/" + name)
        p99s = sorted(r["p99"] for r in loads.get(name, []))
        p99 = p99s[len(p99s) // 2] if p99s else None
        rows.append([name, "-" if rps is None else "%.0f" % rps, c.fmt_ms(p99),
                     c.fmt_ratio(c.ratio(rps, base))])
    c.print_table("GET /hello, %s, %.0f s per sample, medians of %d" % (tool, duration,
                                                                         load_rounds),
                  ["path", "req/s", "p99 ms", "vs direct"], rows)

    checks = []
    for name in ("guard (werkzeug front)", "guard (waitress front)",
                 "guard (waitress front, waitress child)", "guard (gunicorn front)",
                 "guard (gunicorn front, waitress child)"):
        if "child" in name:
            ratio = c.ratio(med(throughput, "req/s/" + name), kept_rps)
            checks.append(("req/s %s >= 0.8x direct (waitress child)" % name,
                           ratio is not None and ratio >= 0.8, c.fmt_ratio(ratio)))
            continue
        value = med(events, "first event/" + name)
        if value is not None:
            checks.append(("first event %s <= direct + 5 ms" % name,
                           direct_ttfe is not None and value <= direct_ttfe + 5,
                           c.fmt_ms(value) + " ms"))
        rps = med(throughput, "req/s/" + name)
        ratio = c.ratio(rps, direct_rps)
        checks.append(("req/s %s >= 0.8x direct" % name, ratio is not None and ratio >= 0.8,
                       c.fmt_ratio(ratio)))
    print()
    for label, ok, value in checks:
        print("%s %s: %s" % ("PASS" if ok else "MISS", label, value))
    c.write_json(args.json, {"machine": info, "events": events, "throughput": throughput,
                             "loads": loads, "checks": [list(check) for check in checks]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
