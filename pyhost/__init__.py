"""pyhost: host a Flask (or any WSGI) app in a supervised multiprocessing child."""
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
