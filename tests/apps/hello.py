from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"


@app.route("/pid")
def pid():
    import os

    return str(os.getpid())


def create_app(greeting="hello", status=200):
    factory_app = Flask(__name__)

    @factory_app.route("/")
    def greet():
        return greeting, status

    return factory_app
