"""The app behind the route guard in tests/test_guard.py: streams whose
progress the test controls with files, a request log, hop-by-hop headers."""
import os
import threading
import time

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
_seen = []
_lock = threading.Lock()


@app.before_request
def record():
    with _lock:
        _seen.append(request.path)


@app.route("/")
def index():
    return "guard test app"


@app.route("/seen")
def seen():
    with _lock:
        return jsonify(paths=list(_seen))


def _wait_for(path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


@app.route("/sse")
def sse():
    """One event, then the rest only once the file ``gate`` exists; ``flag`` gets
    "closed" when the relay closes the stream early, "done" when it ends."""
    gate, flag = request.args["gate"], request.args["flag"]
    interval = float(request.args.get("interval", "0.05"))
    count = int(request.args.get("count", "3"))

    def events():
        try:
            yield b"data: first\n\n"
            _wait_for(gate)
            for number in range(count):
                yield b"data: %d\n\n" % number
                time.sleep(interval)
            with open(flag, "w") as handle:
                handle.write("done")
        except GeneratorExit:
            with open(flag, "w") as handle:
                handle.write("closed")
            raise

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


@app.route("/forever")
def forever():
    """Events every ``interval`` until the client goes; ``flag`` then says "closed"."""
    flag = request.args["flag"]
    interval = float(request.args.get("interval", "0.05"))

    def events():
        try:
            number = 0
            while number < 100000:
                yield b"data: %d\n\n" % number
                number += 1
                time.sleep(interval)
        except GeneratorExit:
            with open(flag, "w") as handle:
                handle.write("closed")
            raise

    return Response(events(), mimetype="text/event-stream")


@app.route("/headers", methods=["GET", "POST"])
def headers():
    response = jsonify(headers={k: v for k, v in request.headers.items()},
                       length=len(request.get_data()))
    response.headers["Connection"] = "X-Private-Hop"
    response.headers["X-Private-Hop"] = "internal"
    response.headers["Keep-Alive"] = "timeout=5"
    response.headers["Proxy-Authenticate"] = "Basic"
    response.headers["Trailer"] = "X-Checksum"
    response.headers["Upgrade"] = "h2c"
    response.headers["X-End-To-End"] = "kept"
    return response


@app.route("/page")
@app.route("/page/<name>")
def page(name="index"):
    return "page %s from pid %d" % (name, os.getpid())


@app.route("/private")
def private():
    response = Response("for one user")
    response.set_cookie("session", "abc")
    return response


@app.route("/big")
def big():
    return Response(b"x" * int(request.args.get("size", "1000")),
                    mimetype="application/octet-stream")


@app.route("/chunks")
def chunks():
    return Response((b"piece %d\n" % n for n in range(5)), mimetype="text/plain")


@app.route("/upload", methods=["POST", "PUT"])
def upload():
    return jsonify(length=len(request.get_data()))


@app.route("/sleep")
def sleep():
    time.sleep(float(request.args.get("seconds", "1")))
    return "slept"
