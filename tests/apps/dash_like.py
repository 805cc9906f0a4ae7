"""An object shaped like a Dash app: the WSGI app lives in ``.server``."""
from flask import Flask


class DashLike:
    """Dash keeps its Flask app in ``.server``; the object itself is not WSGI."""

    def __init__(self, name):
        self.server = Flask(name)
        self.server.add_url_rule("/", "index", lambda: "dash-like")


app = DashLike(__name__)
