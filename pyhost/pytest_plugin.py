"""pytest fixtures: live servers in supervised child processes.

Registered through the ``pytest11`` entry point, so installing pyhost is
enough. Fixtures:

- ``pyhost_server(app, **fields)``: a factory returning a started
  ``FlaskHost`` (port 0 unless given), stopped at the end of the test;
- ``pyhost_session_server(app, **fields)``: the same, started once per
  session for each distinct ``(app, fields)`` and stopped at the end;
- ``pyhost_live_server``: a session host for the ``pyhost_app`` ini value
  (or ``--pyhost-app``). It does the job of pytest-flask's ``live_server``,
  not as a drop-in: the app comes from the ini value (not an ``app``
  fixture), it is already started, and ``url`` is a string
  (``pyhost_live_server.url + "/path"``, not ``live_server.url("/path")``).

A startup failure fails the test with the typed error, its troubleshooting
steps and the app's last output lines, not a bare timeout. This module imports
only pytest at load time; pyhost's host machinery is imported on first use.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

__all__ = ["HostFactory"]

def _plugin_fields() -> List[Any]:
    """The ``HostConfig`` fields whose metadata offers a pytest option (``pytest=True``)."""
    from . import fields
    from .config import HostConfig  # no web stack: multiprocessing and dataclasses only

    return [field for field in fields.settings(HostConfig) if field.metadata["pytest"]]


def _ini(field: Any) -> str:
    return "pyhost_%s" % field.name


def _flag(field: Any) -> str:
    return "--pyhost-%s" % field.name.replace("_", "-")


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("pyhost", "pyhost: live servers in supervised child processes")
    from .fields import default_of

    for field in _plugin_fields():
        meta = field.metadata
        ini = _ini(field)
        default = default_of(field)
        help_text = "%s (default: %s)" % (meta["help"].rstrip("."), "pyhost's" if default is None
                                          else default)
        group.addoption(_flag(field), dest=ini, default=None,
                        metavar=meta["metavar"] or meta["kind"].__name__.upper(),
                        choices=meta["choices"], help=help_text + " [ini: %s]" % ini)
        parser.addini(ini, help_text)
    group.addoption("--pyhost-app", dest="pyhost_app", default=None, metavar="TARGET",
                    help="target served by the pyhost_live_server fixture, e.g. "
                         "'myapp:create_app()' [ini: pyhost_app]")
    parser.addini("pyhost_app", "target served by the pyhost_live_server fixture")


def pytest_configure(config: Any) -> None:
    host_defaults(config)  # a malformed option is a usage error now, not in a fixture


def _setting(config: Any, ini: str) -> Optional[str]:
    return _setting_from(config, ini)[0]


def _setting_from(config: Any, ini: str, flag: str = "") -> Tuple[Optional[str], str]:
    """The value and where it came from (``--flag VALUE`` or ``ini = VALUE``), for usage errors."""
    value = config.getoption(ini, default=None)
    source = "%s %s" % (flag, value)
    if value in (None, ""):
        value = config.getini(ini)
        source = "%s = %s in the ini file" % (ini, value)
    return (value if value not in (None, "", []) else None), source


def host_defaults(config: Any) -> Dict[str, Any]:
    """HostConfig fields from the command line and ini; port 0 for every test host.

    Each value is checked by ``HostConfig`` here, so a typo or a negative
    timeout is one usage error at startup instead of a ValueError in every
    test that uses a fixture.
    """
    from .config import HostConfig
    from .fields import parse_text

    values: Dict[str, Any] = {"port": 0}
    for field in _plugin_fields():
        raw, source = _setting_from(config, _ini(field), _flag(field))
        if raw is None:
            continue
        try:
            values[field.name] = parse_text(field, raw)
        except ValueError:
            kind = field.metadata["kind"]
            expected = "a number of seconds" if kind is float else "an integer" \
                if kind is int else "a valid value"
            raise pytest.UsageError("pyhost: %s: not %s" % (source, expected)) from None
        try:
            HostConfig(port=0, **{field.name: values[field.name]})
        except ValueError as exc:
            reason = str(exc)
            prefix = "HostConfig.%s: " % field.name
            if reason.startswith(prefix):
                reason = reason[len(prefix):]
            raise pytest.UsageError("pyhost: %s: %s" % (source, reason)) from None
    try:
        HostConfig(**values)  # one value at a time passed; the combination must pass too
    except ValueError as exc:
        raise pytest.UsageError("pyhost: these pyhost options do not fit together: %s"
                                % exc) from None
    return values


def _startup_failure(app: Any, error: Any) -> str:
    return "pyhost could not start %s: %s\n%s" % (
        app if isinstance(app, str) else getattr(app, "__qualname__", repr(app)),
        error.type.value, error.describe())


class HostFactory:
    """Starts hosts on request and stops every one of them on ``close()``."""

    def __init__(self, defaults: Dict[str, Any], *, reuse: bool = False) -> None:
        self.defaults = dict(defaults)
        self.reuse = reuse
        self.hosts: List[Any] = []
        self._cache: Dict[Any, Any] = {}

    def __call__(self, app: Any, **fields: Any) -> Any:
        """A started ``FlaskHost`` for ``app``; a startup failure fails the test."""
        from .errors import HostError
        from .host import FlaskHost

        key = self._key(app, fields)
        if key is not None and key in self._cache:
            cached = self._cache[key]
            if isinstance(cached, HostError):  # failed once: don't wait for it again
                pytest.fail(_startup_failure(app, cached), pytrace=False)
            return cached
        if "config" not in fields:
            fields = dict(self.defaults, **fields)
        host = FlaskHost(app, **fields)
        self.hosts.append(host)
        failure = None
        try:
            host.start()
        except HostError as error:
            failure = error
        if failure is not None:
            # Outside the except block: the report shows the typed error only,
            # not "During handling of the above exception, another exception occurred".
            if key is not None:
                self._cache[key] = failure
            pytest.fail(_startup_failure(app, failure), pytrace=False)
        if key is not None:
            self._cache[key] = host
        return host

    def _key(self, app: Any, fields: Dict[str, Any]) -> Any:
        if not self.reuse:
            return None
        try:
            key = (app, tuple(sorted((name, repr(value)) for name, value in fields.items())))
            hash(key)
        except TypeError:
            return None
        return key

    def close(self) -> None:
        for host in reversed(self.hosts):
            host.stop()
        self.hosts.clear()
        self._cache.clear()


@pytest.fixture(scope="session")
def pyhost_defaults(pytestconfig: Any) -> Dict[str, Any]:
    """HostConfig fields every fixture host starts with (port 0, the pyhost options)."""
    return host_defaults(pytestconfig)


@pytest.fixture
def pyhost_server(pyhost_defaults: Dict[str, Any]) -> Any:
    """Factory: ``pyhost_server("app:create_app()", **fields)`` -> started ``FlaskHost``,
    stopped at the end of the test."""
    factory = HostFactory(pyhost_defaults)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def pyhost_session_server(pyhost_defaults: Dict[str, Any]) -> Any:
    """Like ``pyhost_server``, but each distinct ``(app, fields)`` starts once per session."""
    factory = HostFactory(pyhost_defaults, reuse=True)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def pyhost_live_server(pytestconfig: Any, pyhost_session_server: Any) -> Any:
    """The session host for the ``pyhost_app`` ini value or ``--pyhost-app``."""
    target = _setting(pytestconfig, "pyhost_app")
    if target is None:
        pytest.fail("pyhost_live_server needs a target: set pyhost_app = module:create_app() in "
                    "your pytest ini file, or pass --pyhost-app", pytrace=False)
    return pyhost_session_server(target)
