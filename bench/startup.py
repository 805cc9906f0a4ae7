"""How long from ``FlaskHost(...).start()`` to the first successful GET, against baselines.

For each start method (fork, spawn, forkserver) pyhost is measured against:

- the **floor**: a bare ``multiprocessing`` child of the same start method that
  imports the same app, binds ``werkzeug.serving.make_server`` and sends the
  port over a pipe; the parent waits for the port, then does one GET. Nothing
  any hosting library does can be cheaper. For forkserver, both **warm** (a
  running forkserver with Flask preloaded, measured in this process after a
  warm-up) and **cold** (a fresh process per sample, so a fresh forkserver);
- **pytest-flask**'s ``LiveServer`` (fork; it imports the app in the parent and
  spins on ``connect()``);
- the **hand-rolled way**: ``subprocess.Popen`` of a script, then polling
  ``/health`` from 500 ms with ×1.2 backoff.

It also times how long a missing dependency and a port in use take to raise,
and what pytest-flask does when a foreign server holds its port.

Run: ``.venv/bin/python bench/startup.py [--quick] [--json PATH]``.
All variants run round-robin; the table shows medians and ratios of medians
measured in the same run. The top level imports only the standard library and
``_common``: spawn and forkserver children re-import this file as
``__mp_main__``, and every variant should pay the same for it.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from functools import partial
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

c.setup_paths()

METHODS = ("fork", "spawn", "forkserver")
MISSING_DEP = os.path.join(c.APPS, "missing_dep.py") + ":app"
POLLED_SCRIPT = os.path.join(c.APPS, "polled_server.py")


# --------------------------------------------------------------------------
# pyhost
# --------------------------------------------------------------------------
def pyhost_start(method: Optional[str], phases: Optional[Dict[str, List[float]]] = None) -> float:
    """ms from ``FlaskHost(...).start()`` to the first 200 GET (``method=None``: the default)."""
    import queue

    from pyhost import FlaskHost

    stamps: Dict[str, float] = {}

    def on_event(event: Any) -> None:
        stamps.setdefault(event.name, c.clock())

    class Recording(queue.Queue):  # type: ignore[type-arg]
        """The host's event queue, noting when the child's reports reached the parent."""

        def put(self, item: Any, *args: Any, **kwargs: Any) -> None:
            stamps.setdefault(type(item.message).__name__.lower(), item.at)
            super().put(item, *args, **kwargs)

    fields: Dict[str, Any] = {"port": 0, "is_development": False}
    if method is not None:
        fields["start_method"] = method
    host = FlaskHost(c.APP, on_event=on_event, **fields)
    if phases is not None:
        # Profiling only: the queue the launcher hands to each child's pump.
        host._launcher.events = host._supervisor.events = Recording()
    started = c.clock()
    try:
        host.start()
        ready = c.clock()
        c.get_ok(host.url + "/")
        done = c.clock()
    finally:
        host.stop()
    if phases is not None:
        # "started": Process.start() returned and the pump thread runs;
        # "bound": the child's report arrived; "ready": the probe passed.
        c.add_phases(phases, [("process started", started, stamps["started"]),
                              ("loaded + bound", stamps["started"], stamps["bound"]),
                              ("ready (probe)", stamps["bound"], ready),
                              ("first GET", ready, done)])
    return (done - started) * 1000


def pyhost_failure(method: Optional[str], kind: str) -> float:
    """ms from ``start()`` until the typed error is raised."""
    import pyhost

    fields: Dict[str, Any] = {"is_development": False}
    if method is not None:
        fields["start_method"] = method
    if kind == "missing_dep":
        expected: Any = pyhost.DependencyError
        host = pyhost.FlaskHost(MISSING_DEP, port=0, **fields)
        started = c.clock()
        try:
            host.start()
        except expected:
            return (c.clock() - started) * 1000
        finally:
            host.stop()
        raise RuntimeError("start() of an app with a missing dependency did not raise")
    with c.listening_socket() as holder:
        port = holder.getsockname()[1]
        host = pyhost.FlaskHost(c.APP, port=port, **fields)
        started = c.clock()
        try:
            host.start()
        except pyhost.PortInUse:
            return (c.clock() - started) * 1000
        finally:
            host.stop()
    raise RuntimeError("start() on a port in use did not raise PortInUse")


# --------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------
def pytest_flask_start() -> float:
    """pytest-flask's LiveServer as its ``live_server`` fixture uses it (a fixed free port)."""
    from apps.hello import app
    from pytest_flask.live_server import LiveServer

    server = LiveServer(app, "127.0.0.1", c.free_port(), 5, clean_stop=False)
    started = c.clock()
    try:
        with c.quiet_fds():
            server.start()
        c.get_ok(server.url("/"))
        return (c.clock() - started) * 1000
    finally:
        server.stop()
        if server._process is not None:
            server._process.join(10)


def polling_start() -> float:
    """Hand-rolled: Popen a script, poll /health from 500 ms, ×1.2 backoff, max 2 s, 20 tries."""
    import subprocess
    import time

    port = c.free_port()
    started = c.clock()
    proc = subprocess.Popen([sys.executable, POLLED_SCRIPT, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        interval = 0.5
        for _ in range(20):
            time.sleep(interval)
            try:
                status, _body = c.get("http://127.0.0.1:%d/health" % port, timeout=2.0)
            except OSError:
                status = None
            if status == 200:
                c.get_ok("http://127.0.0.1:%d/" % port)
                return (c.clock() - started) * 1000
            interval = min(interval * 1.2, 2.0)
        raise RuntimeError("polled server never became healthy")
    finally:
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------
# Cold forkserver: one fresh interpreter per sample
# --------------------------------------------------------------------------
def cold_sample(kind: str) -> float:
    """Run one sample in a fresh interpreter, so its forkserver starts from scratch."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-m", "startup", "--sample", kind],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("cold sample %s failed: %s" % (kind, out.stderr.strip()[-500:]))
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def _run_sample(kind: str) -> float:
    """Inside the fresh interpreter: what a user's script pays on its first start()."""
    if kind == "pyhost-cold":
        import pyhost  # noqa: F401 - a user's script imports it before start()

        return pyhost_start("forkserver")
    if kind == "floor-cold":
        # A fresh forkserver as multiprocessing makes it: nothing but __main__ preloaded.
        return c.floor("forkserver")
    if kind == "floor-cold-preloaded":
        # A fresh forkserver that preloads what pyhost's preloads, minus pyhost.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["werkzeug.serving", "werkzeug.debug", "flask",
                                    "importlib.metadata"])
        ms, proc = c.floor_start(ctx)
        c.end_process(proc)
        return ms
    raise SystemExit("unknown sample %r" % kind)


# --------------------------------------------------------------------------
# A foreign server on the port
# --------------------------------------------------------------------------
def foreign_server_check(samples: int) -> Dict[str, Any]:
    """Another program serves HTTP on the port: what do pytest-flask and pyhost report?"""
    import http.server
    import threading

    from apps.hello import app
    from pytest_flask.live_server import LiveServer

    import pyhost

    class Foreign(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b"foreign server"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    results: Dict[str, Any] = {"pytest_flask": [], "pyhost": []}
    for _ in range(samples):
        foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
        thread = threading.Thread(target=foreign.serve_forever, daemon=True)
        thread.start()
        port = foreign.server_address[1]
        try:
            server = LiveServer(app, "127.0.0.1", port, 5, clean_stop=False)
            started = c.clock()
            with c.quiet_fds():
                server.start()
            ready_ms = (c.clock() - started) * 1000
            _status, body = c.get("http://127.0.0.1:%d/" % port)
            server._process.join(5)
            results["pytest_flask"].append({
                "reported_ready_ms": round(ready_ms, 2),
                "get_answered_by": "the foreign server" if body == b"foreign server" else "the app",
                "app_process_exitcode": server._process.exitcode,
            })
            server.stop()

            host = pyhost.FlaskHost(c.APP, port=port, is_development=False)
            started = c.clock()
            try:
                host.start()
                outcome: Dict[str, Any] = {"raised": None}
            except pyhost.HostError as exc:
                outcome = {"raised": type(exc).__name__, "message": exc.message}
            outcome["ms"] = round((c.clock() - started) * 1000, 2)
            host.stop()
            results["pyhost"].append(outcome)
        finally:
            foreign.shutdown()
            foreign.server_close()
            thread.join(5)
    return results


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        c.reexec_for_measurement("startup")
    parser = c.make_parser(__doc__.split("\n")[0], rounds=30, quick_rounds=3)
    import argparse  # not at the top: spawn children re-import this file

    parser.add_argument("--sample", help=argparse.SUPPRESS)
    parser.add_argument("--only", metavar="WORDS",
                        help="run only variants whose name contains one of these comma-separated "
                        "words (for profiling; the summary then has gaps)")
    args = parser.parse_args(argv)
    import json

    if args.sample:
        print(json.dumps({"ms": _run_sample(args.sample)}))
        return 0
    rounds = c.rounds_from(args)

    import apps.hello  # noqa: F401 - pytest-flask needs the app object in the parent

    import pyhost
    from pyhost.config import default_start_method
    from pyhost.process import get_context

    # The forkserver of this process is pyhost's (Flask, Werkzeug, pyhost
    # preloaded); the warm floor forks from the same server.
    get_context("forkserver")
    default = default_start_method()

    phases: Dict[str, Dict[str, List[float]]] = {}
    variants: List[c.Variant] = []
    for method in METHODS:
        for kind, fn in (("floor", c.floor), ("pyhost", pyhost_start)):
            name = "%s/%s" % (kind, method)
            phases[name] = {}
            variants.append((name, partial(fn, method, phases[name])))
    variants += [
        ("floor/forkserver cold", partial(cold_sample, "floor-cold")),
        ("floor/forkserver cold, preloaded", partial(cold_sample, "floor-cold-preloaded")),
        ("pyhost/forkserver cold", partial(cold_sample, "pyhost-cold")),
        ("pyhost/default", partial(pyhost_start, None)),
        ("pytest-flask LiveServer", pytest_flask_start),
        ("Popen + polling", polling_start),
    ]
    for method in METHODS:
        variants.append(("missing dep/%s" % method, partial(pyhost_failure, method, "missing_dep")))
        variants.append(("port in use/%s" % method, partial(pyhost_failure, method, "port_in_use")))

    info = c.machine_info()
    print("pyhost startup benchmark: %d rounds, %s, %s cores, Python %s, %s"
          % (rounds, info["date"], info["cpus"], info["python"], info["cpu_model"]))
    print("default start method: %s; bytecode cache %s" % (default, info["bytecode_cache"]))
    if args.only:
        variants = [v for v in variants if any(word in v[0] for word in args.only.split(","))]
    results = c.round_robin(variants, rounds)
    foreign = None
    if not args.only or "foreign" in args.only:
        foreign = foreign_server_check(1 if args.quick else 3)

    def med(name: str) -> Optional[float]:
        return results.get(name, {}).get("median")

    rows = []
    checks = []
    for method in METHODS:
        r = c.ratio(med("pyhost/%s" % method), med("floor/%s" % method))
        label = "%s (warm)" % method if method == "forkserver" else method
        rows.append([label, c.fmt_ms(med("floor/%s" % method)), c.fmt_ms(med("pyhost/%s" % method)),
                     c.fmt_ratio(r), "≤ 1.20×"])
        checks.append(("pyhost/%s ≤ 1.2× floor" % label, r is not None and r <= 1.2, r))
    r_cold = c.ratio(med("pyhost/forkserver cold"), med("floor/forkserver cold"))
    r_cold_pre = c.ratio(med("pyhost/forkserver cold"), med("floor/forkserver cold, preloaded"))
    rows.append(["forkserver cold (nothing preloaded)", c.fmt_ms(med("floor/forkserver cold")),
                 c.fmt_ms(med("pyhost/forkserver cold")), c.fmt_ratio(r_cold), "≤ 1.20×"])
    rows.append(["forkserver cold (Flask preloaded)",
                 c.fmt_ms(med("floor/forkserver cold, preloaded")),
                 c.fmt_ms(med("pyhost/forkserver cold")), c.fmt_ratio(r_cold_pre), "-"])
    checks.append(("pyhost/forkserver cold ≤ 1.2× cold floor", r_cold is not None and r_cold <= 1.2,
                   r_cold))
    c.print_table("start() → first GET, median ms (pyhost vs the floor of each start method)",
                  ["start method", "floor", "pyhost", "ratio", "target"], rows)

    d = med("pyhost/default")
    r_pf = c.ratio(d, med("pytest-flask LiveServer"))
    r_poll = c.ratio(med("Popen + polling"), d)
    checks.append(("default ≤ 2× pytest-flask", r_pf is not None and r_pf <= 2.0, r_pf))
    checks.append(("polling ≥ 20× default", r_poll is not None and r_poll >= 20, r_poll))
    c.print_table("the default path (%s, warm) against other ways of hosting, median ms" % default,
                  ["variant", "median", "p10", "p90", "vs pyhost default"],
                  [[name, c.fmt_ms(med(name)), c.fmt_ms(results.get(name, {}).get("p10")),
                    c.fmt_ms(results.get(name, {}).get("p90")), c.fmt_ratio(c.ratio(med(name), d))]
                   for name in ("pyhost/default", "pytest-flask LiveServer", "Popen + polling")])

    rows = []
    for method in METHODS:
        base = med("floor/%s" % method)
        for kind in ("missing dep", "port in use"):
            value = med("%s/%s" % (kind, method))
            r = c.ratio(value, base)
            rows.append(["%s, %s" % (kind, method), c.fmt_ms(value), c.fmt_ms(base),
                         c.fmt_ratio(r), "≤ 2.00×"])
            checks.append(("%s/%s ≤ 2× floor" % (kind, method), r is not None and r <= 2.0, r))
    c.print_table("time until the typed error is raised, median ms (vs the start method's floor)",
                  ["failure", "pyhost", "floor", "ratio", "target"], rows)

    if foreign is not None:
        pf = foreign["pytest_flask"]
        ph = foreign["pyhost"]
        c.print_table("a foreign HTTP server already holds the port",
                      ["", "outcome", "median ms"],
                      [["pytest-flask", "reported ready; GET answered by %s; app exit code %s"
                        % (pf[0]["get_answered_by"], pf[0]["app_process_exitcode"]),
                        c.fmt_ms(c.summarize([s["reported_ready_ms"] for s in pf])["median"])],
                       ["pyhost", "raised %s" % ph[0]["raised"],
                        c.fmt_ms(c.summarize([s["ms"] for s in ph])["median"])]])

    phase_names = ["process started", "loaded + bound", "ready (probe)", "first GET"]
    phase_rows = []
    for name, p in phases.items():
        if p:
            phase_rows.append([name] + [c.fmt_ms(c.summarize(p[k])["median"]) for k in phase_names])
    c.print_table("where the time goes, median ms per phase (the floor has no probe)",
                  ["variant"] + phase_names, phase_rows)

    print()
    for label, ok, value in checks:
        print("  %s %-40s %s" % ("✓" if ok else "✗", label, c.fmt_ratio(value)))
    errors = {name: r["errors"] for name, r in results.items() if r.get("errors")}
    if errors:
        print("\nerrors: %s" % json.dumps(errors, indent=1))
    c.write_json(args.json, {
        "benchmark": "startup", "machine": info, "rounds": rounds, "app": c.APP,
        "default_start_method": default, "results": results, "foreign_server": foreign,
        "phases": {m: {k: c.summarize(v) for k, v in p.items()} for m, p in phases.items()},
        "checks": [{"check": label, "met": ok, "value": value} for label, ok, value in checks],
        "pyhost_version": pyhost.__version__,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
