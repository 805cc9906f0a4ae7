"""An app that uses multiprocessing itself, as inference code often does."""
import multiprocessing

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    with multiprocessing.get_context("fork").Pool(2) as pool:
        return str(sum(pool.map(abs, [-1, -2, -3])))
