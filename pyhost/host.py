"""``FlaskHost``: the public façade over one hosted app.

The work is done by three objects, each with one job:

- :class:`pyhost.lifecycle.Lifecycle` — the state machine: the only writer of
  state and last error, and the source of ``on_event`` events (its module
  docstring has the threading model);
- a launcher (:mod:`pyhost.launcher`) — starts one child and waits until it is
  ready (or probes an ``external_url``);
- :class:`pyhost.supervisor.Supervisor` — brings the host up under the
  restart policy and keeps it up from its own thread.

``FlaskHost`` wires them together and adds what users touch: ``start()``,
``stop()``, ``status()``, ``url``, the context manager and the WSGI surfaces.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, List, Optional

from . import registry
from .config import HostConfig
from .errors import HostError, UnknownHostError
from .health import HealthStats
from .launcher import ChildLauncher, ExternalLauncher, Interrupted, Launcher
from .lifecycle import HostEvent, Lifecycle, event
from .logs import enable_development_logging
from .output import OutputBuffer
from .policies import RestartBudget
from .process import ChildEvent, Wake
from .status import HostState, HostStatus
from .supervisor import Supervisor
from .targets import parse_target

__all__ = ["FlaskHost", "HostEvent"]

log = logging.getLogger("pyhost")

_ACTIVE = frozenset(state for state in HostState if state.active)


class FlaskHost:
    """Host a Flask (or any WSGI) app in a supervised child process.

    ``FlaskHost("myapp:app", port=0)`` — keyword fields are ``HostConfig``
    fields. ``start()`` blocks until the app answers HTTP or raises a typed
    ``HostError``; use it as a context manager to always stop it.
    """

    #: Starting this host replaces a running host of the same target on any
    #: port (``@hosted(...).start()`` and re-run notebook cells), not only on its own.
    replaces_same_target = False

    def __init__(self, app: Any = None, *, config: Optional[HostConfig] = None,
                 on_event: Optional[Callable[[HostEvent], None]] = None,
                 name: Optional[str] = None, **fields: Any) -> None:
        if config is None:
            config = HostConfig(**fields)
        elif fields:
            config = config.replace(**fields)
        if app is None and config.external_url is None:
            raise ValueError("FlaskHost: app is required (a target like 'module:app'), "
                             "unless external_url is set")
        if app is not None and config.external_url is not None:
            raise ValueError("FlaskHost: pass either app or external_url, not both")
        self.config = config
        self.app = app
        self.target_label = self._validate_target(app) if app is not None else config.external_url
        self.name = name or _short_name(self.target_label)
        self._start_lock = threading.RLock()
        self._stopping = threading.Event()
        self._lifecycle = Lifecycle(self)
        # Development mode shows the app's own lines as they come ("[name] line").
        self._output = OutputBuffer(config.stderr_lines, self.name, live=config.development)
        self._health = HealthStats()
        self._budget = RestartBudget.from_config(config)
        common = dict(stopping=self._stopping, output=self._output, health=self._health,
                      emit=self._lifecycle.emit)
        self._launcher: Launcher
        if config.external_url is not None:
            self._launcher = ExternalLauncher(config, self.name, **common)
        else:
            self._launcher = ChildLauncher(
                config, self.name, app, str(self.target_label),
                describe_holder=lambda port: registry.describe_holder(self, port), **common)
        self._supervisor = Supervisor(
            config, lifecycle=self._lifecycle, launcher=self._launcher, budget=self._budget,
            stopping=self._stopping, events=self._launcher.events,
            claim=lambda: registry.claim(self), release=lambda: registry.release(self))
        if on_event is not None:
            self._lifecycle.add_listener(on_event)
        if config.development:
            enable_development_logging()

    @staticmethod
    def _validate_target(app: Any) -> str:
        try:
            return parse_target(app, label_only=True)["label"]
        except HostError:
            # Missing file, unpicklable callable: reported as typed errors by start().
            return app if isinstance(app, str) else repr(app)

    # ------------------------------------------------------------------ API
    def start(self) -> "FlaskHost":
        """Start and block until ready; raise a ``HostError`` subclass on failure.

        A no-op on a host that is already started.
        """
        self._refuse_in_callback("start")
        return self._start(keep_port=False)

    def _start(self, keep_port: bool) -> "FlaskHost":
        with self._start_lock:
            if self._lifecycle.state.active:
                return self
            self._stopping.clear()
            self._budget.reset()
            if not keep_port and self.config.external_url is None:
                self._launcher.port = None
            self._lifecycle.to(HostState.STARTING, error=None)
            try:
                with registry.starting(self) as reuse:
                    if reuse and self._launcher.port is None:
                        self._launcher.port = reuse  # a replaced host's URL stays the same
                    self._launcher.prepare()
                    self._supervisor.bring_up(starting=True)
            except Interrupted:
                error = UnknownHostError("start() of %s was interrupted by stop()" % self.name,
                                         details={"reason": "interrupted"})
                if not self._lifecycle.to(HostState.STOPPED, error=error, only_from=_ACTIVE):
                    self._lifecycle.set_error(error)
                raise error from None
            except HostError as exc:
                self._supervisor.fail(exc, "Failed to start %s" % self.name,
                                      gave_up=bool(exc.details.get("gave_up")), raised=True)
                raise
            except BaseException:
                self.stop()
                raise
            self._supervisor.start_thread()
            return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the child (pipe stop → SIGTERM → SIGKILL within ``timeout``).

        Idempotent; safe from ``atexit``, signal handlers and ``on_event``
        callbacks; leaves the port free.
        """
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        self._stopping.set()
        self._launcher.events.put(ChildEvent(None, Wake()))
        was = self._lifecycle.state
        child = self._launcher.child
        how = self._launcher.shutdown(timeout)
        if how and was.active and child is not None:
            log.info("✓ Stopped %s (pid %s, %s)", self.name, child.pid, how)
        self._supervisor.join(timeout + 5)
        # A start() under way on another thread sees the stop and unwinds; wait
        # for it, so that no child it launched outlives this call.
        got = self._start_lock.acquire(timeout=timeout + 5)
        try:
            stopped = [event("stopped")] if was.active else []
            self._lifecycle.to(HostState.STOPPED, *stopped,
                               only_from=frozenset(HostState) - {HostState.STOPPED})
        finally:
            if got:
                self._start_lock.release()
        registry.release(self)

    def kill(self) -> None:
        """SIGKILL the app process at once (a second Ctrl+C); a ``stop()`` under way
        then returns without waiting out ``shutdown_timeout``."""
        child = self._launcher.child
        if child is not None:
            child.kill_now()

    def restart(self) -> "FlaskHost":
        """Stop gracefully and start again on the same port; resets the restart budget."""
        self._refuse_in_callback("restart")
        self.stop()
        return self._start(keep_port=True)

    def is_ready(self) -> bool:
        return self._lifecycle.state is HostState.READY

    def get_last_error(self) -> Optional[HostError]:
        """The error behind the current state; None when running fine or stopped on purpose."""
        return self._lifecycle.error

    @property
    def last_error(self) -> Optional[HostError]:
        return self._lifecycle.error

    @property
    def errors(self) -> List[HostError]:
        """Every recent error, oldest first (crashes that were recovered from included)."""
        return self._lifecycle.history

    @property
    def state(self) -> HostState:
        return self._lifecycle.state

    @property
    def port(self) -> Optional[int]:
        """The real port (also when configured with port=0); None before the first bind."""
        return self._launcher.port

    @property
    def url(self) -> Optional[str]:
        return self._launcher.url

    def url_for(self, path: str = "/") -> str:
        """The host's URL joined with ``path`` (like pytest-flask's ``live_server.url()``)."""
        base = self.url
        if base is None:
            raise RuntimeError("%s has no URL yet: start() it first" % self.name)
        return base + (path if path.startswith("/") else "/" + path)

    @property
    def pid(self) -> Optional[int]:
        child = self._launcher.child
        if child is None or child.exited.is_set():
            return None
        return child.pid

    def logs(self, n: int = 50) -> List[str]:
        """The child's last ``n`` output lines (stdout and stderr)."""
        child = self._launcher.child
        if child is not None:
            child.drain_output()  # a response just received: its log line is in the pipe
        return self._output.tail(n)

    def on_event(self, callback: Callable[[HostEvent], None]) -> Callable[[HostEvent], None]:
        """Register ``callback(HostEvent)``; usable as a decorator."""
        self._lifecycle.add_listener(callback)
        return callback

    def status(self) -> HostStatus:
        state, error, ready_since = self._lifecycle.snapshot()
        return HostStatus(
            state=state,
            is_ready=state is HostState.READY,
            is_restarting=state is HostState.RESTARTING,
            restart_attempts=self._budget.current_attempts(),
            total_restarts=self._budget.total,
            last_error=error,
            uptime=(time.monotonic() - ready_since) if ready_since is not None else None,
            last_health_check=self._health.last_check,
            pid=self.pid,
            port=self.port,
            url=self.url,
            target=str(self.target_label),
            health=self._health.snapshot(),
            circuit=self._lifecycle.circuit,
            workers=self._supervisor.workers if state.active else (),
            error_history=tuple(self._lifecycle.history),
        )

    def __enter__(self) -> "FlaskHost":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state, error, _ = self._lifecycle.snapshot()
        parts = [state.value.lower()]
        if self.url:
            parts.append("at %s" % self.url)
        if self.pid:
            parts.append("pid %d" % self.pid)
        if error is not None and state is not HostState.READY:
            parts.append("last error %s" % error.type.value)
        return "<FlaskHost %s %s>" % (self.target_label, " ".join(parts))

    def _repr_html_(self) -> str:
        from .display import host_html

        return host_html(self)

    def proxy_app(self, **options: Any) -> Any:
        """The route guard: a WSGI app relaying requests to the child, streaming.

        Mount it in a main app (``DispatcherMiddleware``). Responses reach the
        client as they arrive (server-sent events, token streams); upstream
        connections are pooled; hop-by-hop headers are dropped both ways;
        ``Content-Length`` with ``Transfer-Encoding`` gets 400, a body over
        ``max_body_size`` 413, an ``Upgrade`` 501. While the app is not
        ready: 503 + JSON with the public status (details only with
        ``expose_details``), or with ``stale_cache=True`` the last good GET
        answer marked stale. Needs urllib3 (the ``guard`` extra). Options:
        :class:`pyhost.guard.ProxyApp`.
        """
        from .wsgi import proxy_app

        return proxy_app(self, **options)

    def health_app(self, **options: Any) -> Any:
        """A WSGI app answering the host's public status as JSON (200 ready / 503), and
        ``/metrics``; ``expose_details=True`` (or the config field) adds pids, URLs and
        error details. Options: :class:`pyhost.wsgi.HealthApp`."""
        from .wsgi import health_app

        return health_app(self, **options)

    # --------------------------------------------------------------- helpers
    def _refuse_in_callback(self, what: str) -> None:
        # on_event callbacks run inside start() or on the supervisor thread;
        # starting from there would leave two supervisors and an untracked child.
        if self._lifecycle.in_callback:
            raise RuntimeError(
                "%s() was called from an on_event callback of %s; callbacks run on pyhost's "
                "supervisor thread. Call it from another thread (stop() is fine here)."
                % (what, self.name))


def _short_name(label: Any) -> str:
    """What logs call the host: a file target by its file name, not its whole path."""
    text = str(label)
    head, sep, tail = text.rpartition(".py:")
    if sep and os.sep in head:
        text = os.path.basename(head) + sep + tail
    if len(text) > 60:
        text = text[:57] + "..."
    return text

