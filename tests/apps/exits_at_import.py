"""Calls sys.exit(4) while importing, as a script that checks its environment might."""
import sys

sys.stderr.write("exits_at_import: DATABASE_URL is not set\n")
sys.exit(4)
