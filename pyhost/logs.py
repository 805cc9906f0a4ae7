"""Logging under the ``pyhost`` logger; the CLI and development mode add a handler.

In development mode the app's own output lines are logged at INFO on
``pyhost.child`` as ``[app] line`` (see :mod:`pyhost.output`), so the same
handler shows them live; otherwise they are DEBUG records nobody sees.

Messages carry their own mark (``✓``, ``❌``, ``⚠``, ``↻``) so they read the same
in any handler. A library never configures the root logger: only the
``pyhost`` logger gets a handler, and only when asked (development mode, CLI).
"""
from __future__ import annotations

import logging
import sys
from typing import Optional

__all__ = ["log", "enable_console_logging", "enable_development_logging", "ConsoleHandler"]

log = logging.getLogger("pyhost")


class _Formatter(logging.Formatter):
    """``[pyhost] message``; the app's own lines (``pyhost.child``) as they are, ``[app] line``."""

    def __init__(self) -> None:
        super().__init__("[pyhost] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "pyhost.child":
            return record.getMessage()
        return super().format(record)


class ConsoleHandler(logging.StreamHandler):
    """Writes ``[pyhost] ...`` lines to the *current* ``sys.stderr``.

    Looking the stream up at emit time matters in notebooks, where each cell
    gets its own ``sys.stderr``.
    """

    def __init__(self, stream=None) -> None:
        super().__init__(stream)
        self._fixed = stream
        self.setFormatter(_Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed if self._fixed is not None else sys.stderr
        super().emit(record)


def enable_console_logging(level: int = logging.INFO, stream=None) -> Optional[ConsoleHandler]:
    """Attach one ``ConsoleHandler`` to the ``pyhost`` logger (idempotent)."""
    for handler in log.handlers:
        if isinstance(handler, ConsoleHandler):
            if level < (log.level or logging.WARNING):
                log.setLevel(level)
            return handler
    handler = ConsoleHandler(stream)
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > level:
        log.setLevel(level)
    return handler


def enable_development_logging() -> None:
    """Development mode: show pyhost's INFO lines on the console exactly once.

    When the program already logs to the console through the root logger
    (``logging.basicConfig()``), or runs under pytest, which captures records,
    pyhost's records reach it by propagation; a second handler here would
    show every line twice.
    """
    import sys

    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    for handler in logging.getLogger().handlers:
        # pytest captures records itself and shows them with a failed test (and
        # live with --log-cli-level): a console handler too would show each twice.
        if (isinstance(handler, logging.StreamHandler) and
                getattr(handler, "stream", None) in consoles) or \
                type(handler).__module__ == "_pytest.logging":
            if log.level == logging.NOTSET or log.level > logging.INFO:
                log.setLevel(logging.INFO)
            return
    enable_console_logging()
