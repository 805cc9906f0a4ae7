"""Loads only while the file named by NEEDS_FILE exists (a dependency that comes and goes)."""
import os
import sys

from flask import Flask

if not os.path.exists(os.environ["NEEDS_FILE"]):
    sys.exit(4)

app = Flask(__name__)


@app.route("/")
def index():
    return str(os.getpid())
