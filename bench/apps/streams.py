"""The app bench/guard.py measures, directly and through the route guard:
a small answer for req/s, server-sent events, and a stream that says
(in a file) when its generator was closed."""
import time

from flask import Flask, Response, request

app = Flask(__name__)


@app.route("/hello")
def hello():
    return "hello"


@app.route("/sse")
def sse():
    """``count`` events, the first at once, then one every ``interval`` seconds."""
    count = int(request.args.get("count", "3"))
    interval = float(request.args.get("interval", "0.2"))

    def events():
        for number in range(count):
            if number:
                time.sleep(interval)
            yield b"data: %d\n\n" % number

    return Response(events(), mimetype="text/event-stream")


@app.route("/forever")
def forever():
    """Events every ``interval`` until the reader goes; then writes the time to ``flag``."""
    flag = request.args["flag"]
    interval = float(request.args.get("interval", "0.05"))

    def events():
        try:
            while True:
                yield b"data: tick\n\n"
                time.sleep(interval)
        except GeneratorExit:
            with open(flag, "w") as handle:
                handle.write(repr(time.monotonic()))
            raise

    return Response(events(), mimetype="text/event-stream")
