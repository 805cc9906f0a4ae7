"""A script-style app that calls app.run() at import time (no __main__ guard)."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "served by pyhost"


app.run(host="127.0.0.1", port=0)
