"""An app whose import fails on a module that is not installed (a DEPENDENCY_ERROR)."""
import pyhost_bench_module_that_is_not_installed  # noqa: F401
from flask import Flask

app = Flask(__name__)
