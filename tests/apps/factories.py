"""App factories that go wrong in the factory itself."""
from flask import Flask


def returns_none():
    """Forgot the ``return app``."""
    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: "unreachable")


def returns_string():
    return "not an app"


def raises(reason="no reason given"):
    raise RuntimeError("factories.raises: %s" % reason)
