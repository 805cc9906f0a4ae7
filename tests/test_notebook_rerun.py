"""Re-running a notebook cell that starts a host on port 0 replaces the earlier host."""
from __future__ import annotations

import json

import nbformat
from conftest import alive
from test_notebook import execute, stream
from test_notebook import kernel_specs as kernel_specs  # the fixture

SETUP = """
import json
from flask import Flask
import pyhost
from pyhost import FlaskHost

def create_app():
    app = Flask("cell")
    app.add_url_rule("/pid", "pid", lambda: str(__import__("os").getpid()))
    return app
"""

START = """
host = FlaskHost(create_app, port=0, health_check_interval=0.05).start()
print(json.dumps({"pid": host.pid, "url": host.url}))
"""

REPORT = """
print(json.dumps({"running": len(pyhost.running_hosts()),
                  "urls": [h.url for h in pyhost.running_hosts()]}))
pyhost.stop_all()
"""


def test_rerunning_a_port_zero_cell_three_times_leaves_one_server_on_one_url(
        kernel_specs, tmp_path):  # noqa: F811
    sources = [SETUP, START, START, START, REPORT]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    execute(nb, kernel_specs, str(tmp_path))
    runs = [json.loads(stream(nb.cells[i])) for i in (1, 2, 3)]
    assert len({run["url"] for run in runs}) == 1  # the URL stays
    assert len({run["pid"] for run in runs}) == 3  # each re-run a new app process
    report = json.loads(stream(nb.cells[4]))
    assert report == {"running": 1, "urls": [runs[0]["url"]]}
    assert "Replacing the running" in stream(nb.cells[2], "stderr")
    assert not any(alive(run["pid"]) for run in runs)
