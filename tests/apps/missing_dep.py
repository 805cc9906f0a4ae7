"""An app whose import needs a package that is not installed (seed scenario 1)."""
from flask import Flask

import pyhost_missing_dependency_for_tests  # noqa: F401  (deliberately not installed)

app = Flask(__name__)
