"""Server backends: one module per server, behind one interface (child side).

A backend module defines:

- ``NAME`` — the ``HostConfig.server`` value;
- ``KINDS`` — the app kinds it serves (``"wsgi"``, ``"asgi"``);
- ``WORKERS`` — whether it runs ``workers > 1`` on its own engine;
- ``REQUIRES`` — the modules it imports, and ``EXTRA`` — the pip extra providing them;
- ``serve(app, kind, sock, run)`` — serve ``app`` on the already bound ``sock``
  until stopped. It calls ``run.ready()`` once it accepts connections (that
  pushes ``Bound`` to the parent) and ``run.serving(stop, abandon)`` with how to
  stop it gracefully (``Stop`` from the parent) and at once (the parent died).

Adding a server is one new module here and its name in :data:`NAMES`.
Backends import their server only inside ``serve``: this package stays stdlib-only.
"""
import importlib
import importlib.util

from ..._meta import pip_install
from ..failures import CannotServe

__all__ = ["NAMES", "get", "choose", "missing_modules"]

#: Every backend, in the order a user would consider them.
NAMES = ("werkzeug", "waitress", "gunicorn", "uvicorn")


def get(name):
    """The backend module for ``name``."""
    if name not in NAMES:
        raise ValueError("unknown server %r (one of %s)" % (name, ", ".join(NAMES)))
    return importlib.import_module("%s.%s" % (__name__, name))


def missing_modules(backend, extra=()):
    """The modules ``backend`` (and ``extra``) need that this interpreter cannot import."""
    return [name for name in list(backend.REQUIRES) + list(extra) if not _importable(name)]


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def choose(requested, kind, workers, label):
    """The backend module that serves an app of ``kind``; ``CannotServe`` says why none can.

    An ASGI app under the default server goes to uvicorn; ``workers > 1`` goes to
    gunicorn's arbiter (with uvicorn's worker class for ASGI).
    """
    requested = requested or "werkzeug"
    name = requested
    if kind == "asgi" and name == "werkzeug":
        name = "uvicorn"
        missing = missing_modules(get(name))
        if missing:
            raise CannotServe(
                "%s is an ASGI app (an async callable(scope, receive, send)), which Werkzeug "
                "cannot serve; pyhost serves ASGI apps with uvicorn, which is not installed: %s"
                % (label, pip_install("asgi")), "asgi_without_server",
                missing_module=missing[0], install=pip_install("asgi"))
    if kind == "asgi" and workers > 1:
        name = "gunicorn"  # uvicorn's workers run under gunicorn's arbiter
    backend = get(name)
    if kind not in backend.KINDS:
        other = "an ASGI" if kind == "asgi" else "a WSGI"
        fits = [n for n in NAMES if kind in get(n).KINDS]
        raise CannotServe("%s is %s app, which server=%r cannot serve; use server=%s"
                          % (label, other, requested, " or ".join(repr(n) for n in fits)),
                          "wrong_server", server=requested, kind=kind)
    if workers > 1 and not backend.WORKERS:
        raise CannotServe("server=%r runs one process; workers=%d needs server='gunicorn'"
                          % (requested, workers), "no_workers", server=requested)
    missing = missing_modules(backend, ["uvicorn"] if kind == "asgi" else [])
    if missing:
        extra = "asgi" if missing[0] == "uvicorn" else backend.EXTRA
        raise CannotServe("server=%r needs %s, which is not installed in this interpreter: %s"
                          % (name, missing[0], pip_install(extra)), "missing_server",
                          missing_module=missing[0], install=pip_install(extra), server=name)
    return backend
