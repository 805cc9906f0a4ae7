"""An app with a request that never finishes in time: stop() must escalate past it."""
import sys
import threading

from flask import Flask

app = Flask(__name__)
release = threading.Event()  # never set: /hang blocks until the process is ended


@app.route("/")
def index():
    return "slow"


@app.route("/hang")
def hang():
    sys.stderr.write("slow_request: /hang started\n")
    release.wait(120)
    return "released"
