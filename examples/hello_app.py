"""The example app the demo hosts: a tiny Flask JSON API.

Host it yourself with ``pyhost run examples/hello_app.py:app --port 0`` or
``FlaskHost("examples/hello_app.py:app", port=0)``.
"""
import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(message="hello from a pyhost child", pid=os.getpid())


@app.route("/health")
def health():
    return jsonify(status="ok")


def create_app():
    """Factory form, for targets like ``examples/hello_app.py:create_app()``."""
    return app
