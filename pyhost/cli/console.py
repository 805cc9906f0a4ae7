"""What the ``pyhost`` command prints: its log handlers and the final error block."""
from __future__ import annotations

import logging
import sys
from typing import Any, Optional, TextIO

from .options import exit_code_for

__all__ = ["say", "print_error", "setup_logging"]


class _DropErrorDumps(logging.Filter):
    """The CLI prints the final error block itself, once, with its exit code;
    the library's multi-line error records would repeat it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and "\n" in record.getMessage())


def setup_logging(*, quiet: bool, verbose: bool, stream: Optional[TextIO] = None) -> None:
    from ..logs import enable_console_logging

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


def say(text: str = "", stream: Optional[TextIO] = None) -> None:
    print(text, file=stream or sys.stderr, flush=True)


def print_error(error: Any, what: str, stream: Optional[TextIO] = None,
                traceback: bool = False, ending: bool = True,
                output_shown: bool = False) -> int:
    """The error block the CLI ends with; returns the exit code it names.

    ``ending=False``: the run goes on (a failed reload), so no exit code is named.
    ``output_shown``: the app's output was already printed live (``pyhost run``
    without ``--quiet``), so its tail is not printed a second time.
    """
    code = exit_code_for(error)
    say("[pyhost] ❌ %s" % what, stream)
    say("Error type: %s%s" % (error.type.value, " (exit code %d)" % code if ending else ""),
        stream)
    say(error.message, stream)
    if error.troubleshooting:
        say("Troubleshooting:", stream)
        for number, step in enumerate(error.troubleshooting, 1):
            say("  %d. %s" % (number, step), stream)
    if traceback and error.remote_traceback:
        say("Traceback in the app process:", stream)
        say(error.remote_traceback.rstrip(), stream)
    elif error.stderr_tail and not output_shown:
        say("Recent output from the app:", stream)
        for line in error.stderr_tail[-10:]:
            say("  " + line, stream)
    return code
