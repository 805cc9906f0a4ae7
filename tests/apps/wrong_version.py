"""Imports a name its dependency does not have (an installed package of the wrong version)."""
from flask import FeatureFromTheFuture  # noqa: F401

app = None
