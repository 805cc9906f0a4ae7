"""Answers the child's environment: GET /env/NAME returns os.environ[NAME]."""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "env"


@app.route("/env/<name>")
def env(name):
    if name not in os.environ:
        return "<unset>", 404
    return os.environ[name]
