"""An app whose import needs a package that is not installed (seed scenario 1)."""
import pyhost_missing_dependency_for_tests  # noqa: F401  (deliberately not installed)
from flask import Flask

app = Flask(__name__)
