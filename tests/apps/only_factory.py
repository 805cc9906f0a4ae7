"""A module with only a ``create_app`` factory (found like ``flask --app``)."""
from flask import Flask


def create_app():
    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: "from create_app")
    return app
