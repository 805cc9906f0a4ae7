"""The ``pyhost`` command line: exit codes, the parser, and the config it builds.

The hosting options are generated from the ``HostConfig`` field metadata
(:mod:`pyhost.fields`): the flag, its help, the default shown, the environment
variable, the choices and the kind all come from the field.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Dict, List, Optional

from .. import fields as settings_meta
from .._meta import pip_install

__all__ = ["EXIT_CODES", "exit_code_for", "build_parser", "build_config", "load_dotenv",
           "options_reference"]

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in pyhost: Python prints the traceback
EXIT_USAGE = 2  # bad options, config values or target (argparse's own code)
EXIT_INTERRUPTED = 130  # Ctrl+C, as shells report SIGINT (128 + 2)

#: Exit code per ErrorType (documented in ``pyhost --help`` and the docs).
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

_GENERAL_EXITS = [
    (EXIT_OK, "success (run: stopped on request; check: the app would start)"),
    (EXIT_INTERNAL, "internal error in pyhost (with a Python traceback)"),
    (EXIT_USAGE, "bad command line, configuration value or target"),
]
_INTERRUPTED_TEXT = "interrupted: Ctrl+C during check or demo, or a second Ctrl+C during run"

_EXIT_TABLE = "\n".join(
    ["exit codes:"] + ["  %-3d %s" % row for row in _GENERAL_EXITS]
    + ["  %-3d %s" % (code, name) for name, code in EXIT_CODES.items()]
    + ["  %d %s" % (EXIT_INTERRUPTED, _INTERRUPTED_TEXT)]
)

_EPILOG = """examples:
  pyhost run myapp:app                      serve ./myapp.py's app on 127.0.0.1:5001
  pyhost run 'myapp:create_app(debug=False)' --port 0
  pyhost run myapp:app --reload             restart when a .py file under the app changes
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


# --------------------------------------------------------------------------- generated options
def _converter(field: dataclasses.Field) -> Any:
    def convert(text: str) -> Any:
        try:
            return settings_meta.parse_text(field, text)
        except ValueError as exc:
            message = str(exc).split(": ", 1)[-1]
            raise argparse.ArgumentTypeError(message) from None
    convert.__name__ = field.metadata["kind"].__name__  # argparse names it in "invalid X value"
    return convert


def _env_pair(text: str) -> List[str]:
    if "=" not in text or text.startswith("="):
        raise argparse.ArgumentTypeError("expected KEY=VALUE, got %r" % text)
    return text.split("=", 1)


def _help_for(field: dataclasses.Field) -> str:
    meta = field.metadata
    default = settings_meta.default_of(field)
    text = meta["help"].rstrip(".")
    if meta["kind"] is bool and str(meta["flag"]).startswith("--no-"):
        text = "Turn off: " + text[:1].lower() + text[1:]
    if meta["kind"] is not bool and default not in (None, (), {}):
        text += " (default %s)" % (default,)
    if meta["env"]:
        text += " [env %s]" % meta["env"]
    return text.replace("%", "%%")


def add_config_options(parser: argparse.ArgumentParser, command: str) -> None:
    """One option per ``HostConfig`` field whose metadata offers ``command`` a flag.

    Options not given are absent from the namespace (``argparse.SUPPRESS``), so
    the environment and the defaults stay in charge of them.
    """
    from ..config import HostConfig

    groups: Dict[str, Any] = {}
    for field in settings_meta.settings(HostConfig):
        meta = field.metadata
        if not meta["flag"] or command not in meta["commands"]:
            continue
        group = groups.get(meta["group"])
        if group is None:
            group = groups[meta["group"]] = parser.add_argument_group(meta["group"])
        names = [meta["flag"]] + ([meta["short"]] if meta["short"] else [])
        options: Dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS,
                                   "help": _help_for(field)}
        kind = meta["kind"]
        if kind is bool:
            options["action"] = "store_false" if meta["flag"].startswith("--no-") \
                else "store_true"
        elif kind is dict:
            options.update(type=_env_pair, action="append", metavar=meta["metavar"])
        elif kind is tuple:
            options.update(action="append", metavar=meta["metavar"])
        else:
            options.update(type=_converter(field), metavar=meta["metavar"] or meta["kind"]
                           .__name__.upper())
            if meta["choices"]:
                options["choices"] = meta["choices"]
                options["metavar"] = "{%s}" % ",".join(meta["choices"])
        group.add_argument(*names, **options)


def config_fields(args: argparse.Namespace) -> Dict[str, Any]:
    """The ``HostConfig`` fields given on the command line."""
    from ..config import HostConfig

    given: Dict[str, Any] = {}
    for field in settings_meta.settings(HostConfig):
        if field.name not in vars(args):
            continue
        value = getattr(args, field.name)
        if field.metadata["kind"] is tuple:
            value = tuple(name.strip() for item in value for name in item.split(",")
                          if name.strip())
        elif field.metadata["kind"] is dict:
            value = dict(value)
        given[field.name] = value
    return given


def build_config(args: argparse.Namespace, **forced: Any) -> Any:
    """``HostConfig`` from defaults, ``PYHOST_*`` and the options that were given."""
    from ..config import HostConfig

    given = config_fields(args)
    given.update(forced)
    return HostConfig.from_env(**given)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

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
        "run", formatter_class=formatter, epilog=_EPILOG, usage="pyhost run [OPTIONS] TARGET",
        help="serve an app in the foreground, restarting it per policy; Ctrl+C stops it",
        description="Serve TARGET in a supervised child process until Ctrl+C or SIGTERM "
                    "(a second Ctrl+C kills it at once). The app's output and pyhost's "
                    "✓/❌/⚠/↻ lines go to stderr.")
    _add_target(run)
    add_config_options(run, "run")
    group = run.add_argument_group("development")
    group.add_argument("--reload", action="store_true",
                       help="watch the app's .py files and restart the app when one changes; "
                            "a change that does not import keeps the running app (needs "
                            "%s)" % pip_install("reload"))
    group.add_argument("--reload-dir", metavar="DIR", action="append",
                       help="directory to watch instead of the app's own (repeatable)")
    _add_output_options(run)

    check = commands.add_parser(
        "check", formatter_class=formatter, epilog=_EPILOG,
        usage="pyhost check [OPTIONS] TARGET",
        help="pre-flight: interpreter, modules, app import, port, HTTP; exit 0 if it would start",
        description="Check, one line each, what starting TARGET needs: the interpreter, the "
                    "--requires modules, importing the app in a child process, binding the "
                    "port and answering HTTP. Exit 0 only when the app would start.")
    _add_target(check)
    add_config_options(check, "check")
    check.add_argument("--json", action="store_true", help="print the results as JSON")

    demo = commands.add_parser(
        "demo", formatter_class=formatter,
        help="host the example app, kill it and watch the restart, show a typed error",
        description="The demo: readiness time and status, an automatic restart "
                    "after SIGKILL, a typed DependencyError for a broken app.")
    from ..config import START_METHODS

    demo.add_argument("--start-method", choices=START_METHODS,
                      help="multiprocessing start method for the demo's hosts")
    demo.add_argument("--examples", metavar="DIR",
                      help="directory with hello_app.py and broken_app.py (default: the "
                           "project's examples/)")
    return parser


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET",
                        help="the app: 'module:app', 'path/to/app.py:app', "
                             "'module:create_app()' or 'module'")
    parser.add_argument("--env-file", metavar="PATH",
                        help="load this dotenv file (needs python-dotenv)")


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("console")
    group.add_argument("--quiet", "-q", action="store_true",
                       help="do not show the app's own output lines")
    group.add_argument("--verbose", "-v", action="store_true",
                       help="also show pyhost's debug messages")


# --------------------------------------------------------------------------- dotenv
def load_dotenv(path: Optional[str] = None) -> Optional[str]:
    """Load ``path`` or the nearest ``.env`` without overriding set variables."""
    if path is None and os.environ.get("PYHOST_SKIP_DOTENV", "").lower() in ("1", "true", "yes"):
        return None
    try:
        import dotenv
    except ImportError:
        if path is not None:
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


# --------------------------------------------------------------------------- docs
def options_reference() -> str:
    """Markdown: every ``pyhost`` command with its options, from the parser itself."""
    parser = build_parser()
    lines = ["Settings not given as options come from `PYHOST_<FIELD>` environment variables, "
             "then the `HostConfig` defaults.", ""]
    subparsers = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        summary = helps.get(name) or ""
        lines += ["### `pyhost %s`" % name, "", summary[:1].upper() + summary[1:] + ".", "",
                  "| Option | Value | Description |", "|---|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.option_strings:
                option = ", ".join("`%s`" % text for text in action.option_strings)
            else:
                option = "`%s`" % action.metavar
            takes_value = action.nargs != 0
            value = ""
            if takes_value and action.option_strings:
                value = "`%s`" % (action.metavar or action.dest.upper())
            description = (action.help or "").replace("%%", "%").replace("|", "\\|")
            lines.append("| %s | %s | %s |" % (option, value, description))
        lines.append("")
    lines += ["### Exit codes", "", "| Code | Meaning |", "|---|---|"]
    lines += ["| %d | %s |" % row for row in _GENERAL_EXITS]
    lines += ["| %d | `%s` |" % (code, name) for name, code in EXIT_CODES.items()]
    lines += ["| %d | %s |" % (EXIT_INTERRUPTED, _INTERRUPTED_TEXT), ""]
    return "\n".join(lines)
