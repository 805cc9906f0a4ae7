from flask import Flask


def create_app(greeting="re-exported"):
    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: greeting)
    return app
