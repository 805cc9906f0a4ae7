"""``pyhost check``: what starting a target needs, one line each, with an exit code."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from typing import Any, Dict, List, Optional

from .console import say
from .options import EXIT_INTERRUPTED, EXIT_OK, build_config, exit_code_for

__all__ = ["Check", "run_checks", "cmd_check"]


# --------------------------------------------------------------------------- check
class Check:
    """One line of ``pyhost check``: ok True/False, or None when not checked."""

    def __init__(self, name: str, ok: Optional[bool], detail: str, error: Any = None) -> None:
        self.name, self.ok, self.detail, self.error = name, ok, detail, error

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "error": self.error.to_dict() if self.error is not None else None}


_BIND_ERRORS = ("PORT_IN_USE", "NETWORK_ERROR")


def run_checks(target: str, config: Any, checks: Optional[List[Check]] = None) -> List[Check]:
    """Interpreter, modules, app import, port and HTTP, as ``Check`` items.

    Each result is appended to ``checks`` as it is known, so a caller
    interrupted by Ctrl+C still has the ones that finished.
    """
    from ..errors import HostError
    from ..preflight import check_environment, child_environment, dependency_error, resolve_python

    checks = [] if checks is None else checks
    try:
        # The same probe as the host's pre-flight, with the app process's environment.
        report = check_environment(config.python, config.requires,
                                   timeout=config.startup_timeout, env=child_environment(config))
    except HostError as exc:
        if exc.type.value != "PYTHON_NOT_FOUND":  # it ran, but an import hung or crashed it
            checks.append(Check("python", True, resolve_python(config.python)))
            checks.append(Check("module", False, exc.message, exc))
        else:
            checks.append(Check("python", False, exc.message, exc))
        checks.extend(Check(name, None, "not checked: the interpreter check failed")
                      for name in ("import", "port", "http"))
        return checks
    checks.append(Check("python", True, "%s (Python %s)" % (
        report["executable"], ".".join(map(str, report["version"])))))
    missing = {item["module"]: item for item in report["missing"]}
    for module in report["checked"]:
        item = missing.get(module)
        if item is None:
            checks.append(Check("module", True, module))
            continue
        error = dependency_error(report["executable"], [item], [module])
        checks.append(Check("module", False, "%s: %s" % (module, item["error"]), error))

    # The pre-flight was just checked above; the host checks the rest for real.
    config = config.replace(requires=(), auto_restart=False, liveness_interval=None)
    first = _try_start(target, config)
    if first["error"] is not None and first["error"].type.value in _BIND_ERRORS:
        error = first["error"]
        checks.append(Check("port", False, error.message, error))
        # The port is taken, but does the app itself load? Try once more on a free port.
        second = _try_start(target, config.replace(port=0))
        again = second["error"]
        if again is not None and again.type.value in _BIND_ERRORS:
            # The app process binds before it imports the app, so this attempt
            # never got to the import: an unusable address fails on any port.
            checks.extend([Check("import", None, "not checked: no port could be bound either "
                                 "(%s)" % again.message),
                           Check("http", None, "not checked: the app process could not bind")])
        else:
            checks.extend(_import_and_http(second, config))
        return _ordered(checks)
    checks.extend(_import_and_http(first, config))
    error = first["error"]
    address = "%s:%s" % (config.host, config.port)
    if error is None:
        detail = "%s bound" % address if config.port else "%s:0 bound (picked %s)" % (
            config.host, first["port"])
        checks.append(Check("port", True, detail))
    elif first["started"] and first["port"] is None and error.type.value != "PROCESS_CRASH":
        # The app process binds before it imports the app: it got this far.
        checks.append(Check("port", True, "%s bound (before the app failed to load)" % address))
    elif first["port"] is not None:
        checks.append(Check("port", True, "%s bound" % address))
    else:
        checks.append(Check("port", None, "not checked: the app process did not get that far"))
    return _ordered(checks)


def _ordered(checks: List[Check]) -> List[Check]:
    rank = {"python": 0, "module": 1, "import": 2, "port": 3, "http": 4}
    return sorted(checks, key=lambda check: rank[check.name])


def _try_start(target: str, config: Any) -> Dict[str, Any]:
    from .. import FlaskHost, HostError

    started = threading.Event()
    host = FlaskHost(target, config=config,
                     on_event=lambda event: started.set() if event.name == "started" else None)
    result: Dict[str, Any] = {"error": None, "port": None, "pid": None, "health": None}
    try:
        host.start()
        status = host.status()
        result.update(port=host.port, pid=status.pid, health=status.health)
    except HostError as exc:
        result["error"] = exc
        result["port"] = host.port
    finally:
        host.stop()
    result["started"] = started.is_set()
    return result


def _import_and_http(result: Dict[str, Any], config: Any) -> List[Check]:
    error = result["error"]
    probe = config.health_path or "/"
    if error is None:
        health = result["health"] or {}
        return [Check("import", True, "loaded in a child process (pid %s)" % result["pid"]),
                Check("http", True, "GET %s answered %s in %.1f ms" % (
                    probe, health.get("last_result", "?"), health.get("last_latency_ms") or 0))]
    if result["port"] is not None:  # bound (so loaded); the probes or the process failed
        return [Check("import", True, "loaded in a child process"),
                Check("http", False, error.message, error)]
    if error.details.get("phase") == "preflight":  # already reported on a Module line
        return [Check("import", None, "not checked: a module above is missing"),
                Check("http", None, "not checked: the app did not load")]
    return [Check("import", False, error.message, error),
            Check("http", None, "not checked: the app did not load")]


def cmd_check(args: argparse.Namespace) -> int:
    config = build_config(args)
    # The check reports every outcome itself; keep the library's log records
    # (and Python's last-resort handler) off the terminal.
    logging.getLogger("pyhost").addHandler(logging.NullHandler())
    logging.getLogger("pyhost").propagate = False
    checks: List[Check] = []
    interrupted = False
    try:
        checks = run_checks(args.target, config, checks)
    except KeyboardInterrupt:  # show what finished before Ctrl+C
        interrupted, checks = True, _ordered(checks)
    failed = [check for check in checks if check.ok is False]
    code = exit_code_for(failed[0].error) if failed else EXIT_OK
    if interrupted:
        code = EXIT_INTERRUPTED
    if args.json:
        print(json.dumps({"target": args.target, "ok": not failed and not interrupted,
                          "exit_code": code, "interrupted": interrupted,
                          "checks": [check.to_dict() for check in checks]}, indent=2))
        return code
    labels = {"python": "Python", "module": "Module", "import": "App import",
              "port": "Port", "http": "HTTP"}
    marks = {True: "✓", False: "❌", None: "–"}
    out = sys.stdout
    for check in checks:
        say("%s %-10s %s" % (marks[check.ok], labels[check.name], check.detail), out)
        if check.ok is False and check.error is not None:
            for number, step in enumerate(check.error.troubleshooting, 1):
                say("      %d. %s" % (number, step), out)
            for line in check.error.stderr_tail[-5:]:
                say("      | %s" % line, out)
    if interrupted:
        say("– Interrupted (Ctrl+C): the checks above finished, the rest did not run", out)
    elif failed:
        say("❌ %s would not start: %s (exit code %d)"
             % (args.target, failed[0].error.type.value, code), out)
    else:
        say("✓ %s would start." % args.target, out)
    return code
