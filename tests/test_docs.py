"""The documentation's Python samples, saved to files and run as a user would.

Every ```python block of README.md and docs/**/*.md runs, unless the line just
before its fence is ``<!-- test: skip -->`` (a fragment, a file to save such as
``myapp.py``, or a path that exists only on the author's machine). A block that
defines ``test_`` functions runs under pytest (the plugin's fixtures); any other
runs as a script, so a sample that starts a host without the
``if __name__ == "__main__":`` guard fails as it would for a reader.

Each runs in a fresh directory holding ``myapp.py`` (the quickstart's app) and
a copy of ``examples/``, with fixed ports rewritten to port 0, in a process
group of its own that must be empty when it ends: no sample leaves a server
behind.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import List, NamedTuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = "<!-- test: skip -->"

MYAPP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"


@app.route("/health")
def health():
    return "ok"
"""


class Sample(NamedTuple):
    page: str  # relative to the project
    line: int
    source: str

    def __str__(self) -> str:
        return "%s:%d" % (self.page, self.line)


def doc_pages() -> List[str]:
    pages = [os.path.join(ROOT, "README.md")]
    pages += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return pages


def samples_of(path: str) -> List[Sample]:
    """The runnable ```python blocks of one page."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            previous = next((lines[j].strip() for j in range(start - 1, -1, -1)
                             if lines[j].strip()), "")
            if previous != SKIP:
                found.append(Sample(os.path.relpath(path, ROOT), start + 1,
                                    "\n".join(body) + "\n"))
        i += 1
    return found


SAMPLES = [sample for page in doc_pages() for sample in samples_of(page)]


def test_the_docs_have_samples_to_run():
    pages = {sample.page for sample in SAMPLES}
    assert "README.md" in pages and "docs/quickstart.md" in pages, pages
    assert len(SAMPLES) >= 8, [str(s) for s in SAMPLES]


def on_port_zero(source: str) -> str:
    """A fixed port in a test could be taken: port 0 instead (an invalid one stays)."""
    return re.sub(r"\bport=(\d+)\b",
                  lambda m: "port=0" if 0 < int(m.group(1)) <= 65535 else m.group(0), source)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a zombie not yet reaped still counts as a member
        return True
    return True


@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_sample_runs(tmp_path, sample):
    (tmp_path / "myapp.py").write_text(MYAPP)
    shutil.copytree(os.path.join(ROOT, "examples"), str(tmp_path / "examples"),
                    ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    shutil.copy(os.path.join(ROOT, "examples", "model_api.py"), str(tmp_path))
    source = on_port_zero(sample.source)
    if re.search(r"^def test_", source, re.M):
        (tmp_path / "test_sample.py").write_text(source)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "test_sample.py"]
    else:
        (tmp_path / "sample.py").write_text(source + '\nprint("sample finished")\n')
        command = [sys.executable, "sample.py"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYHOST_")}
    process = subprocess.Popen(command, cwd=str(tmp_path), env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, "%s failed:\n%s\n%s" % (sample, out[-2000:],
                                                                 err[-3000:])
        if command[-1] == "sample.py":
            assert out.rstrip().endswith("sample finished"), out[-2000:]
        assert "SpawnError" not in err, err[-3000:]
        # Children notice their parent is gone and exit on their own; allow them a moment.
        deadline = time.monotonic() + 15
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(process.pid), "%s left a process behind" % sample
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.communicate()


def load_hooks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", os.path.join(ROOT, "docs",
                                                                            "hooks.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_references_name_everything_in_the_code():
    import dataclasses

    from pyhost import ErrorType, HostConfig
    from pyhost.cli import EXIT_CODES, build_parser
    from pyhost.lifecycle import TRANSITIONS

    hooks = load_hooks()
    page = hooks.on_page_markdown("\n".join(hooks.MARKERS) + "\n")
    assert "<!-- pyhost:" not in page  # every marker was replaced
    for field in dataclasses.fields(HostConfig):
        assert field.name in page, field.name
    for error_type in ErrorType:
        assert "`%s`" % error_type.value in page, error_type
    for state in TRANSITIONS:
        assert "`%s`" % state.value in page, state
    options = {flag for action in build_parser()._actions if action.choices
               for sub in getattr(action.choices, "values", lambda: [])()
               for option in sub._actions for flag in option.option_strings
               if flag.startswith("--") and flag != "--help"}
    assert options and all(option in page for option in options), options
    assert all(name in page for name in EXIT_CODES)
    # The port-in-use row's first steps are the real troubleshooting steps.
    assert "Stop that process: kill 4242" in page
