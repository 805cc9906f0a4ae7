"""``pyhost run --reload``: how long from saving a file to the new code answering.

Starts ``pyhost run --reload`` on a small Flask app (port 0) in a temporary
directory, then, for each edit, writes a new version of the file and polls
``GET /`` every 10 ms until the new body comes back. The figure is the time
from the write to the first new answer: the watcher's debounce, the import
check in a fresh interpreter, the graceful stop and the new child's start.

Baselines, measured in the same run and round-robin with the edits: a plain
``FlaskHost.restart()`` of the same app in this process (stop + start on the
same port), i.e. what a reload costs at the least without watching or checking;
and the import check alone (``pyhost.preflight.check_import``: a fresh
interpreter importing the app, the price of never stopping the running app for
code that does not import).

Run: ``.venv/bin/python bench/reload.py [--edits N] [--start-method M] [--json PATH]``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)

APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "version %d"
"""


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


def wait_for_body(url: str, body: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(url) == body:
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError("%r not served within %.0fs" % (body, timeout))


class Cli:
    def __init__(self, workdir: str, start_method: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYHOST_")}
        env["PYHOST_SKIP_DOTENV"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyhost", "run", "webapp:app", "--port", "0", "--reload",
             "--quiet", "--start-method", start_method],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list = []
        self.url = None
        self.watching = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            found = re.search(r"Serving webapp:app at (http://\S+)", line)
            if found:
                self.url = found.group(1) + "/"
            if "for changes" in line:
                self.watching.set()

    def close(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=7)
    parser.add_argument("--start-method", default="forkserver")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from pyhost import FlaskHost
    from pyhost.config import HostConfig
    from pyhost.preflight import check_import
    from pyhost.targets import parse_target

    reload_times, restart_times, check_times = [], [], []
    with tempfile.TemporaryDirectory() as workdir:
        source = os.path.join(workdir, "webapp.py")
        with open(source, "w") as handle:
            handle.write(APP % 0)
        cli = Cli(workdir, args.start_method)
        sys.path.insert(0, workdir)
        host = FlaskHost("webapp:app", port=0, start_method=args.start_method,
                         liveness_interval=None)
        try:
            if not cli.watching.wait(60) or cli.url is None:
                raise RuntimeError("pyhost run --reload did not start:\n" + "\n".join(cli.lines))
            host.start()
            for edit in range(1, args.edits + 1):
                order = ["reload", "restart", "check"]
                order = order[edit % 3:] + order[:edit % 3]
                for variant in order:
                    if variant == "reload":
                        time.sleep(0.3)  # keep edits apart from the previous restart's output
                        with open(source, "w") as handle:
                            handle.write(APP % edit)
                        written = time.monotonic()
                        reload_times.append(wait_for_body(cli.url, "version %d" % edit)
                                            - written)
                    elif variant == "check":
                        began = time.monotonic()
                        check_import(parse_target("webapp:app"), HostConfig())
                        check_times.append(time.monotonic() - began)
                    else:
                        began = time.monotonic()
                        host.restart()
                        get(host.url + "/")
                        restart_times.append(time.monotonic() - began)
        finally:
            host.stop()
            cli.close()
    reload_ms = statistics.median(reload_times) * 1000
    restart_ms = statistics.median(restart_times) * 1000
    print("pyhost run --reload (%s), %d edits" % (args.start_method, args.edits))
    print("  change -> new code served: median %.0f ms (min %.0f, max %.0f)"
          % (reload_ms, min(reload_times) * 1000, max(reload_times) * 1000))
    print("  FlaskHost.restart() + GET:  median %.0f ms" % restart_ms)
    print("  import check alone:         median %.0f ms"
          % (statistics.median(check_times) * 1000))
    print("  reload / restart: %.2fx" % (reload_ms / restart_ms))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"reload_s": reload_times, "restart_s": restart_times, "check_s": check_times,
                       "start_method": args.start_method}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
