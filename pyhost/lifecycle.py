"""The host's state machine: the only writer of state and last error, and the event source.

Threading model (which thread writes what):

- The **caller's thread** runs ``start()``, ``stop()`` and ``restart()``; during
  ``start()`` it launches children and makes STOPPED/FAILED → STARTING → READY
  (or → FAILED) transitions.
- The **supervisor thread** (one per started host, :mod:`pyhost.supervisor`)
  makes every later transition: READY ⇄ UNHEALTHY, → RESTARTING, → READY again,
  → FAILED (gave up), and the half-open retries after a ``cooldown``.
- The **pump thread** of each child (:mod:`pyhost.process`) only reads the
  child's pipes: it writes the output buffer and puts messages on the event
  queue, never state.
- ``stop()`` may run on any thread, including signal handlers and ``on_event``
  callbacks; it makes the → STOPPED transition.

All of them go through :class:`Lifecycle`: it checks each transition against
:data:`TRANSITIONS`, writes the state and the current error under its lock,
keeps earlier errors as history, then emits the transition's events outside
the lock (a callback may call ``stop()``).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, FrozenSet, List, Optional, Tuple

from .errors import HostError
from .status import HostState

__all__ = ["HostEvent", "Lifecycle", "TRANSITIONS", "InvalidTransition"]

log = logging.getLogger("pyhost")

S = HostState
#: Every state change a host can make. A transition to the same state is only
#: allowed where listed (RESTARTING → RESTARTING: one more attempt).
TRANSITIONS: Dict[HostState, FrozenSet[HostState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.READY, S.RESTARTING, S.FAILED, S.STOPPED}),
    S.READY: frozenset({S.UNHEALTHY, S.RESTARTING, S.FAILED, S.STOPPED}),
    S.UNHEALTHY: frozenset({S.READY, S.RESTARTING, S.FAILED, S.STOPPED}),
    S.RESTARTING: frozenset({S.RESTARTING, S.READY, S.FAILED, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.RESTARTING, S.STOPPED}),
}

#: How many earlier errors ``Lifecycle.history`` keeps.
HISTORY = 20


class InvalidTransition(RuntimeError):
    """A transition the table does not allow (a bug in pyhost, not in the app)."""


class HostEvent:
    """What ``on_event`` callbacks receive.

    ``name`` is one of started, ready, crashed, unhealthy, healthy, restarting,
    restarted, gave_up, half_open, worker_exited, stopped; ``data`` holds the
    event's details (``pid``, ``attempt``, ``delay``...), ``error`` the
    ``HostError`` behind it, if any.
    """

    __slots__ = ("name", "host", "error", "data", "at")

    def __init__(self, name: str, host: Any, error: Optional[HostError] = None,
                 **data: Any) -> None:
        self.name = name
        self.host = host
        self.error = error
        self.data = data
        self.at = time.time()

    def __repr__(self) -> str:
        return "HostEvent(%r, %s%s)" % (self.name, self.data, ", error=%r" % self.error
                                        if self.error else "")


Event = Tuple[str, Optional[HostError], Dict[str, Any]]


def event(name: str, error: Optional[HostError] = None, **data: Any) -> Event:
    return (name, error, data)


class Lifecycle:
    """State, current error, error history and event listeners of one host."""

    def __init__(self, owner: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.owner = owner  # the FlaskHost named in events
        self.clock = clock
        self._lock = threading.Lock()
        self._state = HostState.STOPPED
        self._error: Optional[HostError] = None
        self._ready_since: Optional[float] = None
        self._half_open = False
        self._history: Deque[HostError] = collections.deque(maxlen=HISTORY)
        self._listeners: List[Callable[[HostEvent], None]] = []
        self._callbacks = threading.local()  # .depth > 0 inside an on_event callback

    # -- reading ----------------------------------------------------------------
    @property
    def state(self) -> HostState:
        with self._lock:
            return self._state

    @property
    def error(self) -> Optional[HostError]:
        """The error that explains the current state (None while all is well)."""
        with self._lock:
            return self._error

    @property
    def history(self) -> List[HostError]:
        """Earlier errors, oldest first, the current one last (at most ``HISTORY``)."""
        with self._lock:
            return list(self._history)

    @property
    def ready_since(self) -> Optional[float]:
        with self._lock:
            return self._ready_since

    @property
    def circuit(self) -> str:
        """The circuit breaker: "closed", "open" (FAILED), "half-open" (a try after cooldown)."""
        with self._lock:
            if self._state is HostState.FAILED:
                return "open"
            return "half-open" if self._half_open else "closed"

    def snapshot(self) -> Tuple[HostState, Optional[HostError], Optional[float]]:
        with self._lock:
            return self._state, self._error, self._ready_since

    # -- writing ----------------------------------------------------------------
    def to(self, state: HostState, *events: Event, error: Any = ...,
           only_from: Optional[FrozenSet[HostState]] = None, half_open: bool = False) -> bool:
        """Move to ``state`` and emit ``events``.

        ``error``: the error that now explains the state (recorded, and kept in
        the history); ``None`` clears it; left out, the current one stays
        except on → READY and → STOPPED, which clear it (a recovered or
        deliberately stopped host has no current error). ``only_from``: make
        the transition only if the current state is one of these (a race lost
        to ``stop()`` is not an error); returns whether it was made.
        ``half_open``: this RESTARTING is the one try after a ``cooldown``.
        """
        with self._lock:
            old = self._state
            if only_from is not None and old not in only_from:
                return False
            if state not in TRANSITIONS[old]:
                raise InvalidTransition("%s → %s is not a host state transition" % (old, state))
            self._state = state
            self._half_open = half_open
            if error is ...:
                error = None if state in (HostState.READY, HostState.STOPPED) else self._error
            if error is not None and error is not self._error:
                self._history.append(error)
            self._error = error
            if state is HostState.READY:
                if old is not HostState.UNHEALTHY or self._ready_since is None:
                    self._ready_since = self.clock()
            elif state is not HostState.UNHEALTHY:
                self._ready_since = None
        log.debug("%s: %s → %s", getattr(self.owner, "name", "host"), old, state)
        for name, event_error, data in events:
            self.emit(name, event_error, **data)
        return True

    def set_error(self, error: HostError) -> None:
        """Record why the host is in its current state without changing it."""
        with self._lock:
            if error is not self._error:
                self._history.append(error)
            self._error = error

    # -- events -----------------------------------------------------------------
    def add_listener(self, callback: Callable[[HostEvent], None]) -> None:
        self._listeners.append(callback)

    @property
    def in_callback(self) -> bool:
        """True on a thread that is running an ``on_event`` callback right now."""
        return getattr(self._callbacks, "depth", 0) > 0

    def emit(self, name: str, error: Optional[HostError] = None, **data: Any) -> None:
        if not self._listeners:
            return
        host_event = HostEvent(name, self.owner, error, **data)
        self._callbacks.depth = getattr(self._callbacks, "depth", 0) + 1
        try:
            for listener in list(self._listeners):
                try:
                    listener(host_event)
                except Exception:  # noqa: BLE001 - a callback must not break supervision
                    log.exception("on_event callback %r failed for %s", listener, name)
        finally:
            self._callbacks.depth -= 1
