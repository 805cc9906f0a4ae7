"""Notebooks: display, shipping diagnostics, and real Jupyter kernels (nbclient + ipykernel).

The kernel tests run the venv's own interpreter through a kernelspec written to
a temporary directory, so they work from a fresh ``pip install -e '.[test]'``
whatever other "python3" kernels the machine has.
"""
from __future__ import annotations

import configparser
import functools
import json
import os
import re
import signal
import sys
import threading
import urllib.request
from typing import List

import nbformat
import pytest
from conftest import alive, free_port, wait_until
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from pyhost import FlaskHost, HostState, HostStatus
from pyhost.display import COLOURS, format_duration, status_html
from pyhost.errors import ErrorType, make_error
from pyhost.notebook import find_unpicklable, in_notebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "notebook.ipynb")






def status(state: HostState, **fields) -> HostStatus:
    values = dict(state=state, is_ready=state is HostState.READY, is_restarting=False,
                  restart_attempts=0, total_restarts=0, last_error=None, uptime=None,
                  last_health_check=None, pid=None, port=8080, url="http://127.0.0.1:8080",
                  target="apps.hello:app")
    values.update(fields)
    return HostStatus(**values)


# ------------------------------------------------------------ in-process
def test_not_a_notebook_under_pytest():
    assert in_notebook() is False


def test_find_unpicklable_names_the_variable():
    import cloudpickle

    dumps = cloudpickle.dumps
    lock = threading.Lock()

    def uses_closure():
        return lock

    def calls_helper():
        return uses_closure()

    def default(value=lock):
        return value

    def fine():
        return json.dumps({})

    assert find_unpicklable(uses_closure, dumps) == "closure variable 'lock' (a _thread.lock)"
    assert find_unpicklable(calls_helper, dumps) == (
        "closure variable 'uses_closure' → closure variable 'lock' (a _thread.lock)")
    assert find_unpicklable(default, dumps) == "default argument '0' (a _thread.lock)"
    assert find_unpicklable(functools.partial(fine, lock), dumps) == (
        "partial argument '0' (a _thread.lock)")
    assert find_unpicklable(fine, dumps) is None

    namespace = {"__name__": "__main__", "CONNECTION": threading.Lock()}
    exec("def create_app():\n    return CONNECTION\n", namespace)
    assert find_unpicklable(namespace["create_app"], dumps) == (
        "global 'CONNECTION' (a _thread.lock)")


def test_format_duration():
    assert format_duration(4.25) == "4.2 s"
    assert format_duration(125) == "2 min 5 s"
    assert format_duration(7384) == "2 h 3 min"
    assert format_duration(3 * 86400 + 7200) == "3 d 2 h"


@pytest.mark.parametrize("state", list(HostState))
def test_state_badge_has_its_colour_and_the_url_is_a_link_only_while_serving(state):
    page = status_html(status(state))
    assert "background:%s" % COLOURS[state] in page
    assert ">%s</span>" % state.value in page
    link = '<a href="http://127.0.0.1:8080" target="_blank">' in page
    assert link == (state not in (HostState.STOPPED, HostState.FAILED))
    assert "http://127.0.0.1:8080" in page


def test_failed_status_shows_the_error_its_steps_and_traceback_escaped():
    error = make_error(ErrorType.APP_LOAD_ERROR, "The app raised <script>alert(1)</script>",
                       troubleshooting=["Fix line 3 of <cell>", "Run it again"],
                       remote_traceback="Traceback ...\nRuntimeError: <b>boom</b>\n")
    page = status_html(status(HostState.FAILED, last_error=error, total_restarts=2,
                              restart_attempts=1))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>boom</b>" not in page and "RuntimeError: &lt;b&gt;boom&lt;/b&gt;" in page
    assert "<b>APP_LOAD_ERROR</b>" in page
    assert "<li>Fix line 3 of &lt;cell&gt;</li><li>Run it again</li>" in page
    assert "<details><summary>traceback in the app process</summary>" in page
    assert "2 total, 1 in the current window" in page
    assert "Last error<" in page


def test_ready_status_after_a_crash_calls_the_error_recovered():
    error = make_error(ErrorType.PROCESS_CRASH, "killed by SIGKILL",
                       stderr_tail=["line one", "line <two>"])
    page = status_html(status(HostState.READY, last_error=error, pid=4242, uptime=75.0))
    assert "Last error (recovered)" in page
    assert "<td style='text-align:left'>4242</td>" in page
    assert "1 min 15 s" in page
    assert "line one\nline &lt;two&gt;" in page  # the output tail, folded


def test_a_real_host_shows_its_output_folded_not_in_the_page_body():
    host = FlaskHost("apps.hello:app", port=0, health_check_interval=0.05)
    with host:
        # A request's log line travels through the output pipe (probes are not logged).
        urllib.request.urlopen(host.url + "/", timeout=5).close()
        assert wait_until(lambda: any("HTTP/1.1" in line for line in host.logs()), 10)
        page = host._repr_html_()
        assert 'href="%s"' % host.url in page and str(host.pid) in page
        assert re.search(r"<details><summary>last \d+ lines? of the app&#x27;s output</summary>"
                         r"<pre[^>]*>[^<]*GET / HTTP/1.1", page)
        assert "READY" in repr(host) or "ready" in repr(host)
    page = host._repr_html_()
    assert ">STOPPED</span>" in page and "(not serving)" in page


# ------------------------------------------------------------ real kernels
@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernelspec for this very interpreter, in a temporary directory."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / "pyhost-test-python"
    spec_dir.mkdir()
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--HistoryManager.hist_file=:memory:"],
        "display_name": "pyhost test python",
        "language": "python",
        # No profile or history in the user's home.
        "env": {"IPYTHONDIR": str(root / "ipython")},
    }))
    # The same interpreter, with only the core dependencies importable.
    launcher = root / "core_only_kernel.py"
    launcher.write_text(CORE_ONLY_LAUNCHER % (non_core_modules(),))
    core_dir = root / "pyhost-core-python"
    core_dir.mkdir()
    (core_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(launcher), "-f", "{connection_file}",
                 "--HistoryManager.hist_file=:memory:"],
        "display_name": "pyhost core-only python",
        "language": "python",
        "env": {"IPYTHONDIR": str(root / "ipython")},
    }))
    return KernelSpecManager(kernel_dirs=[str(root)])


#: Runs ipykernel with every module that only an extra (or the test tools) installs
#: made unimportable: what a notebook sees after a plain ``pip install pyhost-supervisor``.
CORE_ONLY_LAUNCHER = """
import runpy
import sys

BLOCKED = frozenset(%r)


class OnlyCoreDependencies:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError("No module named %%r (not installed by a plain "
                                      "pip install pyhost-supervisor)" %% name, name=name)
        return None


sys.meta_path.insert(0, OnlyCoreDependencies())
sys.argv[0] = "ipykernel_launcher"
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
"""

#: Import names of requirements that are not the core's.
_IMPORT_NAMES = {"flask-cors": "flask_cors", "prometheus-client": "prometheus_client",
                 "python-dotenv": "dotenv", "pytest-timeout": "pytest_timeout",
                 "pytest-flask": "pytest_flask", "mkdocstrings[python]": "mkdocstrings",
                 "mkdocs-material": "material"}
#: What the kernel itself runs on (from the test extra).
_KERNEL = {"ipykernel", "nbclient", "nbformat"}


def non_core_modules() -> List[str]:
    """Import names of every requirement of an extra that is not a core requirement."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))

    def names(text: str) -> set:
        found = set()
        for line in text.splitlines():
            requirement = re.split(r"[<>=;! ]", line.strip(), maxsplit=1)[0]
            if requirement:
                found.add(_IMPORT_NAMES.get(requirement, requirement.replace("-", "_")))
        return found

    core = names(parser["options"]["install_requires"])
    extras = set()
    for _, requirements in parser["options.extras_require"].items():
        extras |= names(requirements)
    return sorted(extras - core - _KERNEL)


def kernel_manager(specs: KernelSpecManager, name: str = "pyhost-test-python") -> KernelManager:
    return KernelManager(kernel_name=name, kernel_spec_manager=specs)


def execute(nb, specs: KernelSpecManager, cwd: str, kernel: str = "pyhost-test-python") -> None:
    """Run every cell; raises CellExecutionError on the first cell that raises."""
    km = kernel_manager(specs, kernel)
    try:
        # cleanup_kc: shut the kernel down and close the client's zmq context now, not
        # whenever it is garbage collected (its sockets would come and go under later tests).
        NotebookClient(nb, km=km, timeout=60, startup_timeout=60, shutdown_kernel="graceful",
                       resources={"metadata": {"path": cwd}}).execute(cleanup_kc=True)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=False)


def stream(cell, name: str = "stdout") -> str:
    return "".join(out.get("text", "") for out in cell.outputs
                   if out.output_type == "stream" and out.name == name)


NOTEBOOK = [
    """
import json
import urllib.request

from flask import Flask

import pyhost
import pyhost.notebook
from pyhost import hosted

PORT = {port}
""",
    """
@hosted(port=PORT, health_check_interval=0.05)
def create_app():
    app = Flask("notebook")
    app.add_url_rule("/", "index", lambda: "hello from cell 1")
    app.add_url_rule("/pid", "pid", lambda: str(__import__("os").getpid()))
    return app
""",
    """
host = create_app.start()
print(json.dumps({{"pid": host.pid, "url": host.url}}))
""",
    """
for path in ("/", "/pid"):
    print(urllib.request.urlopen(host.url + path, timeout=10).read().decode())
""",
    """
@hosted(port=0)
def broken():
    import flask_not_installed
    return Flask("never")

try:
    broken.start()
except pyhost.DependencyError as exc:
    print("caught", exc.missing_module)
""",
    """
@hosted
def other_app():
    return Flask("other")

try:
    other_app.start(port=PORT)
except pyhost.PortInUse as exc:
    print("refused:", exc)
""",
    """
pyhost.stop_all()
print(json.dumps({{"running": len(pyhost.running_hosts()), "state": str(host.state),
                  "in_notebook": pyhost.notebook.in_notebook()}}))
""",
]


def test_kernel_defines_starts_requests_reruns_on_a_fixed_port_and_stops(kernel_specs,
                                                                         tmp_path):
    port = free_port()
    define, start, request = NOTEBOOK[1], NOTEBOOK[2], NOTEBOOK[3]
    # Cells 1-3 run, then the define and start cells run again: a re-run.
    sources = NOTEBOOK[:4] + [define, start, request] + NOTEBOOK[4:]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(source.format(port=port)) for source in sources])
    execute(nb, kernel_specs, str(tmp_path))  # raises CellExecutionError on any error

    cells = nb.cells
    first, second = json.loads(stream(cells[2])), json.loads(stream(cells[5]))
    assert first["url"] == second["url"] == "http://127.0.0.1:%d" % port
    assert first["pid"] != second["pid"]
    assert stream(cells[3]).split() == ["hello", "from", "cell", "1", str(first["pid"])]
    assert stream(cells[6]).split()[-1] == str(second["pid"])
    assert "Replacing the running" in stream(cells[5], "stderr")
    # A failed start shows what to do and the app's output in the cell, once:
    # live, prefixed with the host's name, not again under "Recent output".
    failure = stream(cells[7], "stderr")
    assert "caught flask_not_installed" in stream(cells[7])
    assert "Troubleshooting:" in failure and "ModuleNotFoundError" in failure
    assert failure.count("[__main__.broken()] Traceback (most recent call last)") == 1
    assert "Recent output from the app:" not in failure
    # A notebook is development mode: the app's request log shows live, in the
    # cell that made the requests.
    for cell in (cells[3], cells[6]):
        logged = [line for line in stream(cell, "stderr").splitlines() if "HTTP/1.1" in line]
        assert len(logged) == 2 and '"GET /pid HTTP/1.1" 200' in logged[1], logged
        assert all(line.startswith("[__main__.create_app()] 127.0.0.1") for line in logged)
    refused = stream(cells[8])
    assert refused.startswith("refused: Port %d" % port) and "__main__.create_app()" in refused
    assert json.loads(stream(cells[9])) == {"running": 0, "state": "STOPPED", "in_notebook": True}
    assert not alive(first["pid"]) and not alive(second["pid"])


START_HOST = """
import json, os
from flask import Flask
from pyhost import hosted

@hosted(port=0, health_check_interval=0.05)
def create_app():
    return Flask("kernel")

host = create_app.start()
print(json.dumps({"child": host.pid, "kernel": os.getpid()}))
"""


def run_in_kernel(client, code: str) -> dict:
    out: List[str] = []

    def hook(message):
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            out.append(message["content"]["text"])

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return json.loads("".join(out))


def test_kernel_restart_kill_and_shutdown_leave_no_child(kernel_specs, tmp_path):
    km = kernel_manager(kernel_specs)
    km.start_kernel(cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)

        # A graceful restart: the kernel exits, atexit stops its hosts.
        first = run_in_kernel(client, START_HOST)
        assert alive(first["child"])
        km.restart_kernel(now=False)
        client.wait_for_ready(timeout=60)
        assert wait_until(lambda: not alive(first["child"]), 20), "child left by a restart"

        # The kernel process alone killed (as the OOM killer would): no atexit,
        # no stop(); the child sees its parent go and exits by itself.
        second = run_in_kernel(client, START_HOST)
        assert second["kernel"] != first["kernel"]
        os.kill(second["kernel"], signal.SIGKILL)
        assert wait_until(lambda: not alive(second["child"]), 20), "child orphaned by a kill"

        km.restart_kernel(now=True)
        client.wait_for_ready(timeout=60)

        # A graceful shutdown.
        third = run_in_kernel(client, START_HOST)
        km.shutdown_kernel(now=False)
        assert wait_until(lambda: not alive(third["child"]), 20), "child left by a shutdown"
    finally:
        client.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def test_core_only_kernel_cannot_import_an_extra(kernel_specs, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "try:\n    import waitress\nexcept ModuleNotFoundError as exc:\n"
        "    print('blocked', exc.name)\nimport cloudpickle, flask\nprint('core ok')")])
    execute(nb, kernel_specs, str(tmp_path), kernel="pyhost-core-python")
    assert stream(nb.cells[0]).split("\n")[:2] == ["blocked waitress", "core ok"]
    blocked = non_core_modules()
    assert {"waitress", "gunicorn", "uvicorn", "flask_cors", "prometheus_client", "dotenv",
            "urllib3", "watchfiles", "requests", "psutil"} <= set(blocked)
    assert not {"cloudpickle", "flask", "werkzeug", "tenacity", "ipykernel"} & set(blocked)


def test_example_notebook_runs_cleanly_with_only_the_core_dependencies(kernel_specs):
    # The kernel can import nothing an extra installs: the notebook works after a
    # plain pip install (cloudpickle, which ships the cell's factory, is core).
    nb = nbformat.read(EXAMPLE, as_version=4)
    execute(nb, kernel_specs, os.path.dirname(EXAMPLE), kernel="pyhost-core-python")
    text = "\n".join(stream(cell) for cell in nb.cells if cell.cell_type == "code")
    assert "app output:" in text and "GET / HTTP/1.1" in text  # the app's output is shown
    assert "Hello from a notebook cell" in text
    assert re.search(r"pid (\d+) -> (?!\1)\d+ \| answers:", text)  # restarted with a new pid
    assert "same URL: True" in text
    assert "is held by another FlaskHost" in text  # the other app was refused
    assert "missing module: flask_not_installed" in text
    final = nb.cells[-1].outputs[-1]["data"]
    assert ">STOPPED</span>" in final["text/html"]
