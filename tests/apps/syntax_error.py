"""A syntax error every Python 3.9+ reports on line 7: a missing colon (APP_LOAD_ERROR)."""
from flask import Flask

app = Flask(__name__)


def broken()
    return "never"
