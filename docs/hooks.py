"""mkdocs hook: reference tables generated from the code, so they cannot drift.

A page asks for a table with a marker on a line of its own:

- ``<!-- pyhost:config-table -->``: every ``HostConfig`` field;
- ``<!-- pyhost:cli-options -->``: the ``pyhost`` command's options and exit codes;
- ``<!-- pyhost:error-table -->``: every ``ErrorType``, its exception class, when
  it is raised and its first troubleshooting steps.

Registered in mkdocs.yml under ``hooks:``.
"""
from __future__ import annotations

import argparse
import dataclasses
import html
import inspect
import re
from typing import Any, Callable, Dict, List

MARKERS: Dict[str, Callable[[], str]] = {}


def marker(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    def register(function: Callable[[], str]) -> Callable[[], str]:
        MARKERS["<!-- pyhost:%s -->" % name] = function
        return function
    return register


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    for text, build in MARKERS.items():
        if text in markdown:
            markdown = markdown.replace(text, build().strip() + "\n")
    return markdown


class Raw(str):
    """A cell that is markdown/HTML already (not escaped)."""


def on_page_content(html_text: str, **kwargs: Any) -> str:
    """Docstrings use Sphinx roles (``:class:`X```): keep the name, drop the role."""
    return re.sub(r":(?:class|func|meth|mod|attr|data|exc):(?=<code>)", "", html_text)


def _cell(text: Any) -> str:
    text = str(text) if isinstance(text, Raw) else _escape(str(text))
    return text.replace("|", "\\|").replace("\n", " ")


def _escape(text: str) -> str:
    """Angle brackets outside `code` would be read as HTML tags."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside backquotes
        parts[i] = (html.escape(parts[i], quote=False)
                    .replace("_", "\\_").replace("*", "\\*"))
    return "`".join(parts)


def _table(header: List[str], rows: List[List[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ config fields
@marker("config-table")
def config_table() -> str:
    try:
        from pyhost.fields import config_reference  # type: ignore[import-not-found]
    except ImportError:
        return _config_table_from_dataclass()
    return config_reference()


def _config_table_from_dataclass() -> str:
    from pyhost.config import HostConfig

    rows = []
    for field in dataclasses.fields(HostConfig):
        if field.default is not dataclasses.MISSING:
            default = "`%r`" % (field.default,)
        elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = "`%r`" % (field.default_factory(),)  # type: ignore[misc]
        else:
            default = ""
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        rows.append(["`%s`" % field.name, "`%s`" % kind, default,
                     "`PYHOST_%s`" % field.name.upper() if field.name != "env" else "(not read)",
                     field.metadata.get("help", "") or "—"])
    return _table(["field", "type", "default", "environment", "meaning"], rows)


# ------------------------------------------------------------------ CLI options
def _cli_from_parser() -> str:
    from pyhost.cli import EXIT_CODES, build_parser

    parser = build_parser()
    parts: List[str] = []
    for action in parser._actions:  # argparse has no public API for its actions
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            rows = []
            for option in sub._actions:
                if isinstance(option, argparse._HelpAction):
                    continue
                flags = ", ".join("`%s`" % flag for flag in option.option_strings) \
                    or "`%s`" % (option.metavar or option.dest)
                takes = "" if option.nargs == 0 else (option.metavar or
                                                      (", ".join(option.choices)
                                                       if option.choices else ""))
                rows.append([flags, "`%s`" % takes if takes else "", option.help or ""])
            parts.append("### `pyhost %s`\n\n%s\n\n%s" % (
                name, sub.description or "", _table(["option", "value", "what"], rows)))
    codes = [[0, "run: stopped on request; check: the app would start"],
             [1, "internal error in pyhost (with a Python traceback)"],
             [2, "bad command line, configuration value or target"]]
    codes += [[code, "`%s`" % name] for name, code in EXIT_CODES.items()]
    codes.append([130, "interrupted: Ctrl+C during check or demo, or a second Ctrl+C"])
    parts.append("### Exit codes\n\n" + _table(["code", "meaning"], codes))
    return "\n\n".join(parts)


@marker("cli-options")
def cli_options() -> str:
    try:
        from pyhost.cli import options_reference  # type: ignore[attr-defined]
    except ImportError:
        return _cli_from_parser()
    return options_reference()


# ------------------------------------------------------------------ errors
#: The example details each type's first steps are shown for (a typical case).
_EXAMPLES: Dict[str, Dict[str, Any]] = {
    "PYTHON_NOT_FOUND": {"details": {"python": "/srv/ml/.venv/bin/python"}},
    "SCRIPT_NOT_FOUND": {"details": {"target": "myapp:app"}},
    "DEPENDENCY_ERROR": {"missing_module": "flask_cors",
                         "details": {"python": ".venv/bin/python"}},
    "PORT_IN_USE": {"port": 5001, "details": {"holder": "pid 4242 (python api_server.py)",
                                              "holder_pid": 4242}},
    "PROCESS_SPAWN_ERROR": {"details": {"reason": "bootstrap"}},
    "PROCESS_CRASH": {"signal": "SIGKILL", "details": {"target": "myapp:app"}},
    "HEALTH_CHECK_TIMEOUT": {"details": {"phase": "health", "last_result": "HTTP 500",
                                         "url": "http://127.0.0.1:5001/"}},
    "NETWORK_ERROR": {"port": 80, "details": {"errno": 13, "host": "127.0.0.1"}},
    "APP_LOAD_ERROR": {"details": {"where": "app.py:12", "module": "app",
                                   "target": "app:create_app()", "python": "python"}},
    "UNKNOWN_ERROR": {},
}


@marker("error-table")
def error_table() -> str:
    from pyhost.errors import DETERMINISTIC, ErrorType, error_class
    from pyhost.troubleshooting import steps_for

    rows = []
    for error_type in ErrorType:
        cls = error_class(error_type)
        bases = [base.__name__ for base in cls.__bases__
                 if base.__module__ == "builtins" and base is not Exception]
        name = "`%s`" % cls.__name__ + (" (also `%s`)" % "`, `".join(bases) if bases else "")
        when = (inspect.getdoc(cls) or "").replace("``", "`")
        example = dict(_EXAMPLES.get(error_type.value, {}))
        steps = steps_for(error_type, message="", **example)[:2]
        if error_type in DETERMINISTIC:
            retried = "never"
        elif error_type is ErrorType.HEALTH_CHECK_TIMEOUT:
            retried = "a hang of a ready app: within the budget; at `start()`: never"
        else:
            retried = "within the budget"
        rows.append(["`%s`" % error_type.value, name, when, retried,
                     Raw("<br>".join("%d. %s" % (i, _escape(step))
                                     for i, step in enumerate(steps, 1)))])
    return _table(["`ErrorType`", "exception", "when", "restarted", "first troubleshooting steps "
                   "(for a typical case)"], rows)


# ------------------------------------------------------------------ state machine
@marker("transitions")
def transitions_table() -> str:
    from pyhost.lifecycle import TRANSITIONS

    rows = [["`%s`" % state.value, ", ".join("`%s`" % to.value for to in
                                             sorted(targets, key=list(TRANSITIONS).index))]
            for state, targets in TRANSITIONS.items()]
    return _table(["from", "may go to"], rows)
