"""The child's recent output, as the parent keeps it for ``host.logs()`` and error tails.

Memory is bounded in bytes, whatever the app writes: a line keeps at most
``LINE_CAP`` bytes (the rest is counted, not stored, and the line says how
much was cut), and the buffer keeps at most ``TOTAL_CAP`` bytes of lines,
dropping the oldest. An app that writes 200 MB without a newline costs the
parent one ``LINE_CAP``-sized line, never the 200 MB.

Each line is also logged to the ``pyhost.child`` logger as ``[name] line``: at
DEBUG normally, at INFO when the buffer is ``live`` (development mode), where
pyhost's console handler shows it as it happens.
"""
from __future__ import annotations

import collections
import logging
import re
import threading
from typing import Deque, List, Optional

__all__ = ["OutputBuffer", "LINE_CAP", "TOTAL_CAP", "TAIL_LINE_CAP", "TAIL_TOTAL_CAP"]

child_log = logging.getLogger("pyhost.child")

#: Bytes kept of one line; the rest is dropped and counted.
LINE_CAP = 8 * 1024
#: Bytes kept of all lines together (the oldest lines go first).
TOTAL_CAP = 1024 * 1024
#: An error's ``stderr_tail`` is for reading in a message: its lines are
#: clipped to this many characters, and it holds at most ``TAIL_TOTAL_CAP``.
TAIL_LINE_CAP = 500
TAIL_TOTAL_CAP = 8 * 1024
#: Frames kept per thread of a faulthandler dump in an error tail (innermost first).
TAIL_FRAMES = 6
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$")
_FRAME = re.compile(r'^  File "[^"]*", line \d+ in ')


def _cut_note(count: int, unit: str = "bytes") -> str:
    return " … [cut %d %s]" % (count, unit)


def _brief_stacks(lines: List[str]) -> List[str]:
    """``lines`` with each thread of a faulthandler dump cut to its innermost frames."""
    brief: List[str] = []
    frames = skipped = 0
    in_dump = False
    for line in lines:
        if _THREAD.match(line):
            in_dump, frames = True, 0
        elif in_dump and _FRAME.match(line):
            frames += 1
            if frames > TAIL_FRAMES:
                skipped += 1
                continue
        else:
            in_dump = False
        if skipped:
            brief.append("  ... (%d outer frames left out; host.logs() has them)" % skipped)
            skipped = 0
        brief.append(line)
    if skipped:
        brief.append("  ... (%d outer frames left out; host.logs() has them)" % skipped)
    return brief


class OutputBuffer:
    """The child's recent output lines (stdout and stderr merged, as a terminal shows them)."""

    def __init__(self, keep: int, name: str = "app", *, live: bool = False,
                 line_cap: int = LINE_CAP, total_cap: int = TOTAL_CAP) -> None:
        self._max_lines = max(keep, 1000)
        self._lines: Deque[str] = collections.deque(maxlen=self._max_lines)
        self.keep = keep
        self.name = name
        #: development mode: each line is logged at INFO (shown live), not DEBUG.
        self.live = live
        self.line_cap = line_cap
        self.total_cap = total_cap
        self._lock = threading.Lock()
        # The unfinished line: at most line_cap bytes kept, the rest only counted.
        self._partial = bytearray()
        self._partial_cut = 0
        self._after_cr = False
        self._size = 0
        self.total_lines = 0
        #: bytes read from the child in all (kept or not).
        self.total_bytes = 0
        #: bytes dropped because a line was longer than ``line_cap``.
        self.cut_bytes = 0

    def feed(self, data: bytes) -> None:
        # A progress bar redraws one line with "\r" and never ends it: treat "\r"
        # as a line end; a "\r\n" split across two reads is still one line end.
        self.total_bytes += len(data)
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = data.endswith(b"\r")
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pieces = data.split(b"\n")
        self._extend_partial(pieces[0])
        if len(pieces) == 1:
            return
        self._end_line()
        cap = self.line_cap
        for raw in pieces[1:-1]:
            if len(raw) > cap:
                self.cut_bytes += len(raw) - cap
                self._emit(raw[:cap], len(raw) - cap)
            else:
                self._emit(raw, 0)
        self._extend_partial(pieces[-1])

    def _extend_partial(self, piece: bytes) -> None:
        room = self.line_cap - len(self._partial)
        if len(piece) > room:
            self._partial += piece[:max(room, 0)]
            self._partial_cut += len(piece) - max(room, 0)
        else:
            self._partial += piece

    def flush(self) -> None:
        if self._partial or self._partial_cut:
            self._end_line()

    def _end_line(self) -> None:
        raw, cut = bytes(self._partial), self._partial_cut
        self._partial = bytearray()
        self._partial_cut = 0
        self.cut_bytes += cut
        self._emit(raw, cut)

    def _emit(self, raw: bytes, cut: int) -> None:
        # Werkzeug colours its request log even into a pipe: keep the text only.
        line = raw.decode("utf-8", "replace")
        if "\x1b" in line:
            line = _ANSI_ESCAPE.sub("", line)
        if cut:
            line += _cut_note(cut)
        lines = self._lines
        with self._lock:
            if len(lines) == self._max_lines:  # the deque drops its oldest line now
                self._size -= len(lines[0]) + 1
            lines.append(line)
            self._size += len(line) + 1
            self.total_lines += 1
            while self._size > self.total_cap:
                self._size -= len(lines.popleft()) + 1
        child_log.log(logging.INFO if self.live else logging.DEBUG, "[%s] %s", self.name, line)

    def tail(self, n: Optional[int] = None) -> List[str]:
        """The last ``n`` lines; without ``n``, a short tail for an error message.

        A line the child has not ended yet comes last, as written so far.

        The error tail is the last ``keep`` lines, each clipped to
        ``TAIL_LINE_CAP`` characters, at most ``TAIL_TOTAL_CAP`` in all, and a
        stack dump keeps the innermost ``TAIL_FRAMES`` frames of each thread
        (where it is stuck; under fork the outer ones are the parent's):
        errors travel into logs, exceptions and HTTP bodies, and must stay small.
        """
        unfinished = self._unfinished()
        if n is not None:
            with self._lock:
                if n <= 0:
                    return []
                return (list(self._lines) + unfinished)[-n:]
        with self._lock:
            lines = list(self._lines)[-(self.keep + 500):] + unfinished if self.keep > 0 else []
        lines = _brief_stacks(lines)[-self.keep:] if self.keep > 0 else []
        short: List[str] = []
        size = 0
        for line in reversed(lines):
            if len(line) > TAIL_LINE_CAP:
                line = line[:TAIL_LINE_CAP] + _cut_note(len(line) - TAIL_LINE_CAP, "characters")
            size += len(line) + 1
            if size > TAIL_TOTAL_CAP and short:
                break
            short.append(line)
        short.reverse()
        return short

    def _unfinished(self) -> List[str]:
        """The line the child is still writing (a prompt, a progress bar), if any."""
        raw, cut = bytes(self._partial), self._partial_cut
        if not raw and not cut:
            return []
        line = _ANSI_ESCAPE.sub("", raw.decode("utf-8", "replace"))
        return [line + (_cut_note(cut) if cut else "")]

    @property
    def size(self) -> int:
        """Characters held now (bounded by ``total_cap``)."""
        with self._lock:
            return self._size

    def add_mark(self, text: str) -> None:
        """A line of pyhost's own, e.g. where a restarted child's output begins."""
        self.flush()
        with self._lock:
            if len(self._lines) == self._max_lines:
                self._size -= len(self._lines[0]) + 1
            self._lines.append(text)
            self._size += len(text) + 1

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
            self._size = 0
