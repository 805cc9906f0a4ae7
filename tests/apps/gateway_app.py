"""The app behind the route guard in tests/test_gateway.py: status codes,
headers, streaming and request bodies, echoed back so the test can compare."""
import hashlib
import os

from flask import Flask, Response, jsonify, redirect, request

app = Flask(__name__)


@app.route("/")
def index():
    return "gateway test app"


@app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@app.route("/echo/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def echo(rest=None):
    body = request.get_data()
    return jsonify(
        method=request.method,
        path=request.path,
        raw_path=request.environ.get("RAW_URI"),
        rest=rest,
        args=request.args.to_dict(flat=False),
        length=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        content_type=request.content_type,
        headers={k: v for k, v in request.headers.items()},
        pid=os.getpid(),
    )


@app.route("/status/<int:code>")
def status(code):
    response = Response("status %d" % code, status=code)
    response.headers["X-Test-Header"] = "from-child"
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


@app.route("/redirect")
def moved():
    return redirect("/echo?from=redirect", code=302)


@app.route("/stream")
def stream():
    pieces = int(request.args.get("pieces", "50"))
    size = int(request.args.get("size", "1000"))

    def generate():
        for number in range(pieces):
            yield (b"%06d:" % number) + bytes([65 + number % 26]) * size + b"\n"

    return Response(generate(), mimetype="application/octet-stream")
