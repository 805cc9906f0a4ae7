"""Serves, then dies 0.3 s after every start: a crash loop."""
import os
import threading

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "about to crash"


threading.Timer(float(os.environ.get("CRASH_AFTER", "0.3")), os._exit, args=(7,)).start()
