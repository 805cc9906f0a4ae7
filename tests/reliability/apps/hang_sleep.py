"""Hangs at import in a call that releases the GIL (a model that never finishes loading)."""
import time

from flask import Flask

time.sleep(600)  # HANG-LINE

app = Flask(__name__)
