"""Answers for half a second after import, then every request blocks (hangs after each start)."""
import os
import threading

from flask import Flask

app = Flask(__name__)
hung = threading.Event()
threading.Timer(0.5, hung.set).start()


@app.route("/")
def index():
    if hung.is_set():
        threading.Event().wait()  # blocks until the process is killed
    return str(os.getpid())
