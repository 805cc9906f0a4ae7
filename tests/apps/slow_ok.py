"""A Flask app with a request that takes a second: stop() must let it finish."""
import time

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "ok"


@app.route("/slow")
def slow():
    time.sleep(1.0)
    return "done"
