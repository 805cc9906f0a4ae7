"""Floods: output without newline, one huge line, huge and never-ending responses."""
import sys

from flask import Flask, Response, request

app = Flask(__name__)
CHUNK = b"x" * (1024 * 1024)


@app.route("/")
def index():
    return "ok"


@app.route("/no-newline")
def no_newline():
    megabytes = int(request.args.get("mb", "200"))
    out = sys.stderr.buffer
    for _ in range(megabytes):
        out.write(CHUNK)
    out.flush()
    return "wrote %d MB" % megabytes


@app.route("/one-line")
def one_line():
    megabytes = int(request.args.get("mb", "10"))
    out = sys.stderr.buffer
    out.write(CHUNK * megabytes + b"\n")
    out.flush()
    return "wrote a %d MB line" % megabytes


@app.route("/big")
def big():
    megabytes = int(request.args.get("mb", "50"))
    return Response((CHUNK for _ in range(megabytes)), mimetype="application/octet-stream",
                    headers={"Content-Length": str(megabytes * len(CHUNK))})


@app.route("/forever")
def forever():
    def chunks():
        while True:
            yield b"y" * 65536

    return Response(chunks(), mimetype="application/octet-stream")
