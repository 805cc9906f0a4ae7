"""Hangs at import in C code holding the GIL: a regex backtracking catastrophically."""
import re

from flask import Flask

re.match(r"(a+)+$", "a" * 64 + "!")  # HANG-LINE

app = Flask(__name__)
