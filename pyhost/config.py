"""``HostConfig``: every knob, its default and its validation, in one place.

Bad values raise ``ValueError`` naming the field before any process starts.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import multiprocessing
import os
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["HostConfig", "START_METHODS", "default_start_method"]

START_METHODS = ("fork", "spawn", "forkserver")
SERVERS = ("werkzeug",)


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


@dataclasses.dataclass(frozen=True)
class HostConfig:
    """How to host, probe and supervise one app. Units are seconds."""

    port: int = 5001
    host: str = "127.0.0.1"
    health_path: Optional[str] = None
    health_check_timeout: float = 10.0
    health_check_interval: float = 0.5
    health_check_backoff: float = 1.2
    health_check_max_interval: float = 2.0
    health_check_max_retries: int = 20
    startup_timeout: float = 60.0
    shutdown_timeout: float = 5.0
    is_development: Optional[bool] = None
    external_url: Optional[str] = None
    auto_restart: bool = True
    max_restart_attempts: int = 3
    restart_delay: float = 2.0
    restart_window: float = 60.0
    liveness_interval: Optional[float] = 10.0
    liveness_failures: int = 3
    start_method: Optional[str] = None
    python: Optional[str] = None
    requires: Tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stderr_lines: int = 50
    workers: int = 1
    server: str = "werkzeug"
    cooldown: Optional[float] = None
    expose_details: bool = False
    debug: bool = False

    def __post_init__(self) -> None:
        # Normalise the containers so a frozen config is hashable-ish and safe to share.
        if isinstance(self.requires, str):
            object.__setattr__(self, "requires", (self.requires,))
        else:
            object.__setattr__(self, "requires", tuple(self.requires or ()))
        object.__setattr__(self, "env", dict(self.env or {}))
        self._validate()

    # -- validation ---------------------------------------------------------
    def _validate(self) -> None:
        def fail(field: str, problem: str) -> None:
            raise ValueError("HostConfig.%s: %s (got %r)" % (field, problem, getattr(self, field)))

        if not _is_int(self.port) or not 0 <= self.port <= 65535:
            fail("port", "must be an integer from 0 to 65535 (0 picks a free port)")
        if not isinstance(self.host, str) or not self.host:
            fail("host", "must be a non-empty host name or address")
        if self.health_path is not None and (
            not isinstance(self.health_path, str) or not self.health_path.startswith("/")
        ):
            fail("health_path", "must be None or a path starting with '/'")
        for name in ("health_check_timeout", "health_check_interval", "health_check_max_interval",
                     "startup_timeout", "shutdown_timeout"):
            if not _is_number(getattr(self, name)) or getattr(self, name) <= 0:
                fail(name, "must be a positive number of seconds")
        for name in ("restart_delay",):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "must be zero or a positive number of seconds")
        if not _is_number(self.restart_window) or self.restart_window <= 0:
            fail("restart_window", "must be a positive number of seconds")
        if not _is_number(self.health_check_backoff) or self.health_check_backoff < 1:
            fail("health_check_backoff", "must be a number >= 1")
        if not _is_int(self.health_check_max_retries) or self.health_check_max_retries < 1:
            fail("health_check_max_retries", "must be an integer >= 1")
        if not _is_int(self.max_restart_attempts) or self.max_restart_attempts < 0:
            fail("max_restart_attempts", "must be an integer >= 0")
        if self.liveness_interval is not None and (
            not _is_number(self.liveness_interval) or self.liveness_interval <= 0
        ):
            fail("liveness_interval", "must be None (no hang detection) or a positive number")
        for name in _SECONDS_FIELDS:
            value = getattr(self, name)
            if value is not None and value > _MAX_SECONDS:
                # inf or 1e10 would overflow the waits that supervision relies on
                fail(name, "must be a finite number of seconds, at most %d (a year)"
                     % _MAX_SECONDS)
        if not _is_int(self.liveness_failures) or self.liveness_failures < 1:
            fail("liveness_failures", "must be an integer >= 1")
        if self.start_method is not None:
            if self.start_method not in START_METHODS:
                fail("start_method", "must be one of %s or None" % ", ".join(START_METHODS))
            if self.start_method not in multiprocessing.get_all_start_methods():
                fail("start_method", "is not available on this platform")
        if self.python is not None and (not isinstance(self.python, str) or not self.python):
            fail("python", "must be None or the path of a Python interpreter")
        for module in self.requires:
            if not isinstance(module, str) or not all(
                part.isidentifier() for part in module.split(".")
            ):
                raise ValueError("HostConfig.requires: %r is not a module name" % (module,))
        for key, value in self.env.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key:
                raise ValueError(
                    "HostConfig.env: keys and values must be strings, keys without '=' "
                    "(got %r: %r)" % (key, value)
                )
        if not _is_int(self.stderr_lines) or self.stderr_lines < 1:
            fail("stderr_lines", "must be an integer >= 1")
        if not _is_int(self.workers) or self.workers < 1:
            fail("workers", "must be an integer >= 1")
        if self.workers > 1 and not hasattr(os, "fork"):
            fail("workers", "more than one worker needs os.fork(), which this platform lacks")
        if self.workers > 1 and self.debug:
            fail("workers", "the Werkzeug debugger keeps its state in one process; use "
                 "workers=1 with debug=True")
        if self.server not in SERVERS:
            fail("server", "must be one of %s" % ", ".join(SERVERS))
        if self.debug and not is_loopback(self.host):
            fail("debug", "the Werkzeug debugger runs arbitrary code for whoever reaches it; "
                 "it is refused unless host is a loopback address")
        if self.external_url is not None:
            from urllib.parse import urlsplit

            parts = urlsplit(self.external_url) if isinstance(self.external_url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                fail("external_url", "must be an http:// or https:// URL")
        if self.cooldown is not None and (not _is_number(self.cooldown) or self.cooldown <= 0):
            fail("cooldown", "must be None (stay FAILED after giving up) or a positive number "
                 "of seconds")
        for name in ("is_development", "auto_restart", "expose_details", "debug"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                fail(name, "must be True or False")

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

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["requires"] = list(self.requires)
        return data

    @classmethod
    def from_env(
        cls,
        prefix: str = "PYHOST_",
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
        for field in dataclasses.fields(cls):
            if field.name == "env":
                continue
            variable = prefix + field.name.upper()
            raw = environ.get(variable)
            if raw is None:
                continue
            read[field.name] = "%s=%r" % (variable, raw)
            try:
                values[field.name] = _parse_env_value(field.name, raw, field.default)
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


_SECONDS_FIELDS = ("health_check_timeout", "health_check_interval", "health_check_max_interval",
                   "startup_timeout", "shutdown_timeout", "restart_delay", "restart_window",
                   "liveness_interval", "cooldown")
_MAX_SECONDS = 365 * 24 * 3600


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _parse_env_value(name: str, raw: str, default: Any) -> Any:
    text = raw.strip()
    if text.lower() in ("none", "null", "") and name in _OPTIONAL_FIELDS:
        return None
    kind = _FIELD_KINDS.get(name)
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            "HostConfig.%s: cannot read %r from the environment as %s"
            % (name, raw, getattr(kind, "__name__", "text"))
        ) from None
    return text


_OPTIONAL_FIELDS = frozenset(
    {"health_path", "is_development", "external_url", "liveness_interval", "start_method", "python",
     "cooldown"}
)
_FIELD_KINDS: Dict[str, Any] = {
    "port": int,
    "health_check_max_retries": int,
    "max_restart_attempts": int,
    "liveness_failures": int,
    "stderr_lines": int,
    "workers": int,
    "health_check_timeout": float,
    "health_check_interval": float,
    "health_check_backoff": float,
    "health_check_max_interval": float,
    "startup_timeout": float,
    "shutdown_timeout": float,
    "restart_delay": float,
    "restart_window": float,
    "liveness_interval": float,
    "cooldown": float,
    "is_development": bool,
    "auto_restart": bool,
    "expose_details": bool,
    "debug": bool,
    "requires": tuple,
}
