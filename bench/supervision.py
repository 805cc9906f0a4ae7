"""How fast pyhost notices a killed child and serves again, and what idle supervision costs.

Measured in one run:

- **detection**: from ``kill -9`` of the child to the host reporting it
  (the ``crashed`` event, stamped with ``time.monotonic()`` in the
  ``on_event`` callback);
- **ready again**: from ``kill -9`` to the ``ready`` event of the restarted
  child (``restart_delay=0``), against the start method's floor (a bare
  multiprocessing child that imports the app, binds ``make_server`` and
  sends its port — see bench/startup.py), measured round-robin in the same
  run; a GET on the same URL must then answer from a new pid;
- **idle supervisor CPU**: the parent's CPU time (all threads, and the
  pyhost threads alone) over a window while one ready host sits idle with the
  default ``liveness_interval=10``.

Run: ``.venv/bin/python bench/supervision.py [--quick] [--window S] [--json PATH]``.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from functools import partial
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

c.setup_paths()

METHODS = ("forkserver", "fork", "spawn")


class Watched:
    """A running host whose events are stamped as they happen."""

    def __init__(self, method: Optional[str]) -> None:
        from pyhost import FlaskHost

        self.stamps: Dict[str, float] = {}
        self.ready = threading.Event()
        self.crashed = threading.Event()
        fields: Dict[str, Any] = {"port": 0, "is_development": False, "restart_delay": 0.0,
                                  # every sample is one crash: never run out of restarts
                                  "max_restart_attempts": 1000}  # the most HostConfig allows
        if method is not None:
            fields["start_method"] = method
        self.host = FlaskHost(c.APP, on_event=self._on_event, **fields)
        self.host.start()

    def _on_event(self, event: Any) -> None:
        now = c.clock()
        if event.name == "crashed":
            self.stamps["crashed"] = now
            self.crashed.set()
        elif event.name == "ready":
            self.stamps["ready"] = now
            self.ready.set()

    def kill_and_wait(self) -> Dict[str, float]:
        """``kill -9`` the child; ms until reported and until ready again."""
        old_pid = self.host.pid
        assert old_pid is not None, "the host is not running"
        url = self.host.url
        self.stamps.clear()
        self.ready.clear()
        self.crashed.clear()
        killed = c.clock()
        os.kill(old_pid, signal.SIGKILL)
        if not self.ready.wait(60):
            raise RuntimeError("no ready event within 60 s after kill -9 (status %r)"
                               % self.host.status())
        served_by = int(c.get_ok(url + "/pid"))
        if served_by == old_pid or served_by != self.host.pid:
            raise RuntimeError("after the restart %s was served by pid %s (old %s, host.pid %s)"
                               % (url, served_by, old_pid, self.host.pid))
        return {"detected": (self.stamps["crashed"] - killed) * 1000,
                "ready again": (self.stamps["ready"] - killed) * 1000}

    def stop(self) -> None:
        self.host.stop()


# --------------------------------------------------------------------------
# Idle CPU
# --------------------------------------------------------------------------
def _thread_cpu(thread: threading.Thread) -> Optional[float]:
    """CPU seconds of one thread (ns resolution, Linux/BSD)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))  # type: ignore[arg-type]
    except (AttributeError, OSError, TypeError):
        return None


def _child_cpu(pid: Optional[int]) -> Optional[float]:
    """utime + stime of a process from /proc (clock ticks: 10 ms resolution)."""
    if pid is None:
        return None
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(window: float) -> Dict[str, Any]:
    """CPU the parent spends while one default host is ready and idle for ``window`` s."""
    from pyhost import FlaskHost

    host = FlaskHost(c.APP, port=0, is_development=False).start()
    try:
        c.get_ok(host.url + "/")
        config = host.config
        threads = [t for t in threading.enumerate() if t.name.startswith("pyhost-")]
        before_threads = {t.name: _thread_cpu(t) for t in threads}
        before_child = _child_cpu(host.pid)
        probes_before = host.status().health["probes"]
        wall0 = time.monotonic()
        cpu0 = time.process_time()
        time.sleep(window)
        cpu1 = time.process_time()
        wall1 = time.monotonic()
        after_threads = {t.name: _thread_cpu(t) for t in threads}
        after_child = _child_cpu(host.pid)
        status = host.status()
    finally:
        host.stop()
    wall = wall1 - wall0
    per_thread = {}
    for name, start in before_threads.items():
        end = after_threads.get(name)
        if start is not None and end is not None:
            per_thread[name] = round((end - start) * 1000, 3)
    child = None
    if before_child is not None and after_child is not None:
        child = after_child - before_child
    return {
        "window_s": round(wall, 3),
        "liveness_interval": config.liveness_interval,
        "liveness_probes": status.health["probes"] - probes_before,
        "parent_cpu_ms": round((cpu1 - cpu0) * 1000, 3),
        "parent_cpu_percent": round((cpu1 - cpu0) / wall * 100, 4),
        "pyhost_threads_cpu_ms": per_thread,
        "pyhost_threads_cpu_percent": round(sum(per_thread.values()) / 1000 / wall * 100, 4),
        "child_cpu_ms": None if child is None else round(child * 1000, 1),
        "child_cpu_percent": None if child is None else round(child / wall * 100, 3),
    }


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        c.reexec_for_measurement("supervision")
    parser = c.make_parser(__doc__.split("\n")[0], rounds=30, quick_rounds=3)
    parser.add_argument("--window", type=float, default=None,
                        help="seconds of idle CPU measurement (default 30, --quick 5)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="start methods to measure (default %s)" % ",".join(METHODS))
    args = parser.parse_args(argv)
    rounds = c.rounds_from(args)
    window = args.window if args.window is not None else (5.0 if args.quick else 30.0)
    if window <= 0:
        raise SystemExit("--window must be positive (got %s)" % window)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit("--methods: unknown start method(s) %s; choose from %s"
                         % (", ".join(unknown), ", ".join(METHODS)))

    import apps.hello  # noqa: F401 - as in startup.py: fork children find the app imported

    import pyhost
    from pyhost.config import default_start_method
    from pyhost.process import get_context

    get_context("forkserver")  # pyhost's forkserver; the warm floor forks from it too
    default = default_start_method()
    info = c.machine_info()
    print("pyhost supervision benchmark: %d rounds, idle window %.0f s, %s, %s cores, Python %s"
          % (rounds, window, info["date"], info["cpus"], info["python"]))
    print("default start method: %s; bytecode cache %s" % (default, info["bytecode_cache"]))

    hosts: Dict[str, Watched] = {}
    variants: List[c.Variant] = []
    try:
        for method in methods:
            hosts[method] = Watched(method)
            variants.append(("kill -9/%s" % method, hosts[method].kill_and_wait))
            variants.append(("floor/%s" % method, partial(c.floor, method)))
        results = c.round_robin(variants, rounds)
        totals = {m: h.host.status().total_restarts for m, h in hosts.items()}
    finally:
        for watched in hosts.values():
            watched.stop()

    print("  idle window: %.0f s ..." % window, file=sys.stderr, flush=True)
    idle = idle_cpu(window)

    def med(name: str) -> Optional[float]:
        return results.get(name, {}).get("median")

    checks = []
    rows = []
    for method in methods:
        detected = results.get("kill -9/%s detected" % method, {})
        rows.append([method, c.fmt_ms(detected.get("median")), c.fmt_ms(detected.get("p10")),
                     c.fmt_ms(detected.get("p90")), c.fmt_ms(detected.get("max"))])
        if method == default:
            value = detected.get("median")
            checks.append(("detection median < 10 ms (%s)" % method,
                           value is not None and value < 10, c.fmt_ms(value) + " ms"))
    c.print_table("kill -9 → host reports it (crashed event), ms",
                  ["start method", "median", "p10", "p90", "max"], rows)

    rows = []
    for method in methods:
        ready = med("kill -9/%s ready again" % method)
        base = med("floor/%s" % method)
        over = None if ready is None or base is None else ready - base
        rows.append([method, c.fmt_ms(ready), c.fmt_ms(base),
                     "-" if over is None else "%+.1f" % over, c.fmt_ratio(c.ratio(ready, base)),
                     "≤ +20" if method == default else "-"])
        if method == default:
            checks.append(("ready again ≤ floor + 20 ms (%s)" % method,
                           over is not None and over <= 20,
                           "-" if over is None else "%+.1f ms" % over))
    c.print_table("kill -9 → ready again (restart_delay=0) vs the floor, median ms",
                  ["start method", "pyhost", "floor", "over floor", "ratio", "target"], rows)

    c.print_table("idle supervision over %.1f s of a ready host (liveness_interval=%s, %d probes)"
                  % (idle["window_s"], idle["liveness_interval"], idle["liveness_probes"]),
                  ["process", "CPU ms", "% of a core"],
                  [["parent (all threads)", c.fmt_ms(idle["parent_cpu_ms"]),
                    "%.3f" % idle["parent_cpu_percent"]],
                   ["  pyhost threads", c.fmt_ms(sum(idle["pyhost_threads_cpu_ms"].values())),
                    "%.3f" % idle["pyhost_threads_cpu_percent"]],
                   ["child (werkzeug, for reference)", c.fmt_ms(idle["child_cpu_ms"]),
                    "-" if idle["child_cpu_percent"] is None
                    else "%.3f" % idle["child_cpu_percent"]]])
    checks.append(("idle supervisor CPU < 0.5 % of a core", idle["parent_cpu_percent"] < 0.5,
                   "%.3f %%" % idle["parent_cpu_percent"]))

    print()
    for label, ok, value in checks:
        print("  %s %-42s %s" % ("✓" if ok else "✗", label, value))
    errors = {name: r["errors"] for name, r in results.items() if r.get("errors")}
    if errors:
        print("\nerrors: %s" % errors)
    c.write_json(args.json, {
        "benchmark": "supervision", "machine": info, "rounds": rounds, "app": c.APP,
        "default_start_method": default, "results": results, "restarts": totals,
        "idle": idle, "checks": [{"check": label, "met": ok, "value": value}
                                 for label, ok, value in checks],
        "pyhost_version": pyhost.__version__,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
