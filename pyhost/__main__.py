"""``python -m pyhost``: the same as the ``pyhost`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
