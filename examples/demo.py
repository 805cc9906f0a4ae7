"""The README's first command: host the example app, crash it, watch it restart,
and see a typed error for a broken app.

    .venv/bin/python examples/demo.py      (the same as: pyhost demo)
"""
import os
import sys

from pyhost.demo import run_demo

if __name__ == "__main__":
    sys.exit(run_demo(examples_dir=os.path.dirname(os.path.abspath(__file__))))
