"""``HostConfig``: every knob, its default and its validation, in one place.

Bad values raise ``ValueError`` naming the field before any process starts.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import multiprocessing
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from . import setting as fields
from ._child.backends import NAMES as _SERVER_NAMES
from .setting import setting

__all__ = ["HostConfig", "START_METHODS", "SERVERS", "default_start_method"]

START_METHODS = ("fork", "spawn", "forkserver")
SERVERS = _SERVER_NAMES  # one list: the child's backends
MASK = "***"
_MAX_ENV_VALUE = 128 * 1024  # Linux refuses a longer single environment string (MAX_ARG_STRLEN)


def default_start_method() -> str:
    """forkserver where the platform has it, else spawn; never plain fork."""
    available = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in available else "spawn"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_MAX_SECONDS = 365 * 24 * 3600  # inf or 1e10 would overflow the waits supervision relies on
_SECONDS = dict(kind=float, max=_MAX_SECONDS)


@fields.finish
@dataclasses.dataclass(frozen=True)
class HostConfig:
    """How to host, probe and supervise one app. Units are seconds.

    Each field's metadata (``help``, ``env``, ``flag``, bounds; see
    :mod:`pyhost.fields`) generates the environment parsing, the ``pyhost``
    options, the pytest options and the reference table of the docs.
    """

    port: int = setting(
        5001, kind=int, min=0, max=65535, short="-p", metavar="PORT",
        help="Port to bind; 0 picks a free one (read the real one from host.port).")
    host: str = setting(
        "127.0.0.1", kind=str, pytest=True, metavar="HOST",
        help="Interface to bind. Other than loopback exposes the app to the network.")
    health_path: Optional[str] = setting(
        None, kind=str, optional=True, metavar="PATH",
        help="Path that must answer 2xx to count as healthy; None: any answer below 500 on /.")
    health_check_timeout: float = setting(
        10.0, above=True, min=0, pytest=True, **_SECONDS,
        help="Budget for health probes after the app has bound its port.")
    health_check_interval: float = setting(
        0.5, above=True, min=0, **_SECONDS, help="First wait between health probes.")
    health_check_backoff: float = setting(
        1.2, kind=float, min=1, max=10, unit="", metavar="FACTOR",
        help="Factor applied to the wait after each failed probe.")
    health_check_max_interval: float = setting(
        2.0, above=True, min=0, **_SECONDS, help="Longest wait between health probes.")
    health_check_max_retries: int = setting(
        20, kind=int, min=1, max=10000, metavar="N", help="Most health probes per start.")
    startup_timeout: float = setting(
        60.0, above=True, min=0, pytest=True, **_SECONDS,
        help="Budget to import the app and bind its port.")
    shutdown_timeout: float = setting(
        5.0, above=True, min=0, pytest=True, commands=("run",), **_SECONDS,
        help="Graceful stop budget before SIGTERM, then SIGKILL.")
    is_development: Optional[bool] = setting(
        None, kind=bool, optional=True, flag=None,
        help="Verbose mode (the app's output shown live); None: on with FLASK_DEBUG=1 or in "
             "a notebook.")
    external_url: Optional[str] = setting(
        None, kind=str, optional=True, flag=None,
        help="Watch an app already running at this http(s) URL instead of starting one.")
    auto_restart: bool = setting(
        True, kind=bool, flag="--no-restart", commands=("run",), group="supervision",
        help="Restart the app after an unexpected exit or a failed liveness probe.")
    max_restart_attempts: int = setting(
        3, kind=int, min=0, max=1000, flag="--max-restarts", metavar="N", commands=("run",),
        group="supervision", help="Restarts allowed within restart_window before giving up.")
    restart_delay: float = setting(
        2.0, min=0, commands=("run",), group="supervision", **_SECONDS,
        help="Base restart delay; doubles per consecutive attempt.")
    restart_window: float = setting(
        60.0, above=True, min=0, commands=("run",), group="supervision", **_SECONDS,
        help="A child healthy this long resets the restart count.")
    liveness_interval: Optional[float] = setting(
        10.0, optional=True, above=True, min=0, commands=("run",), group="supervision",
        **_SECONDS, help="Seconds between liveness probes once ready; None turns hang "
                         "detection off.")
    liveness_failures: int = setting(
        3, kind=int, min=1, max=1000, metavar="N", commands=("run",), group="supervision",
        help="Failed liveness probes in a row that mean the app hangs.")
    start_method: Optional[str] = setting(
        None, kind=str, optional=True, choices=START_METHODS, pytest=True, metavar="METHOD",
        help="multiprocessing start method; None: forkserver where available, else spawn.")
    python: Optional[str] = setting(
        None, kind=str, optional=True, metavar="PATH",
        help="Interpreter for the app process, e.g. a virtualenv's bin/python.")
    requires: Tuple[str, ...] = setting(
        (), kind=tuple, metavar="MODULES",
        help="Modules checked importable before starting, comma-separated (repeatable).")
    env: Mapping[str, str] = setting(
        kind=dict, env=False, short="-e", metavar="KEY=VALUE", default_factory=dict,
        help="Extra environment variables for the app process (shown masked).")
    stderr_lines: int = setting(
        50, kind=int, min=1, max=100000, metavar="N", commands=("run",), group="output",
        help="Lines of the app's output kept for errors and host.logs().")
    workers: int = setting(
        1, kind=int, min=1, max=256, short="-w", metavar="N", commands=("run",),
        help="Processes sharing the listening socket.")
    server: str = setting(
        "werkzeug", kind=str, choices=SERVERS, pytest=True, metavar="NAME", commands=("run",),
        help="Server in the app process: werkzeug, waitress or gunicorn for WSGI, uvicorn for "
             "ASGI apps; each an extra except werkzeug.")
    cooldown: Optional[float] = setting(
        None, optional=True, above=True, min=0, commands=("run",), group="supervision",
        **_SECONDS, help="After giving up, try once more after this long; None: stay FAILED.")
    expose_details: bool = setting(
        False, kind=bool, commands=("run",),
        help="Show error details (output tail, traceback) to HTTP clients, not only the "
             "operator.")
    debug: bool = setting(
        False, kind=bool, commands=("run",),
        help="Flask debug mode and the Werkzeug debugger (loopback only).")

    def __post_init__(self) -> None:
        # Normalise the containers so a frozen config is hashable-ish and safe to share.
        if isinstance(self.requires, str):
            object.__setattr__(self, "requires", (self.requires,))
        elif isinstance(self.requires, (list, tuple, set, frozenset)):
            object.__setattr__(self, "requires", tuple(self.requires))
        elif self.requires is None:
            object.__setattr__(self, "requires", ())
        else:
            raise ValueError("HostConfig.requires: must be a list of module names (got %r)"
                             % (self.requires,))
        if self.env is None:
            object.__setattr__(self, "env", {})
        elif not isinstance(self.env, Mapping):
            raise ValueError("HostConfig.env: must be a mapping of names to values (got %r)"
                             % (type(self.env).__name__,))
        else:
            object.__setattr__(self, "env", dict(self.env))
        self._validate()

    def __repr__(self) -> str:
        shown = ", ".join("%s=%r" % (name, value) for name, value in self.to_dict().items()
                          if name == "env" or value != _DEFAULTS.get(name))
        return "HostConfig(%s)" % shown

    # -- validation ---------------------------------------------------------
    def _validate(self) -> None:
        def fail(field: str, problem: str) -> None:
            raise ValueError("HostConfig.%s: %s (got %r)" % (field, problem, getattr(self, field)))

        fields.check_bounds(self)
        if not isinstance(self.host, str) or not self.host:
            fail("host", "must be a non-empty host name or address")
        if len(self.host) > 255 or _has_control(self.host) or any(c.isspace() for c in self.host):
            fail("host", "must be a host name or address without spaces, NUL or control "
                 "characters, at most 255 characters")
        if self.health_path is not None:
            if not isinstance(self.health_path, str) or not self.health_path.startswith("/"):
                fail("health_path", "must be None or a path starting with '/'")
            if (len(self.health_path) > 2048 or _has_control(self.health_path)
                    or any(c.isspace() for c in self.health_path)):
                fail("health_path", "must be a URL path without spaces or control characters "
                     "(percent-encode them), at most 2048 characters")
        if self.start_method is not None \
                and self.start_method not in multiprocessing.get_all_start_methods():
            fail("start_method", "is not available on this platform")
        if self.python is not None and (
                not isinstance(self.python, str) or not self.python or len(self.python) > 4096
                or _has_control(self.python)):
            fail("python", "must be None or the path of a Python interpreter")
        if len(self.requires) > 256:
            raise ValueError("HostConfig.requires: at most 256 modules (got %d)"
                             % len(self.requires))
        for module in self.requires:
            if not isinstance(module, str) or len(module) > 255 or not all(
                part.isidentifier() for part in module.split(".")
            ):
                raise ValueError("HostConfig.requires: %r is not a module name"
                                 % (_clip(module),))
        if len(self.env) > 4096:
            raise ValueError("HostConfig.env: at most 4096 variables (got %d)" % len(self.env))
        for key, value in self.env.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key:
                raise ValueError(
                    "HostConfig.env: keys and values must be strings, keys without '=' "
                    "(got %r: %s)" % (_clip(key), _masked_type(value)))
            if "\x00" in key or "\x00" in value:
                raise ValueError("HostConfig.env: %r %s a NUL byte, which an environment "
                                 "variable cannot hold" % (_clip(key.replace("\x00", "\\0")),
                                                           "has" if "\x00" in key else
                                                           "has a value with"))
            if len(key) > 1024 or len(value) > _MAX_ENV_VALUE:
                raise ValueError("HostConfig.env: %r is too long (keys up to 1024 characters, "
                                 "values up to %d)" % (_clip(key), _MAX_ENV_VALUE))
        if self.workers > 1 and not hasattr(os, "fork"):
            fail("workers", "more than one worker needs os.fork(), which this platform lacks")
        if self.workers > 1 and self.debug:
            fail("workers", "the Werkzeug debugger keeps its state in one process; use "
                 "workers=1 with debug=True")
        if self.debug and not is_loopback(self.host):
            fail("debug", "the Werkzeug debugger runs arbitrary code for whoever reaches it; "
                 "it is refused unless host is a loopback address")
        if self.external_url is not None:
            from urllib.parse import urlsplit

            parts = None
            if isinstance(self.external_url, str) and len(self.external_url) <= 8192 \
                    and not _has_control(self.external_url):
                try:
                    parts = urlsplit(self.external_url)
                except ValueError:
                    parts = None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                fail("external_url", "must be an http:// or https:// URL")

    # -- derived values -----------------------------------------------------
    @property
    def resolved_start_method(self) -> str:
        return self.start_method or default_start_method()

    @property
    def development(self) -> bool:
        """Verbose mode: explicit, else FLASK_DEBUG or running in a notebook."""
        if self.is_development is not None:
            return self.is_development
        if os.environ.get("FLASK_DEBUG", "").lower() in ("1", "true", "yes"):
            return True
        from .notebook import in_notebook

        return in_notebook()

    def replace(self, **changes: Any) -> "HostConfig":
        """A copy with ``changes`` applied (validated again)."""
        unknown = set(changes) - set(field_names())
        if unknown:
            raise TypeError("unknown HostConfig field(s): %s" % ", ".join(sorted(unknown)))
        return dataclasses.replace(self, **changes)

    def to_dict(self, reveal: bool = False) -> Dict[str, Any]:
        """The fields as plain data; ``env`` values masked unless ``reveal=True``.

        ``env`` often holds secrets (tokens, connection strings): what is shown,
        logged or sent somewhere gets ``'***'``; the operator asks for the rest.
        """
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["requires"] = list(self.requires)
        data["env"] = dict(self.env) if reveal else {key: MASK for key in self.env}
        return data

    @classmethod
    def from_env(
        cls,
        prefix: str = fields.ENV_PREFIX,
        environ: Optional[Mapping[str, str]] = None,
        **overrides: Any,
    ) -> "HostConfig":
        """Defaults, then ``PYHOST_<FIELD>`` variables, then ``overrides``.

        ``PYHOST_PORT=0``, ``PYHOST_AUTO_RESTART=false``,
        ``PYHOST_REQUIRES=flask,flask_cors``, ``PYHOST_LIVENESS_INTERVAL=none``.
        ``env`` is not read from the environment (the child inherits it anyway).
        """
        environ = os.environ if environ is None else environ
        values: Dict[str, Any] = {}
        read: Dict[str, str] = {}  # field -> "PYHOST_FIELD='raw'", to point at the culprit
        for field in fields.settings(cls):
            if not field.metadata["env"]:
                continue
            variable = prefix + field.name.upper()
            raw = environ.get(variable)
            if raw is None:
                continue
            read[field.name] = "%s=%r" % (variable, raw)
            try:
                values[field.name] = fields.parse_text(field, raw)
            except ValueError as exc:
                raise ValueError("%s (from %s)" % (exc, read[field.name])) from None
        _warn_about_typos(environ, prefix)
        values.update(overrides)
        try:
            return cls(**values)
        except ValueError as exc:
            culprits = [text for name, text in read.items()
                        if name not in overrides and "HostConfig.%s:" % name in str(exc)]
            if not culprits:
                raise
            raise ValueError("%s (from %s)" % (exc, ", ".join(culprits))) from None


def _warn_about_typos(environ: Mapping[str, str], prefix: str) -> None:
    """``PYHOST_PROT=0`` would be ignored silently: say which field it resembles."""
    import difflib
    import logging

    known = [prefix + name.upper() for name in field_names()]
    for variable in environ:
        if not variable.startswith(prefix) or variable in known:
            continue
        close = difflib.get_close_matches(variable, known, n=1, cutoff=0.85)
        if close:
            logging.getLogger("pyhost").warning(
                "⚠ %s is not a pyhost setting and is ignored; did you mean %s?",
                variable, close[0])


def field_names() -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(HostConfig))


_DEFAULTS = {field.name: fields.default_of(field) for field in dataclasses.fields(HostConfig)}
_DEFAULTS["requires"] = []


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def _clip(value: Any, limit: int = 60) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "...(%d characters)" % len(value)
    return value


def _masked_type(value: Any) -> str:
    # An env value may be a secret: name its type, never show it.
    return "a %s" % type(value).__name__ if not isinstance(value, str) else "a string"
