"""Dies during import until it has been started FLAKY_FAILURES times (a transient failure)."""
import os
import sys

from flask import Flask

counter = os.environ["FLAKY_COUNTER"]
with open(counter, "a+") as handle:
    handle.seek(0)
    starts = len(handle.read())
    handle.write("x")
if starts < int(os.environ.get("FLAKY_FAILURES", "1")):
    sys.stderr.write("flaky: start %d fails\n" % (starts + 1))
    sys.stderr.flush()
    os._exit(1)

app = Flask(__name__)


@app.route("/")
def index():
    return "started after %d failures" % starts
