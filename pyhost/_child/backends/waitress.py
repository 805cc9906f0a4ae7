"""waitress: a pure-Python threaded WSGI server, on every platform (child side)."""
import time

NAME = "waitress"
KINDS = ("wsgi",)
WORKERS = False
REQUIRES = ("waitress",)
EXTRA = "waitress"


def serve(app, kind, sock, run):
    from waitress import wasyncore
    from waitress.server import create_server

    server = create_server(app, sockets=[sock])

    def in_loop(thunk):
        server.trigger.pull_trigger(thunk)  # wasyncore is not thread-safe: run it there

    def stop():
        deadline = time.monotonic() + run.shutdown_timeout * 0.5
        in_loop(lambda: wasyncore.dispatcher.close(server))  # accept nothing new
        # Requests being served finish; queued ones that never started are dropped.
        server.task_dispatcher.shutdown(cancel_pending=False,
                                        timeout=max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(
                getattr(channel, "total_outbufs_len", 0) or getattr(channel, "requests", None)
                for channel in list(server._map.values())):
            time.sleep(0.01)  # the loop thread is still writing responses out
        in_loop(lambda: wasyncore.close_all(server._map))  # an empty map ends the loop

    run.serving(stop)
    run.ready()
    server.run()
