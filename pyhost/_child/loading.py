"""Loading the target into an app object, WSGI or ASGI (child side)."""
import inspect

from .failures import NotWSGI, TargetNotFound
from .resolve import check_callable, import_target_module, resolve_attr, unship

__all__ = ["load_app", "app_kind", "find_best_app", "as_app"]


def load_app(target):
    """Import ``target`` (a dict made by ``pyhost.targets``) and return the app (WSGI or ASGI)."""
    kind = target["kind"]
    if kind == "callable":
        factory = unship(target)
        if _is_wsgi_signature(factory) or is_asgi(factory):
            return factory  # FlaskHost(wsgi_function): the app itself, not a factory
        return as_app(factory(), target["label"])
    module = import_target_module(target)
    expr = target.get("attr")
    if expr is None:
        return find_best_app(module, target["label"])
    obj = resolve_attr(module, expr, target["label"])
    call = target.get("call")
    if call is not None:
        args, kwargs = call
        if not callable(obj):
            raise TargetNotFound("%s: %r is not callable" % (target["label"], expr))
        check_callable(obj, module, target["label"])
        obj = obj(*args, **kwargs)
    elif _is_factory(obj):
        check_callable(obj, module, target["label"])
        obj = obj()
    return as_app(obj, target["label"])


def app_kind(app):
    """``"asgi"`` for an ASGI app (``async def app(scope, receive, send)``), else ``"wsgi"``."""
    return "asgi" if is_asgi(app) else "wsgi"


def is_asgi(obj):
    if inspect.isclass(obj):
        return False
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - the method, for its coroutine flag
    return call is not None and inspect.iscoroutinefunction(call)


def _is_factory(obj):
    """A function that takes no arguments is an app factory, not a WSGI app."""
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)) or is_asgi(obj):
        return False
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in parameters
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return not required


def _is_wsgi_signature(obj):
    """Callable as ``obj(environ, start_response)`` but not as ``obj()``."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind()
        return False
    except TypeError:
        pass
    try:
        signature.bind(None, None)
        return True
    except TypeError:
        return False


def find_best_app(module, label):
    """Like ``flask --app module``: ``app``/``application``, one Flask app, or a factory."""
    for name in ("app", "application"):
        obj = getattr(module, name, None)
        if obj is not None and _app_or_none(obj) is not None:
            return _app_or_none(obj)
    candidates = []
    for value in vars(module).values():
        if _is_flask_app(value) and value not in candidates:
            candidates.append(value)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise TargetNotFound("%s: several Flask apps found; name one, e.g. '%s:app'"
                             % (label, module.__name__))
    for name in ("create_app", "make_app"):
        factory = getattr(module, name, None)
        if callable(factory):
            check_callable(factory, module, label)
            return as_app(factory(), "%s:%s()" % (module.__name__, name))
    raise TargetNotFound(
        "%s: no 'app', 'application', Flask instance or 'create_app' factory in module %r; "
        "name the attribute, e.g. '%s:app'" % (label, module.__name__, module.__name__)
    )


def _is_flask_app(obj):
    return any(cls.__name__ == "Flask" and cls.__module__.startswith("flask")
               for cls in type(obj).__mro__)


def _app_or_none(obj):
    server = getattr(obj, "server", None)  # Dash keeps its Flask app in .server
    if server is not None and callable(server) and not inspect.isroutine(obj):
        return server
    if callable(obj):
        return obj
    return None


def as_app(obj, label):
    app = _app_or_none(obj)
    if app is None:
        raise NotWSGI("%s returned %s, which is not a WSGI app (a Flask app, a Dash app or "
                      "a callable(environ, start_response)) nor an ASGI app"
                      % (label, type(obj).__name__))
    return app


as_wsgi = as_app  # the name earlier versions used
