"""Takes far longer to import than any test's startup_timeout (a model that loads for ages)."""
import sys
import time

from flask import Flask

sys.stderr.write("slow_import: loading the model...\n")
sys.stderr.flush()
time.sleep(60)

app = Flask(__name__)
