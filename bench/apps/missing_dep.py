"""An app whose import fails on a module that is not installed (a DEPENDENCY_ERROR)."""
from flask import Flask

import pyhost_bench_module_that_is_not_installed  # noqa: F401

app = Flask(__name__)
