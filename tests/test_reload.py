"""``pyhost run --reload``: edited code is served; code that does not import is not."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from test_cli import clean_env, launch, pyhost  # noqa: F401 - launch is a fixture

pytest.importorskip("watchfiles")

APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "version %d"
"""


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return "unreachable: %s" % exc


def served_within(url, body, timeout=30.0):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = get(url)
        if seen == body:
            return True
        time.sleep(0.1)
    pytest.fail("%r was not served within %.0fs (last: %r)" % (body, timeout, seen))


def test_reload_serves_edited_code_and_keeps_serving_when_the_edit_does_not_import(
        tmp_path, launch):  # noqa: F811
    source = tmp_path / "webapp.py"
    source.write_text(APP % 1)
    cli = launch("run", "webapp:app", "--port", "0", "--reload", cwd=tmp_path)
    url = cli.wait_for(r"Serving webapp:app at (http://\S+) \(pid \d+\)").group(1) + "/"
    cli.wait_for(r"Watching .* for changes")
    assert get(url) == "version 1"

    source.write_text(APP % 2)
    served_within(url, "version 2")
    cli.wait_for(r"↻ Reloaded webapp:app at %s" % url.rstrip("/"))

    source.write_text(APP % 3 + "\ndef broken(:\n")
    cli.wait_for(r"❌ Not reloaded: webapp\.py changed, but the new code does not import")
    cli.wait_for(r"Error type: APP_LOAD_ERROR")
    cli.wait_for(r"SyntaxError")
    assert get(url) == "version 2"  # the previous code keeps serving

    source.write_text(APP % 4)  # fixed: served again, on the same URL
    served_within(url, "version 4")
    assert cli.proc.poll() is None


def test_reload_without_watchfiles_names_the_extra_to_install(tmp_path):
    (tmp_path / "webapp.py").write_text(APP % 1)
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "watchfiles.py").write_text("raise ImportError('No module named watchfiles')\n")
    code, _, err = pyhost("run", "webapp:app", "--port", "0", "--reload", cwd=tmp_path,
                          env=clean_env(PYTHONPATH=str(shadow)))
    assert code == 5, err
    assert "DEPENDENCY_ERROR" in err
    assert "pip install 'pyhost-supervisor[reload]'" in err
    assert "Serving" not in err  # nothing was started


def test_watched_paths_are_where_the_app_lives_found_without_importing_it(tmp_path,
                                                                          monkeypatch):
    import sys

    from pyhost.cli.reload import watched_paths
    from pyhost.targets import parse_target

    package = tmp_path / "shop"
    (package / "web").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (package / "web" / "__init__.py").write_text("")
    (tmp_path / "single.py").write_text("raise RuntimeError('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert watched_paths(parse_target("shop.web:app")) == [str(package)]
    assert watched_paths(parse_target("single:app")) == [str(tmp_path)]
    assert watched_paths(parse_target(str(tmp_path / "single.py") + ":app")) == [str(tmp_path)]
    assert watched_paths(parse_target("not_there_at_all:app")) == [str(tmp_path)]
    assert "shop" not in sys.modules and "single" not in sys.modules  # nothing was imported


def test_reload_watches_a_package_and_restarts_on_a_change_in_a_submodule(tmp_path, launch):  # noqa: F811
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("MESSAGE = 'views 1'\n")
    (package / "web.py").write_text(
        "from flask import Flask\n\nfrom .views import MESSAGE\n\napp = Flask(__name__)\n"
        "app.add_url_rule('/', 'index', lambda: MESSAGE)\n")
    cli = launch("run", "shop.web:app", "--port", "0", "--reload", cwd=tmp_path)
    url = cli.wait_for(r"Serving shop\.web:app at (http://\S+) \(pid \d+\)").group(1) + "/"
    cli.wait_for(r"Watching .*shop for changes")
    assert get(url) == "views 1"
    (package / "views.py").write_text("MESSAGE = 'views 2'\n")
    served_within(url, "views 2")
    (package / "views.py").write_text("import not_installed_anywhere\nMESSAGE = 'views 3'\n")
    cli.wait_for(r"❌ Not reloaded: .*views\.py changed")
    cli.wait_for(r"Error type: DEPENDENCY_ERROR")
    assert get(url) == "views 2"
