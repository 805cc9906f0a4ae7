"""Helpers for tests that exercise supervision: wait for host events, crash a child.

Tests should wait on what happened, not sleep for what might have::

    events = EventRecorder()
    with FlaskHost("myapp:app", port=0, restart_delay=0.1, on_event=events) as host:
        mark = events.mark()
        old_pid = kill_child(host)
        events.wait_for("restarted", after=mark, timeout=30)
        assert host.pid != old_pid
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, List, Optional, Sequence, Union

__all__ = ["EventRecorder", "kill_child"]


class EventRecorder:
    """An ``on_event`` callback that keeps every ``HostEvent`` and lets tests wait for one."""

    def __init__(self, host: Any = None) -> None:
        self.events: List[Any] = []
        self._changed = threading.Condition()
        if host is not None:
            host.on_event(self)

    def __call__(self, event: Any) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def names(self) -> List[str]:
        with self._changed:
            return [event.name for event in self.events]

    def mark(self) -> int:
        """A position to wait from: ``wait_for(..., after=mark)`` ignores earlier events."""
        with self._changed:
            return len(self.events)

    def wait_for(self, name: Union[str, Sequence[str]], timeout: float = 30.0, *,
                 after: int = 0) -> Any:
        """The first event named ``name`` (or any of several names) at index >= ``after``.

        Raises ``TimeoutError`` listing the events seen, so a failing test says
        what happened instead.
        """
        wanted = (name,) if isinstance(name, str) else tuple(name)

        def first() -> Any:
            return next((event for event in self.events[after:] if event.name in wanted), None)

        with self._changed:
            event = self._changed.wait_for(first, timeout)
            if event is None:
                raise TimeoutError(
                    "no %s event within %.1fs; events since then: %s"
                    % (" or ".join(wanted), timeout,
                       [event.name for event in self.events[after:]] or "none"))
            return event


def kill_child(host: Any, sig: Optional[int] = None) -> int:
    """Kill ``host``'s current app process (SIGKILL by default); returns its pid."""
    pid = host.pid
    if pid is None:
        raise RuntimeError("%r has no running app process to kill" % (host,))
    os.kill(pid, sig if sig is not None else getattr(signal, "SIGKILL", signal.SIGTERM))
    return pid
