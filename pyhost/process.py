"""One child process as the parent sees it (parent side).

``ChildProcess`` starts the child with a ``multiprocessing`` context (or, for
``HostConfig.python``, another interpreter via ``subprocess``), and runs one
*pump* thread that waits on the control pipe, the output pipe and the process
sentinel together (``multiprocessing.connection.wait``): messages and the exit
become :class:`ChildEvent` items on the host's queue the moment they happen,
with no busy polling. Output lines go to an :class:`OutputBuffer`.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import subprocess
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional

from . import _child, protocol
from .diagnosis import stuck_at
from .errors import SpawnError, signal_name
from .output import OutputBuffer
from .spawning import check_main_module, get_context

__all__ = ["ChildEvent", "Exited", "Wake", "ChildProcess", "get_context", "check_main_module"]

log = logging.getLogger("pyhost")


class Exited(NamedTuple):
    """The child process ended (seen by its sentinel); not a message on the pipe."""

    exitcode: Optional[int]


class Wake(NamedTuple):
    """Not from a child: wakes a thread waiting on the event queue (stop() was called)."""


class ChildEvent:
    """What a child said (a :mod:`pyhost.protocol` message) or did (``Exited``)."""

    __slots__ = ("child", "message", "at")

    def __init__(self, child: Optional["ChildProcess"], message: Any) -> None:
        self.child = child
        self.message = message
        self.at = time.monotonic()

    def __repr__(self) -> str:
        return "ChildEvent(%r)" % (self.message,)


class ChildProcess:
    """Start, watch and end one child. Runs in the parent."""

    def __init__(self, spec: Dict[str, Any], *, method: str, python: Optional[str],
                 events: "queue.Queue[ChildEvent]", output: OutputBuffer, name: str) -> None:
        self.spec = spec
        self.method = method
        self.python = python
        self.events = events
        self.output = output
        self.name = name
        self.pid: Optional[int] = None
        self.exitcode: Optional[int] = None
        self.exited = threading.Event()
        #: set when the child exits or the host stops: waits during startup end early.
        self.abort = threading.Event()
        self.killed = False  # by kill_now(): shutdown() says so
        self._proc: Any = None
        self._popen: Optional[subprocess.Popen] = None
        self._conn: Optional[multiprocessing.connection.Connection] = None
        self._out_r: Optional[int] = None
        self._sentinel: Any = None
        self._pidfd: Optional[int] = None
        self._pump: Optional[threading.Thread] = None
        self._launch_ok = False
        #: pyhost's code ran in the child (it said hello): a death before that is
        #: multiprocessing's bootstrap failing, which no restart fixes.
        self.checked_in = False
        # Re-entrant: stop() may run in a signal handler that interrupted stop().
        self._send_lock = threading.RLock()
        self._close_lock = threading.RLock()
        self._read_lock = threading.Lock()

    # -- start ----------------------------------------------------------------
    def start(self) -> None:
        # The pump thread starts before the child: Thread.start() waits until
        # the thread runs, which takes 0.2 ms now but up to 2 ms right after a
        # fork, when the new child competes for the cores (bench/startup.py).
        launched = threading.Event()
        self._pump = threading.Thread(target=self._run_pump, args=(launched,),
                                      name="pyhost-pump-%s" % self.name, daemon=True)
        self._pump.start()
        try:
            if self.python:
                self._start_exec()
            else:
                self._start_mp()
        except BaseException as exc:
            launched.set()  # not marked ok: the pump ends without an event
            self._pump.join()
            self._kill_half_started()
            self._close_fds()
            if isinstance(exc, SpawnError) or not isinstance(exc, Exception):
                raise
            # multiprocessing's "bootstrapping phase" RuntimeError: a script that
            # starts a host at import time, re-run by a spawn/forkserver child.
            reason = "bootstrap" if "bootstrapping phase" in str(exc) else type(exc).__name__
            raise SpawnError("could not start the child process for %s: %s: %s"
                             % (self.spec["target"]["label"], type(exc).__name__, exc),
                             details={"reason": reason}) from exc
        self._launch_ok = True
        launched.set()

    def _kill_half_started(self) -> None:
        """A child that started but whose launch failed afterwards must not live on."""
        for target in (self._proc, self._popen):
            if target is None:
                continue
            try:
                target.kill()
                if hasattr(target, "join"):
                    target.join(5)
                else:
                    target.wait(5)
            except (OSError, ValueError, AssertionError, subprocess.TimeoutExpired):
                pass

    def _start_mp(self) -> None:
        ctx = get_context(self.method)
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        out_r, out_w = ctx.Pipe(duplex=False)
        self._conn = parent_conn
        self._out_r = os.dup(out_r.fileno())
        out_r.close()
        try:
            proc = ctx.Process(target=_child.mp_main, args=(self.spec, child_conn, out_w),
                               name="pyhost-%s" % self.name, daemon=True)
            proc.start()
        finally:
            # The parent's copies of the child's ends must go, or EOF never arrives.
            child_conn.close()
            out_w.close()
        self._proc = proc
        self.pid = proc.pid
        self._sentinel = proc.sentinel
        os.set_blocking(self._out_r, False)

    def _start_exec(self) -> None:
        parent_conn, child_conn = multiprocessing.Pipe(duplex=True)
        out_r, out_w = os.pipe()
        self._conn = parent_conn
        self._out_r = out_r
        fd = child_conn.fileno()
        assert self.python is not None
        try:
            self._popen = subprocess.Popen(
                # pyhost/ as a private package: the other interpreter may not have pyhost.
                [self.python, "-c", _child.BOOTSTRAP, _child.PACKAGE_DIR, str(fd)],
                pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                env=self.spec.get("environ"), cwd=self.spec.get("cwd") or None,
                close_fds=True,
            )
        finally:
            child_conn.close()
            os.close(out_w)
        self.pid = self._popen.pid
        try:
            self._pidfd = os.pidfd_open(self.pid)  # type: ignore[attr-defined]
            self._sentinel = self._pidfd
        except (AttributeError, OSError):
            self._sentinel = None  # the pump falls back to a short poll
        os.set_blocking(self._out_r, False)
        parent_conn.send(self.spec)

    # -- pump (a thread in the parent) ----------------------------------------
    def _run_pump(self, launched: threading.Event) -> None:
        launched.wait()
        if not self._launch_ok:
            return  # the launch failed; start() raises
        conn, out_r = self._conn, self._out_r
        assert conn is not None and out_r is not None
        waitables: List[Any] = [conn, out_r]
        if self._sentinel is not None:
            waitables.append(self._sentinel)
        timeout = None if self._sentinel is not None else 0.05
        try:
            while True:
                ready = multiprocessing.connection.wait(waitables, timeout)
                if out_r in ready and not self._read_output():
                    waitables.remove(out_r)
                if conn in ready:
                    # The child writes its traceback before it reports: read it first.
                    self._read_output()
                    if not self._receive(conn):
                        waitables.remove(conn)
                if (self._sentinel is not None and self._sentinel in ready) or (
                    self._sentinel is None and self._popen is not None
                    and self._popen.poll() is not None
                ):
                    break
            while conn in waitables and conn.poll():
                if not self._receive(conn):
                    break
            self._read_output()
            self.output.flush()
        finally:
            self.exitcode = self._reap()
            self.exited.set()
            self.abort.set()
            self.events.put(ChildEvent(self, Exited(self.exitcode)))

    def _receive(self, conn: multiprocessing.connection.Connection) -> bool:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return False
        try:
            message = protocol.decode(message)
        except protocol.ProtocolError as exc:
            log.warning("⚠ %s: ignored a message from the child: %s", self.name, exc)
            return True
        if isinstance(message, protocol.Hello):
            self.checked_in = True
            return True
        self.events.put(ChildEvent(self, message))
        return True

    def _read_output(self, limit: Optional[int] = None) -> bool:
        """Read what the pipe holds now (at most ``limit`` bytes); False at EOF."""
        # The pump and drain_output() both read: one at a time, or two chunks
        # could reach the buffer in the wrong order.
        with self._read_lock:
            fd, read = self._out_r, 0
            while fd is not None and (limit is None or read < limit):
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    return True
                except OSError:
                    return False
                if not data:
                    return False
                read += len(data)
                self.output.feed(data)
            return fd is not None

    def drain_output(self) -> None:
        """Read what the child has written so far, without waiting (for ``host.logs()``).

        A server writes its request log line before it sends the response, so
        after a response arrived its line is in the pipe; the pump thread may
        just not have read it yet.
        """
        if self._out_r is not None and not self.exited.is_set():
            self._read_output(limit=1 << 20)  # a flooding child must not hold logs() up

    def _reap(self) -> Optional[int]:
        if self._proc is not None:
            self._proc.join(5)
            return self._proc.exitcode
        try:
            return self._popen.wait(5) if self._popen is not None else None
        except subprocess.TimeoutExpired:
            return None

    # -- control --------------------------------------------------------------
    def request_stop(self) -> bool:
        """Ask the child to stop serving (in-flight requests finish)."""
        with self._send_lock:
            try:
                if self._conn is not None and not self.exited.is_set():
                    self._conn.send(protocol.encode(protocol.Stop()))
                    return True
            except (OSError, EOFError, ValueError):
                pass
        return False

    def signal(self, how: str) -> None:
        """``"terminate"`` (SIGTERM) or ``"kill"`` (SIGKILL); a no-op once exited."""
        if self.exited.is_set():
            return
        target = self._proc if self._proc is not None else self._popen
        try:
            getattr(target, how)()
        except (OSError, ValueError, AttributeError):
            pass

    def kill_now(self) -> None:
        """SIGKILL at once (a second Ctrl+C): a ``shutdown()`` under way stops waiting."""
        self.killed = True
        self.abort.set()
        self.signal("kill")

    def wait(self, timeout: Optional[float]) -> bool:
        return self.exited.wait(timeout)

    def dump_stacks(self, timeout: float = 1.0) -> bool:
        """Ask the child for every thread's Python stack (into its output); wait for it.

        False when the child has exited or the platform lacks the signal
        (``protocol.STACKS_SIGNAL``, registered by the child before its Hello).
        """
        signum = getattr(signal, protocol.STACKS_SIGNAL, None)
        if signum is None or self.pid is None or self.exited.is_set() or not self.checked_in:
            return False
        before = self.output.total_lines
        try:
            os.kill(self.pid, signum)
        except OSError:
            return False
        # One burst of lines, read by the pump thread: wait for it, then for quiet.
        deadline, seen = time.monotonic() + timeout, before
        while time.monotonic() < deadline and not self.exited.wait(0.05):
            now = self.output.total_lines
            if now > before and now == seen:
                break
            seen = now
        return True

    def where_stuck(self) -> Optional[str]:
        """Dump the stacks of a child that does not respond; the app's file:line it is at."""
        before = self.output.total_lines
        if not self.dump_stacks():
            return None
        return stuck_at(self.output.tail(max(1, self.output.total_lines - before)))

    def shutdown(self, timeout: float) -> str:
        """Pipe stop → SIGTERM → SIGKILL within ``timeout``; returns how it ended."""
        if self.exited.is_set():
            self.close()
            return "exited"
        self.abort.set()
        deadline = time.monotonic() + timeout
        how = "stopped"
        if not (self.request_stop() and self.wait(timeout * 0.6)):
            how = "terminated"
            self.signal("terminate")
            if not self.wait(max(0.0, deadline - time.monotonic())):
                how = "killed"
                stuck = self.where_stuck()
                log.warning("⚠ %s (pid %s) did not stop within %.1fs%s; killing it",
                            self.name, self.pid, timeout,
                            " (it was at %s)" % stuck if stuck else "")
                self.signal("kill")
                self.wait(5)
        self.close()
        return "killed" if self.killed else how

    def close(self) -> None:
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(5)
        self._close_fds()

    def _close_fds(self) -> None:
        # stop() and an interrupted start() may both get here at once: each fd must be
        # closed exactly once, or the second close hits whatever reused the number.
        with self._close_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            with self._read_lock:  # drain_output() must never read a reused fd number
                for attr in ("_out_r", "_pidfd"):
                    fd = getattr(self, attr)
                    if fd is not None:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                        setattr(self, attr, None)
            if self._proc is not None and self.exited.is_set():
                try:
                    self._proc.close()
                except (ValueError, AttributeError):  # AttributeError: already closed
                    pass

    # -- description ----------------------------------------------------------
    @property
    def exit_signal(self) -> Optional[str]:
        code = self.exitcode
        if code is not None and code < 0:
            return signal_name(-code)
        return None

    def describe_exit(self) -> str:
        if self.exitcode is None:
            return "is still running" if not self.exited.is_set() else "exited (code unknown)"
        if self.exitcode < 0:
            return "was killed by %s" % self.exit_signal
        return "exited with code %d" % self.exitcode

    def __repr__(self) -> str:
        state = "running" if not self.exited.is_set() else self.describe_exit()
        return "<ChildProcess %s pid=%s %s>" % (self.name, self.pid, state)
