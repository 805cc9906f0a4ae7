"""Imports a sibling module of its own package that does not exist (a bug in the app, not a
missing dependency)."""
from apps import no_such_sibling_module  # noqa: F401

app = None
