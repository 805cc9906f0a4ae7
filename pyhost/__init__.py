"""pyhost: host a Flask (or any WSGI) app in a supervised multiprocessing child.

The names below are imported on first use (PEP 562), not here: every spawn
child and the forkserver import ``pyhost._child``, which runs this file
first, and eager imports would load tenacity (with asyncio) and the whole
parent side into each child — 30-50 ms per spawn start, measured by
bench/startup.py.
"""
import importlib
import logging
from typing import TYPE_CHECKING, Any

# A library is quiet unless asked: without this, a record at WARNING or above
# with no handler configured reaches Python's last-resort handler and prints.
# (logging costs 3 ms to import, but every child imports it anyway: Werkzeug does.)
logging.getLogger("pyhost").addHandler(logging.NullHandler())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .config import HostConfig
    from .errors import (
        AppLoadError,
        AppNotFound,
        DependencyError,
        ErrorType,
        HealthCheckTimeout,
        HostError,
        NetworkError,
        PortInUse,
        ProcessCrash,
        PythonNotFound,
        SpawnError,
        UnknownHostError,
    )
    from .host import FlaskHost, HostEvent
    from .hosted import hosted
    from .registry import running_hosts, stop_all
    from .status import HostState, HostStatus

_WHERE = {
    "HostConfig": "config",
    "FlaskHost": "host",
    "HostEvent": "host",
    "hosted": "hosted",
    "running_hosts": "registry",
    "stop_all": "registry",
    "HostState": "status",
    "HostStatus": "status",
}
for _name in ("AppLoadError", "AppNotFound", "DependencyError", "ErrorType", "HealthCheckTimeout",
              "HostError", "NetworkError", "PortInUse", "ProcessCrash", "PythonNotFound",
              "SpawnError", "UnknownHostError"):
    _WHERE[_name] = "errors"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        try:  # pyhost.errors etc. as attributes, as after an eager import
            return importlib.import_module("." + name, __name__)
        except ModuleNotFoundError as exc:
            if exc.name != "%s.%s" % (__name__, name):
                raise
            raise AttributeError("module 'pyhost' has no attribute %r" % name) from None
    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "FlaskHost",
    "HostConfig",
    "HostEvent",
    "HostState",
    "HostStatus",
    "HostError",
    "ErrorType",
    "AppLoadError",
    "AppNotFound",
    "DependencyError",
    "HealthCheckTimeout",
    "NetworkError",
    "PortInUse",
    "ProcessCrash",
    "PythonNotFound",
    "SpawnError",
    "UnknownHostError",
    "running_hosts",
    "stop_all",
    "hosted",
]
