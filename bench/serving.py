"""Serving throughput: each pyhost backend against the same server run bare.

Measured in one run, round-robin (one sample of every variant per round, the
order rotated), medians over the rounds, with one client for all: ``wrk -t2
-c8 --latency`` (``apt-get install wrk``) against ``/`` of the same app:

- bare Werkzeug ``make_server(threaded=True)`` vs pyhost ``server="werkzeug"``;
- bare ``waitress.serve`` vs pyhost ``server="waitress"``;
- bare ``gunicorn -w 2`` vs pyhost ``server="gunicorn", workers=2``;
- bare ``uvicorn`` vs pyhost ``server="uvicorn"`` (an ASGI hello app);

and the requests that fail while a gunicorn worker is SIGKILLed under that
load (pyhost ``server="gunicorn", workers=2``).

Targets: each pyhost backend >= 0.95x the same server bare; the best pyhost
configuration >= bare gunicorn -w2; a killed worker costs no more than the
requests it had in flight.

Run: ``.venv/bin/python bench/serving.py [--quick] [--duration S] [--json PATH]``.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

c.setup_paths()


WSGI_APP = ("apps.hello", "app")
ASGI_APP = ("apps.asgi_bare", "app")
CONNECTIONS = 8
THREADS = 2

BARE = {
    "werkzeug": "from werkzeug.serving import make_server\n"
                "from apps.hello import app\n"
                "make_server('127.0.0.1', {port}, app, threaded=True).serve_forever()\n",
    "waitress": "import waitress\nfrom apps.hello import app\n"
                "waitress.serve(app, host='127.0.0.1', port={port})\n",
}


def bare_command(server: str, port: int) -> List[str]:
    if server in BARE:
        return [sys.executable, "-c", BARE[server].format(port=port)]
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port,
                "--no-control-socket", "apps.hello:app"]
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "apps.asgi_bare:app"]
    raise ValueError(server)


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c.get_ok("http://127.0.0.1:%d/" % port, timeout=2)
            return
        except (OSError, RuntimeError):
            time.sleep(0.05)
    raise RuntimeError("nothing answered on port %d" % port)


class Bare:
    """The server run as its own documentation says, output to /dev/null."""

    def __init__(self, server: str) -> None:
        self.port = c.free_port()
        self.proc = subprocess.Popen(bare_command(server, self.port), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=c.TESTS)
        try:
            wait_listening(self.port)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/" % self.port

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Hosted:
    """The same app under pyhost."""

    def __init__(self, server: str, workers: int = 1) -> None:
        from pyhost import FlaskHost

        module, attr = ASGI_APP if server == "uvicorn" else WSGI_APP
        self.host = FlaskHost("%s:%s" % (module, attr), port=0, server=server, workers=workers,
                              is_development=False)
        self.host.start()
        wait_listening(self.host.port)

    @property
    def url(self) -> str:
        return self.host.url + "/"

    def close(self) -> None:
        self.host.stop()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(url: str, duration: float) -> Dict[str, float]:
    """req/s, p99 (ms) and failed requests of one wrk run."""
    done = subprocess.run(["wrk", "-t%d" % THREADS, "-c%d" % CONNECTIONS,
                           "-d%ds" % max(1, int(round(duration))), "--latency", url],
                          capture_output=True, text=True, timeout=duration + 60)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = (sum(int(x) for x in errors.groups()) if errors else 0) + (
        int(non2xx.group(1)) if non2xx else 0)
    return {"rps": rps, "p99": float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else 0.0,
            "failed": float(failed)}


def sample(make: Callable[[], Any], duration: float) -> Callable[[], Dict[str, float]]:
    def run() -> Dict[str, float]:
        server = make()
        try:
            return wrk(server.url, duration)
        finally:
            server.close()
    return run


def kill_under_load(duration: float) -> Dict[str, float]:
    """wrk against pyhost gunicorn workers=2; one worker SIGKILLed a third of the way in."""
    import threading

    served = Hosted("gunicorn", workers=2)
    try:
        deadline = time.monotonic() + 20
        while len(served.host.status().workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = served.host.status().workers[0]
        timer = threading.Timer(duration / 3, os.kill, (victim, signal.SIGKILL))
        timer.start()
        result = wrk(served.url, duration)
        timer.join()
        replaced = victim not in served.host.status().workers
        return dict(result, replaced=1.0 if replaced else 0.0)
    finally:
        served.close()


PAIRS = [("werkzeug", 1), ("waitress", 1), ("gunicorn", 2), ("uvicorn", 1)]


def label(kind: str, server: str, workers: int) -> str:
    extra = " -w2" if kind == "bare" and workers > 1 else (
        " workers=2" if workers > 1 else "")
    return "%s %s%s" % (kind, server, extra)


def main() -> None:
    parser = c.make_parser(__doc__.splitlines()[0], rounds=3, quick_rounds=1)
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of load per sample (default 5, --quick 2)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serving.py needs wrk: apt-get install -y wrk")
    rounds = c.rounds_from(args)
    duration = args.duration or (2.0 if args.quick else 5.0)
    variants: List[Tuple[str, Callable[[], Any]]] = []
    for server, workers in PAIRS:
        variants.append((label("bare", server, workers),
                         sample(lambda s=server: Bare(s), duration)))
        variants.append((label("pyhost", server, workers),
                         sample(lambda s=server, w=workers: Hosted(s, w), duration)))
    variants.append(("pyhost gunicorn workers=2, one worker SIGKILLed",
                     lambda: kill_under_load(duration)))
    print("serving: wrk -t%d -c%d, %.0f s per sample, %d round(s) + 1 warm-up, round-robin"
          % (THREADS, CONNECTIONS, duration, rounds), file=sys.stderr)
    results = c.round_robin(variants, rounds)

    def median(name: str, metric: str) -> Optional[float]:
        return results.get("%s %s" % (name, metric), {}).get("median")

    rows = []
    for server, workers in PAIRS:
        bare, hosted = label("bare", server, workers), label("pyhost", server, workers)
        for name in (bare, hosted):
            rows.append([name, "%.0f" % (median(name, "rps") or 0), c.fmt_ms(median(name, "p99")),
                         c.fmt_ratio(c.ratio(median(name, "rps"), median(bare, "rps")))])
    best = max((label("pyhost", s, w) for s, w in PAIRS if s != "uvicorn"),
               key=lambda n: median(n, "rps") or 0)
    gunicorn_bare = label("bare", "gunicorn", 2)
    kill = "pyhost gunicorn workers=2, one worker SIGKILLed"
    print("\n| variant | req/s | p99 (ms) | vs bare |\n|---|---:|---:|---:|")
    for row in rows:
        print("| %s |" % " | ".join(row))
    print("\nbest pyhost WSGI config: %s, %s of bare gunicorn -w2"
          % (best, c.fmt_ratio(c.ratio(median(best, "rps"), median(gunicorn_bare, "rps")))))
    print("requests failed while a gunicorn worker was SIGKILLed under load: %s (median of %d; "
          "%.0f req/s meanwhile; worker replaced: %s)"
          % (c.fmt_ms(median(kill, "failed")), rounds, median(kill, "rps") or 0,
             "yes" if (median(kill, "replaced") or 0) >= 1 else "no"))
    c.write_json(args.json, {"machine": c.machine_info(), "duration": duration,
                             "connections": CONNECTIONS, "threads": THREADS,
                             "results": results})


if __name__ == "__main__":
    main()
