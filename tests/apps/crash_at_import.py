"""An app that dies hard while importing, without a Python exception (seed scenario 3).

It writes its reason to stderr (as a C extension or a failing native library
would) and leaves with os._exit(3), so the child never reports anything: the
parent must notice the exit and keep the stderr tail.
"""
import os
import sys

sys.stderr.write("crash_at_import: cannot open the model file weights.bin\n")
sys.stderr.flush()
os._exit(3)
