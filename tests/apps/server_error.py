"""Binds and answers, but every route fails with HTTP 500 (seed scenario: health check timeout)."""
from flask import Flask

app = Flask(__name__)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def fail(path):
    return "database unavailable", 500
