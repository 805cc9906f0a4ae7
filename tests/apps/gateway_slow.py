"""Loads only once the file named by PYHOST_TEST_GATE exists: holds a host in
STARTING for as long as a test needs (bounded, so a broken test cannot hang)."""
import os
import time

from flask import Flask

_deadline = time.monotonic() + 60
while not os.path.exists(os.environ["PYHOST_TEST_GATE"]):
    if time.monotonic() > _deadline:
        raise RuntimeError("gate file never appeared: %s" % os.environ["PYHOST_TEST_GATE"])
    time.sleep(0.02)

app = Flask(__name__)


@app.route("/")
def index():
    return "opened"
