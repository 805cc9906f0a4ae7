"""Launching one child until it is ready: spawn → loaded → bound → probed (parent side).

:class:`ChildLauncher` starts a child process for the target and waits for its
pushed reports (``Loaded``, ``Bound``, or a typed ``Failed``) or its death,
then probes HTTP health once it is bound. :class:`ExternalLauncher` is the
same interface for ``external_url``: nothing to start, only the probe. The
supervisor calls ``launch()`` for the first start and every restart alike.

Every wait here ends early when the host is stopping (``Interrupted``).
"""
from __future__ import annotations

import abc
import logging
import os
import queue
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, Set
from urllib.parse import urlsplit

import tenacity

from . import backends, protocol
from .config import HostConfig
from .diagnosis import diagnose, importable_here
from .errors import ErrorType, HostError, error_from_record, make_error
from .health import HealthStats, ProbeResult, abort_probes, probe
from .output import OutputBuffer
from .policies import health_probe_retrying
from .process import ChildEvent, ChildProcess, Exited, check_main_module
from .targets import parse_target

__all__ = ["ChildLauncher", "ExternalLauncher", "Interrupted", "Launcher"]

log = logging.getLogger("pyhost")

_MIN_PROBE_TIMEOUT = 0.1  # a loopback answer within the health-check budget's last moment


class Interrupted(Exception):
    """``stop()`` was called while a child was being launched."""


class Launcher(abc.ABC):
    """What the supervisor needs of a launcher (the shared probing lives here)."""

    #: Whether a failed child can be replaced (False: an external URL is only watched).
    restartable = True

    def __init__(self, config: HostConfig, name: str, *, stopping: threading.Event,
                 output: OutputBuffer, health: HealthStats,
                 emit: Callable[..., None]) -> None:
        self.config = config
        self.name = name
        self.stopping = stopping
        self.output = output
        self.health = health
        self.emit = emit
        self.port: Optional[int] = None
        self.child: Optional[ChildProcess] = None
        #: What children say and do, and the wake-up stop() sends (the supervisor reads it).
        self.events: "queue.Queue[ChildEvent]" = queue.Queue()
        self._probes_in_flight: Set[Any] = set()
        self.probes_made = 0

    # -- the interface -----------------------------------------------------------
    @property
    @abc.abstractmethod
    def url(self) -> Optional[str]:
        """Where the app answers (None before the first bind)."""

    def prepare(self) -> None:  # noqa: B027 - optional: most launchers share nothing
        """Once per ``start()``: what every launch of this start shares."""

    @abc.abstractmethod
    def launch(self) -> Optional[ChildProcess]:
        """Start a child and return it once it is ready; raise ``HostError`` or ``Interrupted``."""

    def crash_error(self, child: ChildProcess, when: str) -> HostError:
        """The error for a child that exited ``when`` ("unexpectedly", "during startup")."""
        return make_error(ErrorType.PROCESS_CRASH, "%s exited %s" % (self.name, when))

    def kill_hung(self, child: Optional[ChildProcess]) -> Optional[str]:
        """End a child that stopped answering, after asking it for its stacks.

        Returns where the app was stuck (``file:line in function``) when known.
        """
        return None

    def shutdown(self, timeout: float) -> Optional[str]:
        """Stop the current child (if any): how it ended, or None."""
        abort_probes(self._probes_in_flight)
        return None

    # -- probing -----------------------------------------------------------------
    def probe_url(self) -> str:
        return (self.url or "") + (self.config.health_path or "/")

    def probe_once(self, timeout: float) -> ProbeResult:
        result = probe(self.probe_url(), timeout=timeout,
                       require_2xx=self.config.health_path is not None,
                       in_flight=self._probes_in_flight)
        self.health.record(result)
        return result

    def liveness_probe(self) -> ProbeResult:
        # At least 1 s: a tiny liveness_interval must not fail slightly slow apps.
        return self.probe_once(min(5.0, max(1.0, self.config.liveness_interval or 5.0)))

    def probe_until_healthy(self, abort: threading.Event) -> ProbeResult:
        """Probe with the health-check policy; the last result, passing or not.

        A failed result's ``attempts`` says how many probes were made.
        """
        config = self.config
        timeout = min(config.health_check_timeout, max(2.0, config.health_check_max_interval))
        deadline = time.monotonic() + config.health_check_timeout

        def before_sleep(state: tenacity.RetryCallState) -> None:
            result = state.outcome.result() if state.outcome else None
            log.info("Health check attempt %d/%d... (%s)", state.attempt_number,
                     config.health_check_max_retries, result.reason if result else "?")

        def probe_within_budget() -> ProbeResult:
            # The last probe gets what is left of health_check_timeout, not a full timeout.
            left = deadline - time.monotonic()
            return self.probe_once(max(_MIN_PROBE_TIMEOUT, min(timeout, left)))

        retrying = health_probe_retrying(
            config, abort=lambda: abort.is_set() or self.stopping.is_set(),
            sleep=abort.wait, before_sleep=before_sleep)
        result: ProbeResult = retrying(probe_within_budget)
        if not result.ok and self.stopping.is_set():
            raise Interrupted()
        self.probes_made = retrying.statistics.get("attempt_number", 1)
        return result

    def health_error(self, result: ProbeResult, kind: ErrorType) -> HostError:
        url = self.probe_url()
        return make_error(
            kind,
            "%s health check failed after %s attempts (last: %s) at %s"
            % (self.name, self.probes_made, result.reason, url),
            stderr_tail=self.output.tail(),
            details={"url": url, "health_path": self.config.health_path,
                     "last_result": result.reason, "phase": "health"},
        )


class ExternalLauncher(Launcher):
    """``external_url``: no process; ready when the URL answers its health check."""

    restartable = False

    def __init__(self, config: HostConfig, name: str, **common: Any) -> None:
        super().__init__(config, name, **common)
        parts = urlsplit(config.external_url or "")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def url(self) -> Optional[str]:
        return (self.config.external_url or "").rstrip("/")

    def launch(self) -> None:
        started = time.monotonic()
        result = self.probe_until_healthy(self.stopping)
        if not result.ok:
            # Nothing answered at all: the address is wrong or unreachable.
            raise self.health_error(result, ErrorType.HEALTH_CHECK_TIMEOUT
                                    if result.status is not None else ErrorType.NETWORK_ERROR)
        log.info("✓ External app at %s is healthy (%.0f ms)", self.url,
                 (time.monotonic() - started) * 1000)
        return None

    def liveness_error(self, failures: int, result: ProbeResult) -> HostError:
        """Stopped answering: a network error when nothing answers, as at start."""
        kind = ErrorType.NETWORK_ERROR if result.status is None else ErrorType.HEALTH_CHECK_TIMEOUT
        return make_error(
            kind, "%s stopped answering: %d liveness probes failed in a row (last: %s); not "
            "restarted (external_url)" % (self.name, failures, result.reason),
            details={"phase": "liveness", "url": self.probe_url(), "last_result": result.reason})


class ChildLauncher(Launcher):
    """Start the target in a child process and wait for it to be ready."""

    def __init__(self, config: HostConfig, name: str, app: Any, target_label: str, *,
                 describe_holder: Callable[[Optional[int]], Optional[Dict[str, Any]]],
                 **common: Any) -> None:
        super().__init__(config, name, **common)
        self.app = app
        self.target_label = target_label
        self.describe_holder = describe_holder
        self._spec: Optional[Dict[str, Any]] = None

    @property
    def url(self) -> Optional[str]:
        if self.port is None:
            return None
        host = protocol.connect_address((self.config.host, self.port))[0]
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, self.port)

    def prepare(self) -> None:
        # Once per start(), not per restart: the environment as of start(), the
        # shipped target, the pre-flight checks.
        config = self.config
        backends.validate(config)
        if not config.python:
            check_main_module(config.resolved_start_method)
        environ = dict(os.environ)
        environ.update(config.env)
        cwd = os.getcwd()
        self._spec = {
            "target": parse_target(self.app, by_value=bool(config.python),
                                   start_method=config.resolved_start_method),
            "host": config.host,
            "environ": environ,
            "cwd": cwd,
            "sys_path": [cwd],
            "debug": config.debug,
            "workers": config.workers,
            "server": config.server,
            "shutdown_timeout": config.shutdown_timeout,
            "name": self.name,
        }
        if config.python or config.requires:
            from .preflight import run_preflight

            run_preflight(config, target=self._spec["target"])

    def launch(self) -> ChildProcess:
        if self.stopping.is_set():
            raise Interrupted()
        assert self._spec is not None, "prepare() first"
        started = time.monotonic()
        # Restarts keep the real port, so the URL stays the same (also for port=0).
        spec = dict(self._spec, port=self.port if self.port is not None else self.config.port)
        child = ChildProcess(spec, method=self.config.resolved_start_method,
                             python=self.config.python, events=self.events,
                             output=self.output, name=self.name)
        if self.output.total_lines:
            # Before start(): the new child's first line must come after the mark.
            self.output.add_mark("[pyhost] --- output of a new app process from here ---")
        child.start()
        self.child = child
        if self.stopping.is_set():  # stop() ran while the process started
            child.shutdown(self.config.shutdown_timeout)
            raise Interrupted()
        log.debug("started child pid %s (%s)", child.pid, self.config.resolved_start_method)
        self.emit("started", pid=child.pid)
        try:
            self.port = self._await_bound(child)
            bound = time.monotonic()
            result = self.probe_until_healthy(child.abort)
            if not result.ok:
                if child.exited.is_set():
                    raise self.crash_error(child, "during the health check")
                raise self.health_error(result, ErrorType.HEALTH_CHECK_TIMEOUT)
        except BaseException:
            child.shutdown(min(self.config.shutdown_timeout, 1.0))
            raise
        log.info("✓ %s ready at %s (pid %s) in %.0f ms (bound after %.0f ms)",
                 self.name, self.url, child.pid, (time.monotonic() - started) * 1000,
                 (bound - started) * 1000)
        return child

    def _await_bound(self, child: ChildProcess) -> int:
        deadline = time.monotonic() + self.config.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stuck = self._stacks_of(child)
                raise make_error(
                    ErrorType.HEALTH_CHECK_TIMEOUT,
                    "%s did not finish loading and bind within startup_timeout=%.1fs%s"
                    % (self.name, self.config.startup_timeout,
                       "; it was at %s" % stuck if stuck else ""),
                    stderr_tail=self.output.tail(),
                    details={"phase": "loading", "stuck_at": stuck})
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if self.stopping.is_set():
                raise Interrupted()
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
                raise self.crash_error(child, "during startup")

    # -- errors ------------------------------------------------------------------
    def _reported_error(self, child: ChildProcess, record: Dict[str, Any]) -> HostError:
        details = dict(record.get("details") or {})
        if self.config.python:
            # The pip/reproduce lines must name the child's interpreter, not this one.
            details.setdefault("python", self.config.python)
            if record.get("type") == ErrorType.SCRIPT_NOT_FOUND.value:
                found = importable_here(child.spec["target"], str(record.get("message")))
                if found:  # e.g. a notebook's sys.path.append("../src"), which python= lacks
                    details["importable_here"] = found
        extra: Dict[str, Any] = {"stderr_tail": self.output.tail(), "exit_code": child.exitcode}
        if record.get("type") == ErrorType.PORT_IN_USE.value:
            holder = self.describe_holder(record.get("port"))
            if holder:
                details.update(holder)
                record = dict(record, message=protocol.port_in_use_message(
                    record.get("port"), holder["holder"]))
        return error_from_record(dict(record, details=details), **extra)

    def crash_error(self, child: ChildProcess, when: str) -> HostError:
        child.wait(2.0)
        if not child.checked_in and (child.exitcode or 0) >= 0:
            return self._bootstrap_error(child, when)
        tail = self.output.tail()
        found = diagnose(tail) if when == "during startup" else None
        details: Dict[str, Any] = {"pid": child.pid, "when": when,
                                   "target": str(self.target_label),
                                   "kind": child.spec["target"]["kind"]}
        exit_code = child.exitcode if (child.exitcode or 0) >= 0 else None
        how = "%s (pid %s) %s %s" % (self.name, child.pid, child.describe_exit(), when)
        if found is not None:
            # No report, but its output names the cause: typed, and not retried
            # blindly when a restart cannot fix it.
            details.update(found.details)
            error = make_error(found.type, "%s: %s (from its output: %r)"
                               % (how, found.message, found.details["line"]),
                               stderr_tail=tail, exit_code=exit_code, signal=child.exit_signal,
                               details=details,
                               missing_module=found.details.get("missing_module"))
            return error
        return make_error(ErrorType.PROCESS_CRASH, "The app process for " + how,
                          stderr_tail=tail, exit_code=exit_code, signal=child.exit_signal,
                          details=details)

    def _bootstrap_error(self, child: ChildProcess, when: str) -> HostError:
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
            stderr_tail=self.output.tail(), exit_code=child.exitcode,
            details={"pid": child.pid, "when": when, "main": main, "reason": "bootstrap"},
        )

    # -- hangs -------------------------------------------------------------------
    def _stacks_of(self, child: ChildProcess) -> Optional[str]:
        """Ask a hung child for its Python stacks; the app's file:line it is stuck at."""
        return child.where_stuck()

    def kill_hung(self, child: Optional[ChildProcess]) -> Optional[str]:
        if child is None:
            return None
        stuck = self._stacks_of(child)
        child.abort.set()
        child.signal("kill")
        child.wait(5)
        return stuck

    def shutdown(self, timeout: float) -> Optional[str]:
        super().shutdown(timeout)
        child = self.child
        return child.shutdown(timeout) if child is not None else None
