"""Ignores SIGTERM, and /spin holds the GIL in C code: stop() must end with SIGKILL."""
import re
import signal

from flask import Flask

signal.signal(signal.SIGTERM, signal.SIG_IGN)
app = Flask(__name__)


@app.route("/")
def index():
    return "ok"


@app.route("/spin")
def spin():
    re.match(r"(a+)+$", "a" * 64 + "!")  # HANG-LINE
    return "never"
