"""Hangs at import in a pure-Python busy loop."""
from flask import Flask

n = 0
while n >= 0:
    n += 1  # HANG-LINE

app = Flask(__name__)
