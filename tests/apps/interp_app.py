"""Served by a second interpreter in tests/test_interpreter.py: reports which
Python runs it and which packages that Python can import."""
import importlib
import os
import sys

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def info():
    return jsonify(executable=sys.executable, prefix=sys.prefix,
                   version=list(sys.version_info[:3]), pid=os.getpid())


@app.route("/importable/<name>")
def importable(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        return jsonify(name=name, importable=False, error=str(exc))
    return jsonify(name=name, importable=True, value=getattr(module, "VALUE", None),
                   file=getattr(module, "__file__", None))
