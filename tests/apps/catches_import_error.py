"""Catches its ImportError and exits without a report: its output names the module."""
import sys

try:
    import flask_nonexistent_extension  # noqa: F401
except ImportError as exc:
    print("startup failed: %s" % exc, file=sys.stderr)
    sys.exit(1)
