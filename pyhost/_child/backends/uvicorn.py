"""uvicorn: serves ASGI apps (FastAPI, Starlette) in one process (child side).

``workers > 1`` for an ASGI app runs uvicorn's worker class under gunicorn's
arbiter (:mod:`.gunicorn`), not here.
"""
import contextlib
import signal

NAME = "uvicorn"
KINDS = ("asgi",)
WORKERS = False
REQUIRES = ("uvicorn",)
EXTRA = "asgi"


def serve(app, kind, sock, run):
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # SIGTERM stops gracefully; SIGINT stays ignored: the parent
            # orchestrates a terminal's Ctrl-C.
            previous = signal.signal(signal.SIGTERM, self.handle_exit)
            try:
                yield
            finally:
                signal.signal(signal.SIGTERM, previous)

        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)  # the app's lifespan startup ran
            if not self.should_exit:
                run.ready()

    config = uvicorn.Config(app, lifespan="auto", log_level="info", use_colors=False,
                            timeout_graceful_shutdown=max(0.5, run.shutdown_timeout * 0.5))
    server = Server(config)

    def stop():
        server.should_exit = True  # the main loop sees it within 0.1 s

    run.serving(stop)
    server.run(sockets=[sock])
