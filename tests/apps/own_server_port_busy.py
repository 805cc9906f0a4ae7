"""Runs its own server at import, which fails on a busy port: it prints and exits."""
import sys

print("OSError: [Errno 98] Address already in use", file=sys.stderr)
sys.exit(1)
