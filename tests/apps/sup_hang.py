"""Answers until /hang is called; from then on every request blocks (a hung app)."""
import os
import sys
import threading

from flask import Flask

app = Flask(__name__)
hung = threading.Event()


@app.route("/")
def index():
    if hung.is_set():
        print("request blocked", file=sys.stderr, flush=True)
        threading.Event().wait()  # blocks forever: the app is hung
    return str(os.getpid())


@app.route("/hang")
def hang():
    hung.set()
    return "hanging from now on"
