"""An app whose own module-level code raises (APP_LOAD_ERROR, not a dependency error)."""
from flask import Flask

app = Flask(__name__)

raise RuntimeError("raises_at_import: configuration file settings.toml is missing")
