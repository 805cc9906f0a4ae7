"""An app with a syntax error on line 8 (APP_LOAD_ERROR with file:line)."""
from flask import Flask

app = Flask(__name__)


def broken(
    return "never"
