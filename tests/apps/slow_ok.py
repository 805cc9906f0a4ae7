"""A Flask app with a request that takes a second: stop() must let it finish."""
import time

from flask import Flask, request

app = Flask(__name__)


@app.route("/")
def index():
    return "ok"


@app.route("/slow")
def slow():
    arrived = request.args.get("arrived")
    if arrived:  # tells a test the request is in the app now
        open(arrived, "w").close()
    time.sleep(1.0)
    return "done"
