"""An example app whose import fails on a missing package, on purpose.

Hosting it raises ``pyhost.DependencyError`` at once, naming the missing
module and the ``pip install`` line, instead of a health-check timeout:
``pyhost check examples/broken_app.py:app``.
"""
import not_installed_model_lib  # noqa: F401  (deliberately missing: the demo's typed error)
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "never served"
