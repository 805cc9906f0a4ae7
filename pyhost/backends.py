"""Server backends as the parent sees them: names, availability, and a check before any start.

The servers themselves run in the child (:mod:`pyhost._child.backends`, one
module each); this module answers, in the parent and before any process
starts, whether a configuration can run at all: ``workers > 1`` needs a server
with its own worker engine (gunicorn's arbiter), and that server installed.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any, List

from ._child import backends as _child_backends
from ._meta import pip_install

__all__ = ["NAMES", "available", "installed", "validate"]

#: Every ``HostConfig.server`` value.
NAMES = _child_backends.NAMES


def installed(name: str) -> bool:
    """Whether this interpreter can import what server ``name`` needs."""
    return not _child_backends.missing_modules(_child_backends.get(name))


def available() -> List[str]:
    """The servers this interpreter can run (gunicorn only on POSIX)."""
    return [name for name in NAMES
            if installed(name) and (name != "gunicorn" or os.name == "posix")]


def validate(config: Any) -> None:
    """``ValueError`` naming the field when ``config`` asks for what no server here can do."""
    server = config.server
    if server not in NAMES:
        raise ValueError("HostConfig.server: must be one of %s (got %r)"
                         % (", ".join(NAMES), server))
    if server == "gunicorn" and os.name != "posix":
        raise ValueError("HostConfig.server: gunicorn runs on POSIX systems only; use "
                         "server='waitress' here")
    if getattr(config, "debug", False) and server != "werkzeug":
        raise ValueError("HostConfig.debug: debug=True runs Werkzeug's debugger, which only "
                         "server='werkzeug' serves (got server=%r)" % server)
    workers = config.workers
    if workers <= 1:
        return
    engine = _child_backends.get(server)
    if not engine.WORKERS and server != "uvicorn":
        raise ValueError(
            "HostConfig.workers: workers=%d needs a server with worker processes, and "
            "server=%r runs one process; use server='gunicorn' (%s), or workers=1"
            % (workers, server, pip_install("gunicorn")))
    if os.name != "posix":
        raise ValueError("HostConfig.workers: workers=%d runs on gunicorn's arbiter, which needs "
                         "a POSIX system; use workers=1 here" % workers)
    if config.python:
        return  # the other interpreter's packages: the child reports what is missing there
    if importlib.util.find_spec("gunicorn") is None:
        raise ValueError("HostConfig.workers: workers=%d runs on gunicorn's arbiter, which is "
                         "not installed: %s" % (workers, pip_install("gunicorn")))
