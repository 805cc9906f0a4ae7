"""Hangs at import in a pure-Python busy loop."""
from flask import Flask

n = 0
while n >= 0: n += 1  # noqa: E701  HANG-LINE (one line: the dump names it, whichever op runs)

app = Flask(__name__)
