"""Two Flask apps and no ``app`` name: "apps.several_apps" alone is ambiguous."""
from flask import Flask

first = Flask("first")
first.add_url_rule("/", "index", lambda: "first")

second = Flask("second")
second.add_url_rule("/", "index", lambda: "second")
