"""``FlaskHost``: start, probe, supervise and stop one hosted app (parent side).

One lifecycle is written once (:meth:`FlaskHost._launch`): start a child, wait
for its pushed "bound" report (or its typed failure, or its death), probe HTTP
health, mark READY. ``start()`` runs it in the caller's thread; after a crash
or a hang the supervisor thread (:mod:`pyhost.supervisor`, mixed in) runs the
same code under the restart budget.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import queue
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

import tenacity

from . import protocol, registry
from .config import HostConfig
from .errors import (
    ErrorType,
    HostError,
    ProcessCrash,
    UnknownHostError,
    error_from_record,
    make_error,
)
from .health import HealthStats, ProbeResult, abort_probes, probe
from .logs import enable_development_logging
from .output import OutputBuffer
from .policies import RestartBudget, health_probe_retrying
from .process import ChildEvent, ChildProcess, Exited, Wake, check_main_module
from .protocol import connect_address
from .status import HostState, HostStatus
from .supervisor import Supervision, _Stopped
from .targets import parse_target

__all__ = ["FlaskHost", "HostEvent"]

log = logging.getLogger("pyhost")

_MIN_PROBE_TIMEOUT = 0.1  # a loopback answer within the health-check budget's last moment


class HostEvent:
    """What ``on_event`` callbacks receive: ``name`` is one of started, ready,
    crashed, unhealthy, restarting, restarted, gave_up, stopped."""

    __slots__ = ("name", "host", "error", "data", "at")

    def __init__(self, name: str, host: "FlaskHost", error: Optional[HostError] = None,
                 **data: Any) -> None:
        self.name = name
        self.host = host
        self.error = error
        self.data = data
        self.at = time.time()

    def __repr__(self) -> str:
        return "HostEvent(%r, %s%s)" % (self.name, self.data, ", error=%r" % self.error
                                        if self.error else "")


class FlaskHost(Supervision):
    """Host a Flask (or any WSGI) app in a supervised child process.

    ``FlaskHost("myapp:app", port=0)`` — keyword fields are ``HostConfig``
    fields. ``start()`` blocks until the app answers HTTP or raises a typed
    ``HostError``; use it as a context manager to always stop it.
    """

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
        self._lock = threading.RLock()
        self._start_lock = threading.RLock()
        self._stopping = threading.Event()
        self._events: "queue.Queue[ChildEvent]" = queue.Queue()
        self._output = OutputBuffer(config.stderr_lines, self.name)
        self._health = HealthStats()
        self._budget = RestartBudget.from_config(config)
        self._state = HostState.STOPPED
        self._child: Optional[ChildProcess] = None
        self._port: Optional[int] = None
        self._ready_at: Optional[float] = None
        self._last_error: Optional[HostError] = None
        self._supervisor: Optional[threading.Thread] = None
        self._listeners: List[Callable[[HostEvent], None]] = []
        self._liveness_failures = 0
        self._spec: Optional[Dict[str, Any]] = None
        self._callbacks = threading.local()  # .depth > 0 inside an on_event callback
        self._probes_in_flight: Set[Any] = set()  # stop() cuts them short
        if on_event is not None:
            self._listeners.append(on_event)
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
        self._refuse_on_supervisor_thread("start")
        return self._start(keep_port=False)

    def _start(self, keep_port: bool) -> "FlaskHost":
        with self._start_lock:
            if self._state.active:
                return self
            self._stopping.clear()
            self._budget.reset()
            self._last_error = None
            self._liveness_failures = 0
            if not keep_port:
                self._port = None
            self._set_state(HostState.STARTING)
            try:
                registry.claim(self)
                if self.config.external_url:
                    self._start_external()
                else:
                    # Once per start(), not per restart: the environment as of
                    # start(), the shipped target, the pre-flight checks.
                    self._spec = self._build_spec()
                    self._preflight()
                    self._run_until_ready(None, starting=True)
            except _Stopped:
                self._set_state(HostState.STOPPED)
                raise UnknownHostError(
                    "start() of %s was interrupted by stop()" % self.name) from None
            except HostError as exc:
                self._fail(exc, "Failed to start %s" % self.name)
                if exc.details.get("gave_up"):  # startup deaths used up the restart budget
                    self._emit("gave_up", exc)
                raise
            except BaseException:
                self.stop()
                raise
            self._start_supervisor()
            return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the child (pipe stop → SIGTERM → SIGKILL within ``timeout``).

        Idempotent; safe from ``atexit`` and signal handlers; leaves the port free.
        """
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        self._stopping.set()
        self._events.put(ChildEvent(None, Wake()))
        with self._lock:
            child = self._child
            was = self._state
        abort_probes(self._probes_in_flight)  # e.g. an external_url that stopped answering
        if child is not None:
            how = child.shutdown(timeout)
            if was.active:
                log.info("✓ Stopped %s (pid %s, %s)", self.name, child.pid, how)
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout + 5)
        with self._lock:
            self._supervisor = None
            self._ready_at = None
            if self._state.active:
                self._state = HostState.STOPPED
        registry.release(self)
        if was.active:
            self._emit("stopped")

    def restart(self) -> "FlaskHost":
        """Stop gracefully and start again on the same port; resets the restart budget."""
        self._refuse_on_supervisor_thread("restart")
        self.stop()
        return self._start(keep_port=True)

    def is_ready(self) -> bool:
        return self._state is HostState.READY

    def get_last_error(self) -> Optional[HostError]:
        return self._last_error

    @property
    def last_error(self) -> Optional[HostError]:
        return self._last_error

    @property
    def state(self) -> HostState:
        return self._state

    @property
    def port(self) -> Optional[int]:
        """The real port (also when configured with port=0); None before the first bind."""
        if self.config.external_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.config.external_url)
            return parts.port or (443 if parts.scheme == "https" else 80)
        return self._port

    @property
    def url(self) -> Optional[str]:
        if self.config.external_url:
            return self.config.external_url.rstrip("/")
        if self._port is None:
            return None
        host = connect_address((self.config.host, self._port))[0]  # a wildcard → loopback
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, self._port)

    @property
    def pid(self) -> Optional[int]:
        child = self._child
        if child is None or child.exited.is_set():
            return None
        return child.pid

    def logs(self, n: int = 50) -> List[str]:
        """The child's last ``n`` output lines (stdout and stderr)."""
        return self._output.tail(n)

    def on_event(self, callback: Callable[[HostEvent], None]) -> Callable[[HostEvent], None]:
        """Register ``callback(HostEvent)``; usable as a decorator."""
        self._listeners.append(callback)
        return callback

    def status(self) -> HostStatus:
        with self._lock:
            state = self._state
            ready_at = self._ready_at
        health = self._health.snapshot()
        return HostStatus(
            state=state,
            is_ready=state is HostState.READY,
            is_restarting=state is HostState.RESTARTING,
            restart_attempts=self._budget.current_attempts(),
            total_restarts=self._budget.total,
            last_error=self._last_error,
            uptime=(time.monotonic() - ready_at) if ready_at is not None else None,
            last_health_check=self._health.last_check,
            pid=self.pid,
            port=self.port,
            url=self.url,
            target=str(self.target_label),
            health=health,
        )

    def __enter__(self) -> "FlaskHost":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        parts = [self._state.value.lower()]
        if self.url:
            parts.append("at %s" % self.url)
        if self.pid:
            parts.append("pid %d" % self.pid)
        if self._last_error is not None and self._state is not HostState.READY:
            parts.append("last error %s" % self._last_error.type.value)
        return "<FlaskHost %s %s>" % (self.target_label, " ".join(parts))

    def _repr_html_(self) -> str:
        from .display import host_html

        return host_html(self)

    def proxy_app(self, **options: Any) -> Any:
        """A WSGI app forwarding to the child; 503 + JSON while not ready.

        ``options`` go to :class:`pyhost.wsgi.ProxyApp` (``prefix``, ``timeout``,
        ``chunk_size``).
        """
        from .wsgi import proxy_app

        return proxy_app(self, **options)

    def health_app(self) -> Any:
        """A WSGI app answering the host's status as JSON (200 ready / 503), and ``/metrics``."""
        from .wsgi import health_app

        return health_app(self)

    # ------------------------------------------------------------ lifecycle
    def _launch(self) -> None:
        started = time.monotonic()
        assert self._spec is not None
        # Restarts keep the real port, so the URL stays the same (also for port=0).
        spec = dict(self._spec, port=self._port if self._port is not None else self.config.port)
        child = ChildProcess(spec, method=self.config.resolved_start_method,
                             python=self.config.python, events=self._events,
                             output=self._output, name=self.name)
        if self._output.total_lines:
            # Before start(): the new child's first line must come after the mark.
            self._output.add_mark("[pyhost] --- output of a new app process from here ---")
        child.start()
        with self._lock:
            self._child = child
            stopping = self._stopping.is_set()
        if stopping:
            child.shutdown(self.config.shutdown_timeout)
            raise _Stopped()
        log.debug("started child pid %s (%s)", child.pid, self.config.resolved_start_method)
        self._emit("started", pid=child.pid)
        try:
            port = self._await_bound(child)
            bound = time.monotonic()
            self._port = port
            self._probe_until_healthy(child)
        except BaseException:
            child.shutdown(min(self.config.shutdown_timeout, 1.0))
            raise
        ready_at = self._mark_ready()
        self._budget.ready()
        log.info("✓ %s ready at %s (pid %s) in %.0f ms (bound after %.0f ms)",
                 self.name, self.url, child.pid, (ready_at - started) * 1000,
                 (bound - started) * 1000)
        self._emit("ready", pid=child.pid, seconds=ready_at - started)

    def _mark_ready(self) -> float:
        """READY as of now (returned), unless stop() ran since the passing probe."""
        with self._lock:
            # READY then would describe a child that is gone.
            if self._stopping.is_set():
                raise _Stopped()
            self._state = HostState.READY
            self._ready_at = time.monotonic()
            self._liveness_failures = 0
            return self._ready_at

    def _build_spec(self) -> Dict[str, Any]:
        if not self.config.python:
            check_main_module(self.config.resolved_start_method)
        environ = dict(os.environ)
        environ.update(self.config.env)
        cwd = os.getcwd()
        return {
            "target": parse_target(self.app, by_value=bool(self.config.python)),
            "host": self.config.host,
            "environ": environ,
            "cwd": cwd,
            "sys_path": [cwd],
            "debug": self.config.debug,
            "workers": self.config.workers,
            "server": self.config.server,
            "shutdown_timeout": self.config.shutdown_timeout,
            "name": self.name,
        }

    def _preflight(self) -> None:
        if self.config.python or self.config.requires:
            from .preflight import run_preflight

            run_preflight(self.config, target=self._spec["target"] if self._spec else None)

    def _await_bound(self, child: ChildProcess) -> int:
        deadline = time.monotonic() + self.config.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise make_error(
                    ErrorType.HEALTH_CHECK_TIMEOUT,
                    "%s did not finish loading and bind within startup_timeout=%.1fs"
                    % (self.name, self.config.startup_timeout),
                    stderr_tail=self._output.tail(), details={"phase": "loading"},
                )
            try:
                event = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if self._stopping.is_set():
                raise _Stopped()
            if event.child is not child:
                continue
            message = event.message
            if isinstance(message, protocol.Loaded):
                log.debug("%s loaded in %.0f ms", self.name, message.seconds * 1000)
            elif isinstance(message, protocol.Bound):
                return int(message.port)
            elif isinstance(message, protocol.Failed):
                child.wait(2.0)  # let the pump read the rest of its output
                raise self._reported_error(child, message.record)
            elif isinstance(message, Exited):
                raise self._crash_error(child, "during startup")

    def _reported_error(self, child: ChildProcess, record: Dict[str, Any]) -> HostError:
        details = dict(record.get("details") or {})
        if self.config.python:
            # The pip/reproduce lines must name the child's interpreter, not this one.
            details.setdefault("python", self.config.python)
            if record.get("type") == ErrorType.SCRIPT_NOT_FOUND.value:
                found = _importable_here(child.spec["target"], str(record.get("message")))
                if found:  # e.g. a notebook's sys.path.append("../src"), which python= lacks
                    details["importable_here"] = found
        extra: Dict[str, Any] = {"stderr_tail": self._output.tail(), "exit_code": child.exitcode}
        if record.get("type") == ErrorType.PORT_IN_USE.value:
            holder = registry.describe_holder(self, record.get("port"))
            if holder:
                details.update(holder)
                record = dict(record, message="Port %s is already in use by %s. Stop it, or "
                              "start with a different port (port=0 picks a free one)."
                              % (record.get("port"), holder["holder"]))
        record = dict(record, details=details)
        return error_from_record(record, **extra)

    def _crash_error(self, child: ChildProcess, when: str) -> HostError:
        child.wait(2.0)
        if not child.checked_in and (child.exitcode or 0) >= 0:
            # Died in multiprocessing's own bootstrap, before pyhost's code ran:
            # under spawn/forkserver that is re-importing this program's __main__
            # (no __name__ guard, or its top level raised). Same every time: not retried.
            main = getattr(sys.modules.get("__main__"), "__file__", None)
            return make_error(
                ErrorType.PROCESS_SPAWN_ERROR,
                "The child for %s (pid %s) %s before pyhost's code ran in it: multiprocessing "
                "could not prepare it%s. Its output went to this process's stderr, not to "
                "host.logs()." % (
                    self.name, child.pid, child.describe_exit(),
                    " (in a %s child it re-imports this program's __main__ module %s first: "
                    "a script without the if __name__ == '__main__': guard, or top-level code "
                    "that raised, ends the child there)" % (child.method, main)
                    if main and child.method != "fork" else ""),
                stderr_tail=self._output.tail(), exit_code=child.exitcode,
                details={"pid": child.pid, "when": when, "main": main},
            )
        error = make_error(
            ErrorType.PROCESS_CRASH,
            "The app process for %s (pid %s) %s %s" % (self.name, child.pid,
                                                        child.describe_exit(), when),
            stderr_tail=self._output.tail(),
            exit_code=child.exitcode if (child.exitcode or 0) >= 0 else None,
            signal=child.exit_signal,
            details={"pid": child.pid, "when": when, "target": str(self.target_label),
                     "kind": child.spec["target"]["kind"]},
        )
        assert isinstance(error, ProcessCrash)
        return error

    def _probe_url(self) -> str:
        base = self.url or ""
        return base + (self.config.health_path or "/")

    def _probe_once(self, url: str, timeout: float) -> ProbeResult:
        result = probe(url, timeout=timeout, require_2xx=self.config.health_path is not None,
                       in_flight=self._probes_in_flight)
        self._health.record(result)
        return result

    def _probe_until_healthy(self, child: Optional[ChildProcess]) -> ProbeResult:
        config = self.config
        url = self._probe_url()
        timeout = min(config.health_check_timeout, max(2.0, config.health_check_max_interval))
        abort = child.abort if child is not None else self._stopping

        def before_sleep(state: tenacity.RetryCallState) -> None:
            result = state.outcome.result() if state.outcome else None
            log.info("Health check attempt %d/%d... (%s)", state.attempt_number,
                     config.health_check_max_retries, result.reason if result else "?")

        retrying = health_probe_retrying(
            config, abort=lambda: abort.is_set() or self._stopping.is_set(),
            sleep=abort.wait, before_sleep=before_sleep)
        deadline = time.monotonic() + config.health_check_timeout

        def probe_within_budget() -> ProbeResult:
            # The last probe gets what is left of health_check_timeout, not a full timeout.
            left = deadline - time.monotonic()
            return self._probe_once(url, max(_MIN_PROBE_TIMEOUT, min(timeout, left)))

        result: ProbeResult = retrying(probe_within_budget)
        if result.ok:
            return result
        if self._stopping.is_set():
            raise _Stopped()
        if child is not None and child.exited.is_set():
            raise self._crash_error(child, "during the health check")
        attempts = retrying.statistics.get("attempt_number", "?")
        kind = ErrorType.HEALTH_CHECK_TIMEOUT
        if child is None and result.status is None:
            kind = ErrorType.NETWORK_ERROR
        raise make_error(
            kind,
            "%s health check failed after %s attempts (last: %s) at %s"
            % (self.name, attempts, result.reason, url),
            stderr_tail=self._output.tail(),
            details={"url": url, "health_path": config.health_path, "last_result": result.reason,
                     "phase": "health"},
        )

    def _start_external(self) -> None:
        started = time.monotonic()
        self._probe_until_healthy(None)
        ready_at = self._mark_ready()
        log.info("✓ External app at %s is healthy (%.0f ms)", self.url,
                 (ready_at - started) * 1000)
        self._emit("ready", seconds=ready_at - started)

    # ----------------------------------------------------------- supervision
    def _fail(self, error: HostError, what: str) -> None:
        self._last_error = error
        child = self._child
        if child is not None:  # closes what is left of one that has exited, stops one that has not
            child.shutdown(self.config.shutdown_timeout)
        with self._lock:
            self._state = HostState.FAILED
            self._ready_at = None
        registry.release(self)
        log.error("❌ %s: %s", what, error.describe())

    # --------------------------------------------------------------- helpers
    def _refuse_on_supervisor_thread(self, what: str) -> None:
        # on_event callbacks run inside start() or on the supervisor thread;
        # starting from there would leave two supervisors and an untracked child.
        if getattr(self._callbacks, "depth", 0):
            raise RuntimeError(
                "%s() was called from an on_event callback of %s; callbacks run on pyhost's "
                "supervisor thread. Call it from another thread (stop() is fine here)."
                % (what, self.name))

    def _set_state(self, state: HostState) -> None:
        with self._lock:
            self._state = state

    def _emit(self, name: str, error: Optional[HostError] = None, **data: Any) -> None:
        if not self._listeners:
            return
        event = HostEvent(name, self, error, **data)
        self._callbacks.depth = getattr(self._callbacks, "depth", 0) + 1
        try:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # noqa: BLE001 - a callback must not break supervision
                    log.exception("on_event callback %r failed for %s", listener, name)
        finally:
            self._callbacks.depth -= 1


def _short_name(label: Any) -> str:
    """What logs call the host: a file target by its file name, not its whole path."""
    text = str(label)
    head, sep, tail = text.rpartition(".py:")
    if sep and os.sep in head:
        text = os.path.basename(head) + sep + tail
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def _importable_here(target: Dict[str, Any], message: str) -> Optional[str]:
    """The sys.path entry this process imports ``target``'s module from, if any.

    Asked when the child reported the module's top-level package missing. Only
    the top-level name is looked up (nothing is imported): a child under
    ``python=`` has its own sys.path, without entries this process added.
    """
    if target.get("kind") != "module" or not target.get("module"):
        return None
    top = str(target["module"]).split(".")[0]
    if "no module named '%s'" % top not in message.lower():
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isabs(spec.origin):
        return None
    origin = os.path.dirname(spec.origin)
    return os.path.dirname(origin) if spec.submodule_search_locations else origin
