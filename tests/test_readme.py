"""The README's code samples that start a host, saved and run as scripts.

Under the forkserver (default) and spawn start methods every child re-imports
the script's ``__main__`` module, so a sample without the
``if __name__ == "__main__":`` guard fails as soon as someone saves it to a file.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MYAPP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"
"""


def readme_sample(marker: str) -> str:
    """The one ```python block of the README that contains ``marker``."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        blocks = re.findall(r"^```python\n(.*?)^```", handle.read(), re.S | re.M)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, "%d README samples contain %r" % (len(found), marker)
    return found[0]


@pytest.mark.parametrize("marker", [
    'with FlaskHost("myapp:app", port=0)',   # Usage
    "@hosted(port=0",                        # decorated factories and notebooks
    "DispatcherMiddleware(main.wsgi_app",    # a main app in front
])
def test_readme_sample_runs_as_a_script(tmp_path, marker):
    # A fixed port in a test could be taken: port 0 instead, nothing else changed.
    source = readme_sample(marker).replace("port=8080", "port=0")
    (tmp_path / "sample.py").write_text(source + '\nprint("sample finished")\n')
    (tmp_path / "myapp.py").write_text(MYAPP)
    shutil.copy(os.path.join(ROOT, "examples", "model_api.py"), str(tmp_path))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYHOST_")}
    done = subprocess.run([sys.executable, "sample.py"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("sample finished")
    assert "SpawnError" not in done.stderr
