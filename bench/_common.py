"""Helpers shared by the benchmarks in bench/.

The machines these run on are shared and noisy, so every benchmark:

- runs its variants round-robin (one sample of each per round, the order
  rotated every round), so a burst of load hits all variants alike;
- reports medians (and p10/p90) and ratios against baselines measured in the
  same run, never absolute numbers from another run;
- prints a table and can write everything as JSON (``--json PATH``).

This module imports only the standard library at the top: spawn and
forkserver children import it (``floor_child`` runs there), and whatever it
imports would be counted in the floor.
"""
from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

# Only cheap, mostly already-loaded modules above: spawn and forkserver
# children re-run the benchmark's __main__ (and so this import) before they
# start, and that cost lands in every variant alike. The rest is imported
# where it is used.

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
TESTS = os.path.join(ROOT, "tests")
APPS = os.path.join(BENCH, "apps")

#: The app every startup figure uses (tests/apps/hello.py, importable as "apps.hello").
APP = "apps.hello:app"

clock = time.monotonic  # the clock pyhost uses too, so event stamps compare


def setup_paths() -> None:
    """Make ``apps.hello`` (tests/apps), ``_common`` (bench/) and pyhost importable.

    Spawn and forkserver children get the parent's ``sys.path``, so they find
    the same modules.
    """
    for path in (ROOT, TESTS, BENCH):
        if path not in sys.path:
            sys.path.insert(0, path)
    # pyhost ships sys.path entries to its child via the spec; subprocesses
    # (the polling baseline) need the environment.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [TESTS, ROOT, BENCH] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                if p and p not in (TESTS, ROOT, BENCH)])
    import logging

    # The failure variants make pyhost log errors on purpose; keep the tables readable.
    logging.getLogger("pyhost").addHandler(logging.NullHandler())


def reexec_for_measurement(module: str) -> None:
    """Re-run this benchmark as ``python -m MODULE`` with the bytecode cache on.

    Two costs would otherwise land in every spawn and forkserver child, floor
    and pyhost alike, and blur the ratios:

    - with ``PYTHONDONTWRITEBYTECODE`` set (as in this project's sandbox),
      every interpreter compiles pyhost, the apps and these files from source;
      on a user's machine they come from ``__pycache__``. The cache goes to a
      directory outside the tree (``PYTHONPYCACHEPREFIX``), so the shared
      checkout stays clean;
    - multiprocessing re-runs the parent's ``__main__`` in each child; a
      script run by path is compiled from source every time (3-4 ms here),
      a module run with ``-m`` is loaded from its cached bytecode.

    ``PYHOST_BENCH_AS_IS=1`` skips this.
    """
    if os.environ.get("PYHOST_BENCH_AS_IS") == "1":
        return
    main = sys.modules["__main__"]
    as_module = getattr(main, "__spec__", None) is not None
    if as_module and not sys.dont_write_bytecode:
        return
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "pyhost-bench-pycache"))
    env["PYTHONPATH"] = os.pathsep.join(
        [BENCH] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module] + sys.argv[1:], env)


def bytecode_cache() -> str:
    if sys.dont_write_bytecode:
        return "off (PYTHONDONTWRITEBYTECODE)"
    return "on (%s)" % (sys.pycache_prefix or "__pycache__")


# --------------------------------------------------------------------------
# Command line and output
# --------------------------------------------------------------------------
def make_parser(description: str, rounds: int, quick_rounds: int) -> Any:
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="few iterations (%d rounds instead of %d): a smoke run, not figures"
                        % (quick_rounds, rounds))
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of the round-robin (default %d, --quick %d)"
                        % (rounds, quick_rounds))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.set_defaults(default_rounds=rounds, quick_rounds=quick_rounds)
    return parser


def rounds_from(args: Any) -> int:
    if args.rounds is not None:
        if args.rounds < 1:
            raise SystemExit("--rounds must be >= 1 (got %d)" % args.rounds)
        return args.rounds
    return args.quick_rounds if args.quick else args.default_rounds


def machine_info() -> Dict[str, Any]:
    """Where and when: the figures mean little without it."""
    import datetime
    import platform

    model = None
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": cpus,
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": load,
        "bytecode_cache": bytecode_cache(),
    }


def summarize(values: Sequence[float]) -> Dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "p10": None, "p90": None, "min": None, "max": None}
    ordered = sorted(values)
    median = statistics.median(ordered)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]

    return {"n": len(ordered), "median": median, "p10": pct(0.1),
            "p90": pct(0.9), "min": ordered[0], "max": ordered[-1]}


def fmt_ms(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return "%.0f" % value
    return "%.1f" % value


def fmt_ratio(value: Optional[float]) -> str:
    return "-" if value is None else "%.2f×" % value


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print()
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
    sys.stdout.flush()


def write_json(path: Optional[str], data: Dict[str, Any]) -> None:
    if not path:
        return
    import json

    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")
    print("\nwrote %s" % path)


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------
Variant = Tuple[str, Callable[[], Optional[float]]]


def round_robin(variants: Sequence[Variant], rounds: int, *, warmup: int = 1,
                progress: bool = True) -> Dict[str, Dict[str, Any]]:
    """Run each variant once per round, rotating the order every round.

    A variant returns one sample in milliseconds, or a dict of samples
    (``{"detected": ms, "ready": ms}``: stored as ``"NAME detected"`` ...),
    or None to skip it. The first ``warmup`` rounds are run and thrown away
    (first-use costs such as starting a forkserver are measured separately,
    on purpose). An exception is counted as an error of that variant and the
    run goes on.
    """
    import traceback

    samples: Dict[str, List[float]] = {}
    errors: Dict[str, List[str]] = {name: [] for name, _ in variants}
    n = len(variants)
    for r in range(warmup + rounds):
        order = [variants[(i + r) % n] for i in range(n)]
        for name, fn in order:
            try:
                value = fn()
            except Exception as exc:  # noqa: BLE001 - keep measuring the others
                errors[name].append("%s: %s" % (type(exc).__name__, exc))
                if len(errors[name]) == 1:
                    traceback.print_exc()
                continue
            if value is None or r < warmup:
                continue
            values = value if isinstance(value, dict) else {None: value}
            for metric, ms in values.items():
                key = name if metric is None else "%s %s" % (name, metric)
                samples.setdefault(key, []).append(ms)
        if progress:
            label = "warm-up" if r < warmup else "round %d/%d" % (r - warmup + 1, rounds)
            print("  %s done" % label, file=sys.stderr, flush=True)
    results: Dict[str, Dict[str, Any]] = {}
    for key, values in samples.items():
        results[key] = dict(summarize(values), samples=[round(v, 3) for v in values])
    for name, errs in errors.items():
        if errs:
            results.setdefault(name, dict(summarize([]), samples=[]))["errors"] = errs
    return results


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------
def get(url: str, timeout: float = 5.0) -> Tuple[int, bytes]:
    """One GET with the standard library (the same client for every variant)."""
    import http.client

    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_ok(url: str, timeout: float = 5.0) -> bytes:
    status, body = get(url, timeout)
    if status != 200:
        raise RuntimeError("GET %s answered %d" % (url, status))
    return body


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (what pytest-flask's fixture does)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def listening_socket(host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A socket that holds a port (listening, never accepting): a foreign server."""
    sock = socket.socket()
    try:
        sock.bind((host, 0))
        sock.listen(16)
        yield sock
    finally:
        sock.close()


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """Point fds 1 and 2 at /dev/null while children are forked from here.

    Werkzeug's ``app.run`` prints a banner and a line per request; children
    inherit the fds, so the tables stay readable.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


# --------------------------------------------------------------------------
# The floor: what any multiprocessing-hosted server must pay
# --------------------------------------------------------------------------
def floor_child(conn: Any, target: str) -> None:
    """Child side of the floor: import the app, ``make_server``, send the port, serve.

    Nothing else: no environment, no control thread, no output capture, no
    typed errors. Runs in the child under every start method.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import importlib

    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr)
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    conn.send(server.port)
    conn.close()
    server.serve_forever()


def floor_start(ctx: Any, target: str = APP,
                phases: Optional[Dict[str, List[float]]] = None) -> Tuple[float, Any]:
    """Start a floor child; return (ms from start to first 200 GET, process).

    ``phases`` collects ms per phase: process started, port received
    (import + bind), GET done.
    """
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=floor_child, args=(child_conn, target), daemon=True)
    started = clock()
    proc.start()
    spawned = clock()
    child_conn.close()
    try:
        port = parent_conn.recv()
    except EOFError:
        proc.join(5)
        raise RuntimeError("floor child exited with %s before sending its port"
                           % proc.exitcode) from None
    finally:
        parent_conn.close()
    bound = clock()
    get_ok("http://127.0.0.1:%d/" % port)
    done = clock()
    if phases is not None:
        add_phases(phases, [("process started", started, spawned),
                            ("loaded + bound", spawned, bound),
                            ("ready (probe)", bound, bound), ("first GET", bound, done)])
    return (done - started) * 1000, proc


def floor(method: str, phases: Optional[Dict[str, List[float]]] = None) -> float:
    """One floor sample of ``method``: ms from start to the first 200 GET."""
    import multiprocessing

    ms, proc = floor_start(multiprocessing.get_context(method), phases=phases)
    end_process(proc)
    return ms


def add_phases(phases: Dict[str, List[float]], spans: Sequence[Tuple[str, float, float]]) -> None:
    for name, begin, end in spans:
        phases.setdefault(name, []).append((end - begin) * 1000)


def end_process(proc: Any) -> None:
    proc.kill()
    proc.join(10)
    try:
        proc.close()
    except (ValueError, AttributeError):
        pass
