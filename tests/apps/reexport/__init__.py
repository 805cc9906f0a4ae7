"""A package whose factory is defined in a submodule and re-exported here."""
from .factory import create_app

__all__ = ["create_app"]
