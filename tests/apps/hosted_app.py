"""A module-level @hosted factory: the child imports it by name ('apps.hosted_app:create_app()')."""
import os

from flask import Flask

from pyhost import hosted


@hosted(port=0, health_check_interval=0.05, shutdown_timeout=2)
def create_app(greeting="from a module"):
    """Doc of the factory."""
    app = Flask(__name__)

    @app.route("/")
    def index():
        return greeting

    @app.route("/pid")
    def pid():
        return str(os.getpid())

    return app
