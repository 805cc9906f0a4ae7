"""The child's control thread: waits on the parent, stops the server (child side)."""
import os
import threading

from .. import protocol

__all__ = ["Control"]


class Control(threading.Thread):
    """Waits on the control pipe and the parent's sentinel; stops the server.

    A ``Stop`` message runs the backend's graceful stop (in-flight requests
    finish); EOF on the pipe or the parent's sentinel firing means the parent is
    gone, and the child must not outlive it (nor its server's workers: the
    backend's ``abandon`` ends them first). ``send`` is the one way to write to
    the parent, from any thread of this process.
    """

    def __init__(self, conn, parent_sentinel):
        super().__init__(name="pyhost-child-control", daemon=True)
        self.conn = conn
        self.parent_sentinel = parent_sentinel
        self.lock = threading.Lock()
        self.stopping = False
        # Not `_stop`: threading.Thread has a method of that name, which
        # threading calls in a forked child (an app's multiprocessing Pool).
        self._stop_server = None
        self._abandon_server = None

    def send(self, message):
        with self.lock:
            try:
                self.conn.send(protocol.encode(message))
            except (OSError, EOFError, ValueError):
                pass  # the parent is gone; the watcher ends us

    def serving(self, stop, abandon=None):
        """The server runs: ``stop()`` ends it gracefully, ``abandon()`` at once."""
        with self.lock:
            self._stop_server, self._abandon_server = stop, abandon
            stop_now = self.stopping
        if stop_now:
            self._run_stop()

    def run(self):
        from multiprocessing.connection import wait

        waitables = [self.conn]
        if self.parent_sentinel is not None:
            waitables.append(self.parent_sentinel)
        while True:
            ready = wait(waitables)
            if self.parent_sentinel is not None and self.parent_sentinel in ready:
                self._exit()  # the parent died: no orphans
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self._exit()
            try:
                stop = isinstance(protocol.decode(message), protocol.Stop)
            except protocol.ProtocolError:
                stop = False
            if stop:
                with self.lock:
                    self.stopping = True
                    serving = self._stop_server is not None
                if not serving:
                    os._exit(0)  # still loading: nothing to finish gracefully
                self._run_stop()
                # Keep watching: the parent may die while the server finishes.

    def _run_stop(self):
        threading.Thread(target=self._stop_server, name="pyhost-child-stop", daemon=True).start()

    def _exit(self):
        abandon = self._abandon_server
        if abandon is not None:
            try:
                abandon()
            except Exception:  # noqa: BLE001 - exiting regardless
                pass
        os._exit(0)
