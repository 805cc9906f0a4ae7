"""The child's recent output, as the parent keeps it for ``host.logs()`` and error tails."""
from __future__ import annotations

import collections
import logging
import re
import threading
from typing import Deque, List, Optional

__all__ = ["OutputBuffer"]

child_log = logging.getLogger("pyhost.child")

_MAX_PARTIAL = 64 * 1024
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class OutputBuffer:
    """The child's recent output lines (stdout and stderr merged, as a terminal shows them)."""

    def __init__(self, keep: int, name: str = "app") -> None:
        self._lines: Deque[str] = collections.deque(maxlen=max(keep, 1000))
        self.keep = keep
        self.name = name
        self._lock = threading.Lock()
        self._partial = b""
        self.total_lines = 0

    def feed(self, data: bytes) -> None:
        # A progress bar redraws one line with "\r" and never ends it: treat "\r"
        # as a line end, and cap what is kept of an unfinished line.
        data = (self._partial + data).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > _MAX_PARTIAL:
            lines.append(self._partial)
            self._partial = b""
        for raw in lines:
            self._add(raw)

    def flush(self) -> None:
        if self._partial:
            self._add(self._partial)
            self._partial = b""

    def _add(self, raw: bytes) -> None:
        # Werkzeug colours its request log even into a pipe: keep the text only.
        line = _ANSI_ESCAPE.sub("", raw.decode("utf-8", "replace").rstrip("\r"))
        with self._lock:
            self._lines.append(line)
            self.total_lines += 1
        child_log.debug("[%s] %s", self.name, line)

    def tail(self, n: Optional[int] = None) -> List[str]:
        n = self.keep if n is None else n
        with self._lock:
            if n <= 0:
                return []
            return list(self._lines)[-n:]

    def add_mark(self, text: str) -> None:
        """A line of pyhost's own, e.g. where a restarted child's output begins."""
        self.flush()
        with self._lock:
            self._lines.append(text)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
