"""Answers until /hang is called; from then on every request blocks (found by liveness probes)."""
import threading

from flask import Flask

app = Flask(__name__)
hung = threading.Event()


@app.route("/")
def index():
    if hung.is_set():
        threading.Event().wait()  # HANG-LINE
    return "ok"


@app.route("/hang")
def hang():
    hung.set()
    return "hanging from now on"
