"""gunicorn's arbiter: ``workers=N`` processes, supervised by gunicorn (child side, POSIX).

The child that pyhost started becomes gunicorn's arbiter: it runs in this
process's main thread, serves the socket the child bound (``fd://N``) and the
app the child already imported (``load()`` returns it), and forks the workers.
gunicorn replaces a worker that dies while the others keep serving; the
arbiter reports its workers (``Workers``) and each exit (``WorkerExited``) to
the parent, which supervises the arbiter. ASGI apps run on uvicorn's worker class.
"""
import faulthandler
import os
import signal
import sys
import warnings

from ... import protocol

NAME = "gunicorn"
KINDS = ("wsgi", "asgi")
WORKERS = True
REQUIRES = ("gunicorn",)
EXTRA = "gunicorn"


def serve(app, kind, sock, run):
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    state = {"arbiter": None, "stopping": False}
    statuses = {}

    def report_workers(arbiter):
        run.send(protocol.Workers(tuple(sorted(arbiter.WORKERS))))

    def when_ready(arbiter):
        state["arbiter"] = arbiter
        run.serving(stop, abandon)  # gunicorn's SIGTERM handler is installed by now
        run.ready()

    def child_exit(arbiter, worker):
        if state["stopping"]:
            return
        status = statuses.pop(worker.pid, None)
        code = os.waitstatus_to_exitcode(status) if status is not None else -1
        run.send(protocol.WorkerExited(worker.pid, code))
        report_workers(arbiter)

    class PyhostArbiter(Arbiter):
        def init_signals(self):
            super().init_signals()
            # The parent orchestrates Ctrl-C, and asks for stacks on STACKS_SIGNAL
            # (gunicorn would reopen its log files on SIGUSR1).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signum = getattr(signal, protocol.STACKS_SIGNAL, None)
            if signum is not None:
                # Registered once already: faulthandler re-installs its handler only
                # after unregister() (else it keeps gunicorn's).
                faulthandler.unregister(signum)
                faulthandler.register(signum, file=sys.stderr, all_threads=True)

        def spawn_worker(self):
            pid = super().spawn_worker()  # returns in the arbiter only; the worker serves
            report_workers(self)
            return pid

        def reap_workers(self):
            # gunicorn hands child_exit() the worker, not how it ended: keep the
            # wait status of each pid it reaps (only this, the main thread, waits).
            real_waitpid = os.waitpid

            def waitpid(pid, options):
                found = real_waitpid(pid, options)
                if found[0]:
                    statuses[found[0]] = found[1]
                return found

            os.waitpid = waitpid
            try:
                return super().reap_workers()
            finally:
                os.waitpid = real_waitpid

    options = {
        "bind": ["fd://%d" % sock.detach()],  # gunicorn takes the fd over (and closes it)
        "workers": max(1, int(run.spec.get("workers", 1))),
        "graceful_timeout": max(1, int(run.shutdown_timeout * 0.5)),  # whole seconds
        "when_ready": when_ready,
        "child_exit": child_exit,
        "proc_name": "pyhost-%s" % run.spec.get("name", "app"),
        # gunicorn >= 25.1 opens a control socket at one default path per user:
        # two hosts would share it.
        "control_socket_disable": True,
    }
    if kind == "asgi":
        options["worker_class"] = "uvicorn.workers.UvicornWorker"

    class Application(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return app

        def run(self):
            PyhostArbiter(self).run()

    def stop():
        state["stopping"] = True
        os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's graceful stop

    def abandon():
        arbiter = state["arbiter"]
        for pid in list(arbiter.WORKERS) if arbiter is not None else ():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    with warnings.catch_warnings():
        # uvicorn.workers is deprecated in favour of the uvicorn-worker package;
        # it is what an installed uvicorn provides.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            Application().run()
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
