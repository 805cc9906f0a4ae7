"""The ``pyhost`` command (also ``python -m pyhost``): run, check, demo.

Only this layer prints and picks exit codes; the library raises typed errors.
Settings come from, in order: ``HostConfig`` defaults, ``PYHOST_*`` environment
variables (a ``.env`` file is read first when python-dotenv is installed, as
Flask's CLI does), then command-line options.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, TextIO

from .config import START_METHODS

__all__ = ["main", "EXIT_CODES", "exit_code_for"]

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in pyhost: Python prints the traceback
EXIT_USAGE = 2  # bad options, config values or target (argparse's own code)
EXIT_INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT (128 + 2)

#: Exit code per ErrorType (documented in ``pyhost --help`` and the README).
EXIT_CODES: Dict[str, int] = {
    "PYTHON_NOT_FOUND": 3,
    "SCRIPT_NOT_FOUND": 4,
    "DEPENDENCY_ERROR": 5,
    "PORT_IN_USE": 6,
    "PROCESS_SPAWN_ERROR": 7,
    "PROCESS_CRASH": 8,
    "HEALTH_CHECK_TIMEOUT": 9,
    "NETWORK_ERROR": 10,
    "APP_LOAD_ERROR": 11,
    "UNKNOWN_ERROR": 12,
}

_EXIT_TABLE = "\n".join(
    ["exit codes:", "  0   success (run: stopped on request; check: the app would start)",
     "  1   internal error in pyhost (with a Python traceback)",
     "  2   bad command line, configuration value or target"]
    + ["  %-3d %s" % (code, name) for name, code in EXIT_CODES.items()]
    + ["  %d interrupted: Ctrl+C during check or demo, or a second Ctrl+C" % EXIT_INTERRUPTED]
)

_EPILOG = """examples:
  pyhost run myapp:app                      serve ./myapp.py's app on 127.0.0.1:5001
  pyhost run 'myapp:create_app(debug=False)' --port 0
  pyhost run examples/hello_app.py:app --no-restart --health-path /health
  pyhost check myapp:app --requires flask,flask_cors
  pyhost check myapp:app --json
  pyhost demo

Every option also reads PYHOST_<FIELD> (PYHOST_PORT=0, PYHOST_AUTO_RESTART=false,
PYHOST_REQUIRES=flask,flask_cors); a .env file in or above the current directory
is loaded first when python-dotenv is installed (PYHOST_SKIP_DOTENV=1 skips it).

""" + _EXIT_TABLE


def exit_code_for(error: Any) -> int:
    """The documented exit code for a ``HostError`` (or its ``ErrorType``)."""
    kind = getattr(error, "type", error)
    return EXIT_CODES.get(getattr(kind, "value", str(kind)), EXIT_CODES["UNKNOWN_ERROR"])


# --------------------------------------------------------------------------- parser
def _float_or_none(text: str) -> Optional[float]:
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected seconds or 'none', got %r" % text) from None


def _env_pair(text: str) -> List[str]:
    if "=" not in text or text.startswith("="):
        raise argparse.ArgumentTypeError("expected KEY=VALUE, got %r" % text)
    return text.split("=", 1)


def _add_host_options(parser: argparse.ArgumentParser, *, serving: bool) -> None:
    parser.add_argument("target", metavar="TARGET",
                        help="the app: 'module:app', 'path/to/app.py:app', "
                             "'module:create_app()' or 'module'")
    group = parser.add_argument_group("hosting")
    group.add_argument("--port", "-p", type=int, help="port (0 picks a free one; default 5001)")
    group.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    group.add_argument("--health-path", metavar="PATH",
                       help="path that must answer 2xx (default: any answer below 500 on /)")
    group.add_argument("--start-method", choices=START_METHODS,
                       help="multiprocessing start method (default: forkserver where available)")
    group.add_argument("--python", metavar="PATH",
                       help="interpreter for the app process, e.g. a venv's bin/python")
    group.add_argument("--requires", metavar="MODULES", action="append",
                       help="modules to import in a pre-flight check, comma-separated "
                            "(repeatable), e.g. flask,flask_cors")
    group.add_argument("--startup-timeout", type=float, metavar="SECONDS",
                       help="budget to import the app and bind (default 60)")
    group.add_argument("--health-check-timeout", type=float, metavar="SECONDS",
                       help="budget for health probes after binding (default 10)")
    group.add_argument("--env", "-e", type=_env_pair, action="append", metavar="KEY=VALUE",
                       help="extra environment variable for the app process (repeatable)")
    group.add_argument("--env-file", metavar="PATH",
                       help="load this dotenv file (needs python-dotenv)")
    if not serving:
        return
    group.add_argument("--workers", "-w", type=int,
                       help="processes sharing the listening socket (default 1)")
    group.add_argument("--debug", action="store_true", default=None,
                       help="Flask debug mode / Werkzeug debugger (loopback only)")
    group.add_argument("--shutdown-timeout", type=float, metavar="SECONDS",
                       help="graceful stop budget before SIGTERM/SIGKILL (default 5)")
    group = parser.add_argument_group("supervision")
    group.add_argument("--no-restart", dest="auto_restart", action="store_false", default=None,
                       help="do not restart the app after a crash or a hang")
    group.add_argument("--max-restarts", type=int, metavar="N",
                       help="restarts allowed within the restart window (default 3)")
    group.add_argument("--restart-delay", type=float, metavar="SECONDS",
                       help="base restart delay, doubled per attempt (default 2)")
    group.add_argument("--liveness-interval", type=_float_or_none, metavar="SECONDS",
                       default=argparse.SUPPRESS,
                       help="seconds between liveness probes once ready; 'none' turns hang "
                            "detection off (default 10)")
    group = parser.add_argument_group("output")
    group.add_argument("--quiet", "-q", action="store_true",
                       help="do not show the app's own output lines")
    group.add_argument("--verbose", "-v", action="store_true",
                       help="also show pyhost's debug messages")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="pyhost", formatter_class=formatter, epilog=_EPILOG,
        description="Host a Flask (or any WSGI) app in a supervised child process: typed "
                    "startup errors, pushed readiness, restarts with backoff.")
    parser.add_argument("--version", action="version",
                        version="pyhost %s (Python %s)" % (__version__, sys.version.split()[0]))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run", formatter_class=formatter, epilog=_EPILOG,
        help="serve an app in the foreground, restarting it per policy; Ctrl+C stops it",
        description="Serve TARGET in a supervised child process until Ctrl+C or SIGTERM. "
                    "The app's output and pyhost's ✓/❌/⚠/↻ lines go to stderr.")
    _add_host_options(run, serving=True)

    check = commands.add_parser(
        "check", formatter_class=formatter, epilog=_EPILOG,
        help="pre-flight: interpreter, modules, app import, port, HTTP; exit 0 if it would start",
        description="Check, one line each, what starting TARGET needs: the interpreter, the "
                    "--requires modules, importing the app in a child process, binding the "
                    "port and answering HTTP. Exit 0 only when the app would start.")
    _add_host_options(check, serving=False)
    check.add_argument("--json", action="store_true", help="print the results as JSON")

    demo = commands.add_parser(
        "demo", formatter_class=formatter,
        help="host the example app, kill it and watch the restart, show a typed error",
        description="The README's demo: readiness time and status, an automatic restart "
                    "after SIGKILL, a typed DependencyError for a broken app.")
    demo.add_argument("--start-method", choices=START_METHODS)
    demo.add_argument("--examples", metavar="DIR",
                      help="directory with hello_app.py and broken_app.py (default: the "
                           "project's examples/)")
    return parser


# --------------------------------------------------------------------------- setup
def load_dotenv(path: Optional[str] = None) -> Optional[str]:
    """Load ``path`` or the nearest ``.env`` without overriding set variables."""
    if path is None and os.environ.get("PYHOST_SKIP_DOTENV", "").lower() in ("1", "true", "yes"):
        return None
    try:
        import dotenv
    except ImportError:
        if path is not None:
            from ._meta import pip_install

            raise ValueError("--env-file needs python-dotenv: %s" % pip_install("dotenv")) \
                from None
        return None
    if path is None:
        path = dotenv.find_dotenv(".env", usecwd=True) or None
        if path is None:
            return None
    elif not os.path.isfile(path):
        raise ValueError("--env-file: no such file %s" % path)
    dotenv.load_dotenv(path, override=False, encoding="utf-8")
    return path


_OPTION_FIELDS = {
    "port": "port", "host": "host", "health_path": "health_path",
    "start_method": "start_method", "python": "python", "startup_timeout": "startup_timeout",
    "health_check_timeout": "health_check_timeout", "workers": "workers", "debug": "debug",
    "shutdown_timeout": "shutdown_timeout", "auto_restart": "auto_restart",
    "max_restarts": "max_restart_attempts", "restart_delay": "restart_delay",
    "liveness_interval": "liveness_interval",
}


def build_config(args: argparse.Namespace, **forced: Any) -> Any:
    """``HostConfig`` from defaults, ``PYHOST_*`` and the options that were given."""
    from .config import HostConfig

    fields: Dict[str, Any] = {}
    for option, field in _OPTION_FIELDS.items():
        if hasattr(args, option) and getattr(args, option) is not None:
            fields[field] = getattr(args, option)
    if "liveness_interval" in vars(args):
        fields["liveness_interval"] = args.liveness_interval  # None is meaningful here
    if args.requires:
        fields["requires"] = tuple(
            name.strip() for item in args.requires for name in item.split(",") if name.strip())
    if args.env:
        fields["env"] = dict(args.env)
    fields.update(forced)
    return HostConfig.from_env(**fields)


def _add_cwd_to_path() -> None:
    # As `flask --app` does: `pyhost run myapp:app` finds ./myapp.py even when
    # the console script's sys.path[0] is its bin/ directory.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


class _DropErrorDumps(logging.Filter):
    """The CLI prints the final error block itself, once, with its exit code;
    the library's multi-line error records would repeat it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and "\n" in record.getMessage())


def _setup_logging(*, quiet: bool, verbose: bool, stream: Optional[TextIO] = None) -> None:
    from .logs import enable_console_logging

    handler = enable_console_logging(logging.DEBUG if verbose else logging.INFO, stream=stream)
    if handler is not None:
        handler.addFilter(_DropErrorDumps())
    child = logging.getLogger("pyhost.child")
    if quiet:
        child.setLevel(logging.WARNING)
        return
    # The app's own lines, as "[target] line", not dressed as pyhost messages.
    shown = logging.StreamHandler(stream or sys.stderr)
    shown.setFormatter(logging.Formatter("%(message)s"))
    child.addHandler(shown)
    child.setLevel(logging.DEBUG)
    child.propagate = False


def _say(text: str = "", stream: Optional[TextIO] = None) -> None:
    print(text, file=stream or sys.stderr, flush=True)


def print_error(error: Any, what: str, stream: Optional[TextIO] = None,
                traceback: bool = False) -> int:
    """The error block the CLI ends with; returns the exit code it names."""
    code = exit_code_for(error)
    _say("[pyhost] ❌ %s" % what, stream)
    _say("Error type: %s (exit code %d)" % (error.type.value, code), stream)
    _say(error.message, stream)
    if error.troubleshooting:
        _say("Troubleshooting:", stream)
        for number, step in enumerate(error.troubleshooting, 1):
            _say("  %d. %s" % (number, step), stream)
    if traceback and error.remote_traceback:
        _say("Traceback in the app process:", stream)
        _say(error.remote_traceback.rstrip(), stream)
    elif error.stderr_tail:
        _say("Recent output from the app:", stream)
        for line in error.stderr_tail[-10:]:
            _say("  " + line, stream)
    return code


# --------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from . import FlaskHost, HostError, HostState

    config = build_config(args)
    wake = threading.Event()  # something for the main thread to look at
    stop_requested = threading.Event()
    host = FlaskHost(args.target, config=config,
                     on_event=lambda event: wake.set()
                     if event.name in ("crashed", "gave_up", "ready", "restarted") else None)
    _setup_logging(quiet=args.quiet, verbose=args.verbose)

    def request_stop(signum: int, frame: Any) -> None:
        # Only set events here; the main thread does the stopping. A second
        # Ctrl+C falls through to Python's default (KeyboardInterrupt).
        stop_requested.set()
        wake.set()
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                      else signal.SIG_DFL)

    previous = {}
    for signum in _stop_signals():
        previous[signum] = signal.signal(signum, request_stop)

    outcome: Dict[str, Any] = {}

    def start() -> None:
        try:
            host.start()
        except HostError as exc:
            outcome["error"] = exc
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            outcome["crash"] = exc
        finally:
            outcome["done"] = True
            wake.set()

    # Start in a thread so Ctrl+C during a slow import stops at once.
    starter = threading.Thread(target=start, name="pyhost-cli-start", daemon=True)
    starter.start()
    announced = False
    try:
        while True:
            # Events wake this loop; the timeout only re-reads the state, for a
            # crash without auto_restart (FAILED is set after the "crashed" event).
            wake.wait(1.0)
            wake.clear()
            if stop_requested.is_set():
                break
            if "crash" in outcome:
                raise outcome["crash"]
            if "error" in outcome:
                return print_error(outcome["error"], "Could not start %s" % host.name,
                                   traceback=args.verbose)
            if outcome.get("done") and not announced:
                announced = True
                _say("[pyhost] Serving %s at %s (pid %s); press Ctrl+C to stop"
                     % (host.name, host.url, host.pid))
            error = host.last_error
            if host.state is HostState.FAILED and error is not None:
                host.stop()  # a deliberate stop: the error becomes history
                return print_error(error, "%s is down" % host.name,
                                   traceback=args.verbose)
    finally:
        if stop_requested.is_set():
            _say("[pyhost] Stopping %s..." % host.name)
        host.stop()
        starter.join(config.shutdown_timeout + 5)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_OK


def _stop_signals() -> List[int]:
    names = ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


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
    from .errors import HostError
    from .preflight import check_environment, child_environment, dependency_error, resolve_python

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
    from . import FlaskHost, HostError

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
        _say("%s %-10s %s" % (marks[check.ok], labels[check.name], check.detail), out)
        if check.ok is False and check.error is not None:
            for number, step in enumerate(check.error.troubleshooting, 1):
                _say("      %d. %s" % (number, step), out)
            for line in check.error.stderr_tail[-5:]:
                _say("      | %s" % line, out)
    if interrupted:
        _say("– Interrupted (Ctrl+C): the checks above finished, the rest did not run", out)
    elif failed:
        _say("❌ %s would not start: %s (exit code %d)"
             % (args.target, failed[0].error.type.value, code), out)
    else:
        _say("✓ %s would start." % args.target, out)
    return code


# --------------------------------------------------------------------------- main
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(sys.stdout, examples_dir=args.examples, start_method=args.start_method)


_COMMANDS = {"run": cmd_run, "check": cmd_check, "demo": cmd_demo}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pyhost`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        load_dotenv(getattr(args, "env_file", None))
        _add_cwd_to_path()
        return _COMMANDS[args.command](args)
    except ValueError as exc:
        # Config and target validation: the message names the field.
        parser.exit(EXIT_USAGE, "pyhost %s: error: %s\n" % (args.command, exc))
    except KeyboardInterrupt:
        _say("[pyhost] Interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `pyhost check --json | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return EXIT_INTERNAL  # pragma: no cover - parser.exit raised


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
