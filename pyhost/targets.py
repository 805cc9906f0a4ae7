"""Parse and ship targets (parent side).

A target names the app to host:

- ``"pkg.module:attr"`` and ``"pkg.module:attr.sub"``
- ``"path/to/file.py:attr"`` (also without ``:attr``)
- ``"module:factory()"`` and ``"module:factory(debug=False, name='x')"``:
  arguments are parsed with ``ast.literal_eval`` semantics only, never ``eval``
- ``"module"``: finds ``app``/``application``, one Flask app, or ``create_app``,
  like ``flask --app``
- a zero-argument callable returning a WSGI app (shipped by reference when the
  child can import it by name, else by value with cloudpickle; under ``fork``
  not shipped at all: the child inherits it)
- a module-level Flask/WSGI app object (sent as ``"module:name"``)

Parsing happens here, in the parent, so a malformed target is a ``ValueError``
before any process starts. The result is a plain dict that the child
(:mod:`pyhost._child`) loads.

Trust: a target is code, like ``FLASK_APP``: whoever chooses it chooses what
runs. What is refused here is what no app needs and an injected string would:
standard-library and builtin modules as targets (``"os:system('...')"``), and
input sized to exhaust the parser (a 10,000-deep dotted name, a huge argument).
A factory may only be a function of the target's own package; the child checks
that part, since telling it needs the import this process never does.
"""
from __future__ import annotations

import ast
import os
import pickle
import re
import sys
import sysconfig
from typing import Any, Dict, FrozenSet, Optional

from .errors import ErrorType, SpawnError, make_error

__all__ = ["parse_target", "target_label"]

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

#: Bounds that keep parsing linear and small: no app needs more, and a bigger
#: input would reach the parser's recursion or memory limits instead of a message.
MAX_TARGET_LENGTH = 4096  # a file path can be long (PATH_MAX)
MAX_MODULE_LENGTH = 512
MAX_EXPRESSION_LENGTH = 1024  # "attr.sub" or "factory(args)"
MAX_DOTTED_PARTS = 32


def parse_target(target: Any, *, by_value: bool = False, label_only: bool = False,
                 start_method: Optional[str] = None) -> Dict[str, Any]:
    """Turn a target (string, callable or app object) into the child's plain dict.

    ``by_value`` forces callables to be shipped with cloudpickle (used when the
    child runs under another interpreter and cannot re-import ``__main__``).
    ``label_only`` checks strings as usual but does not pickle a callable:
    ``{"label": ...}`` is all a ``FlaskHost`` needs before ``start()``.
    ``start_method="fork"`` ships nothing: the forked child inherits the callable
    (``format: "inherit"``).
    """
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if isinstance(target, str):
        return _parse_string(target)
    to_target = getattr(target, "__pyhost_target__", None)
    if to_target is not None:  # @hosted factories describe themselves
        return parse_target(to_target(), by_value=by_value, label_only=label_only,
                            start_method=start_method)
    if _looks_like_app_object(target):
        return _app_object(target)
    if callable(target):
        _refuse_stdlib_callable(target)
        if label_only:
            return {"label": _callable_label(target)}
        if start_method == "fork" and not by_value:
            # Nothing to ship: the forked child has the same objects at the same addresses.
            return {"kind": "callable", "format": "inherit", "value": target,
                    "label": _callable_label(target), "module": getattr(target, "__module__",
                                                                        None)}
        return _ship_callable(target, by_value=by_value)
    raise ValueError(
        "target must be a string like 'module:app', a path 'app.py:app', or a zero-argument "
        "callable returning a WSGI app (got %r)" % (target,)
    )


def _refuse_stdlib_callable(fn: Any) -> None:
    """``FlaskHost(os.system)``: a function of the standard library is not an app factory."""
    import functools

    inner = fn
    while isinstance(inner, functools.partial):  # partial(create_app, ...) is the user's
        inner = inner.func
    module = str(getattr(inner, "__module__", None) or "")
    top = module.split(".")[0]
    if top and top in stdlib_module_names():
        raise ValueError(
            "target %r: a callable of the standard library (%s) is not an app factory; pass "
            "your app's factory or a 'module:attr' string" % (fn, module))


def target_label(target: Any) -> str:
    try:
        return parse_target(target, label_only=True)["label"]
    except (ValueError, SpawnError):
        return repr(target)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else "%s...(%d characters)" % (text[:limit], len(text))


def _parse_string(text: str) -> Dict[str, Any]:
    source = text.strip()
    if not source:
        raise ValueError("target: empty string; expected 'module:app' or 'path/to/app.py:app'")
    if len(source) > MAX_TARGET_LENGTH:
        raise ValueError("target %r is too long: %d characters, at most %d"
                         % (_clip(source), len(source), MAX_TARGET_LENGTH))
    if any(ord(char) < 32 or ord(char) == 127 for char in source):
        raise ValueError("target %r contains a NUL or control character" % _clip(source))
    module, expr = _split(source)
    module = module.strip()
    if expr is not None and len(expr) > MAX_EXPRESSION_LENGTH:
        raise ValueError("target %r: the part after ':' is %d characters, at most %d (pass "
                         "large settings through the environment or a file instead)"
                         % (_clip(source), len(expr), MAX_EXPRESSION_LENGTH))
    if module.endswith(".py") or "/" in module or os.sep in module:
        kind = "file"
        path = os.path.abspath(module)
        if not path.endswith(".py"):
            raise ValueError("target %r: a file target must name a .py file" % _clip(text))
        if _is_stdlib_path(path):
            raise ValueError("target %r: %s is a file of Python's standard library, not an "
                             "app; name your app's module or file" % (_clip(text), path))
        if not os.path.isfile(path):
            # Known before any process starts: say so now.
            raise make_error(
                ErrorType.SCRIPT_NOT_FOUND,
                "App not found: no such file %s (target %r)" % (path, text),
                details={"target": text},
            )
        module = path
    else:
        kind = "module"
        if len(module) > MAX_MODULE_LENGTH or module.count(".") >= MAX_DOTTED_PARTS:
            raise ValueError("target %r: the module name is too long or too deep (at most %d "
                             "characters and %d dotted parts)"
                             % (_clip(text), MAX_MODULE_LENGTH, MAX_DOTTED_PARTS))
        if not _MODULE_RE.match(module):
            raise ValueError(
                "target %r: %r is not a module name (expected 'package.module:attr')"
                % (_clip(text), _clip(module))
            )
        top = module.split(".")[0]
        if top in stdlib_module_names():
            raise ValueError(
                "target %r: %r is %s module, not an app. A target names your app's "
                "module and attribute ('myapp:app', 'myapp:create_app()'); pyhost refuses "
                "standard-library and builtin modules, so a target string can't run "
                "things like os.system" % (_clip(text), top, "a builtin"
                                           if top in sys.builtin_module_names
                                           else "a standard-library"))
    attr: Optional[str] = None
    call = None
    if expr is not None:
        try:
            attr, call = literal_call(expr)
        except ValueError as exc:
            raise ValueError("target %r: %s" % (_clip(text), exc)) from None
    return {"kind": kind, "module": module, "attr": attr, "call": call, "label": text}


def _split(source: str):
    # "C:\\app.py:app" on Windows: the drive colon is not the separator.
    if source.endswith(")") and "(" in source:
        head = source[: source.index("(")]
        index = head.rfind(":")
    else:
        index = source.rfind(":")
    if index <= 1 and re.match(r"^[A-Za-z]:[\\/]", source):
        index = -1
    if index == -1:
        return source, None
    return source[:index], source[index + 1:]


def _looks_like_app_object(obj: Any) -> bool:
    return hasattr(obj, "wsgi_app") or (
        hasattr(obj, "server") and hasattr(obj.server, "wsgi_app")
    )


def _app_object(app: Any) -> Dict[str, Any]:
    """A module-level app object is sent by name: the child imports it itself."""
    for module_name in (getattr(app, "import_name", None), getattr(app, "__module__", None)):
        module = sys.modules.get(module_name or "")
        if module is None:
            continue
        for name, value in vars(module).items():
            if value is app and not name.startswith("_"):
                if module_name == "__main__" and not getattr(module, "__file__", None):
                    break  # a notebook's __main__ can't be re-imported
                return _parse_string("%s:%s" % (module_name, name))
    raise SpawnError(
        "cannot send the app object %r to the child: it is not a module-level name the child "
        "can import. Pass a factory instead, e.g. FlaskHost(create_app) or "
        "'module:create_app()', or decorate the factory with @pyhost.hosted." % (app,),
        troubleshooting=[
            "Wrap the app in a zero-argument factory function and pass the function",
            "Or pass a string target naming where the app lives: 'module:app'",
        ],
    )


def _importable_by_name(fn: Any) -> bool:
    module_name = getattr(fn, "__module__", None)
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", ""))
    if not module_name or "<" in qualname:
        return False
    module = sys.modules.get(module_name)
    if module is None:
        return False
    if module_name == "__main__":
        if not getattr(module, "__file__", None):
            return False  # a notebook or REPL: the child has no __main__ file to import
        # A script's function is found by name only if it is defined at the top
        # level: the child re-runs the script as __mp_main__, without its
        # `if __name__ == "__main__":` block. By value is safe either way.
        return False
    return named_by_qualname(fn)


def named_by_qualname(obj: Any) -> bool:
    """True if ``sys.modules[obj.__module__]`` + ``obj.__qualname__`` leads to ``obj`` itself."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or not qualname or "<" in qualname:
        return False
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is obj


_STDLIB: Optional[FrozenSet[str]] = None


def stdlib_module_names() -> FrozenSet[str]:
    """Top-level names of the standard library and the builtin modules."""
    global _STDLIB
    if _STDLIB is None:
        names = set(sys.builtin_module_names)
        names.update(getattr(sys, "stdlib_module_names", ()))  # Python 3.10+
        if not hasattr(sys, "stdlib_module_names"):  # 3.9: what lives in the stdlib directory
            stdlib = sysconfig.get_paths()["stdlib"]
            try:
                entries = os.listdir(stdlib)
            except OSError:
                entries = []
            try:  # extension modules: _pickle.cpython-39-x86_64-linux-gnu.so
                entries += [entry.split(".")[0]
                            for entry in os.listdir(os.path.join(stdlib, "lib-dynload"))]
            except OSError:
                pass
            for entry in entries:
                name = entry[:-3] if entry.endswith(".py") else entry
                if name.isidentifier() and name != "site-packages":
                    names.add(name)
        names.discard("__main__")
        _STDLIB = frozenset(names)
    return _STDLIB


def _is_stdlib_path(path: str) -> bool:
    paths = sysconfig.get_paths()
    stdlib = os.path.realpath(paths["stdlib"])
    real = os.path.realpath(path)
    inside = os.path.commonpath([stdlib, real]) == stdlib
    site = [os.path.realpath(paths[key]) for key in ("purelib", "platlib")]
    return inside and not any(os.path.commonpath([s, real]) == s for s in site)


def _callable_label(fn: Any) -> str:
    return "%s.%s()" % (getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", repr(fn)))


def _ship_callable(fn: Any, *, by_value: bool) -> Dict[str, Any]:
    label = _callable_label(fn)
    module = getattr(fn, "__module__", None)
    if not by_value and _importable_by_name(fn):
        try:
            payload = pickle.dumps(fn, protocol=4)
        except Exception:  # noqa: BLE001 - fall through to by-value shipping
            pass
        else:
            return {"kind": "callable", "module": module, "payload": payload,
                    "format": "pickle", "label": label}
    import cloudpickle  # a core dependency: the standard for shipping functions by value

    try:
        payload = cloudpickle.dumps(fn, protocol=4)
    except Exception as exc:  # noqa: BLE001 - cloudpickle raises many types
        from .notebook import find_unpicklable  # names the variable, not just its type

        culprit = find_unpicklable(fn, lambda obj: cloudpickle.dumps(obj, protocol=4))
        raise SpawnError(
            "cannot send %s to the child: %s: %s. %s cannot be pickled; create it inside the "
            "factory instead." % (label, type(exc).__name__, exc,
                                  "It uses %s, which" % culprit if culprit else
                                  "Something it refers to (a lock, an open file, a socket, "
                                  "a live app object)"),
            troubleshooting=[
                "Create unpicklable objects (apps, connections, locks) inside the factory",
                "Or move the factory into a module and pass 'module:factory()'",
            ],
            details={"target": label, "unpicklable": culprit},
        ) from exc
    return {"kind": "callable", "module": module, "payload": payload,
            "format": "cloudpickle", "label": label,
            "cloudpickle": getattr(cloudpickle, "__version__", None)}


def literal_call(source):
    """Parse ``name(args)`` with literal-only arguments .

    Returns ``(dotted_name, None)`` or ``(dotted_name, (args, kwargs))``; raises
    ``ValueError`` for anything that is not a name or a call with literal args.
    Nothing is evaluated beyond ``ast.literal_eval``.
    """
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ValueError("%r is too long: %d characters, at most %d"
                         % (_clip(source), len(source), MAX_EXPRESSION_LENGTH))
    try:
        node = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # ValueError: a NUL byte; Recursion/MemoryError: nesting past the bounds above
        raise ValueError("%r is not an attribute name or a call" % _clip(source)) from None
    call = None
    if isinstance(node, ast.Call):
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except (ValueError, TypeError, RecursionError, MemoryError):
            # TypeError: an unhashable key, e.g. f({[1]: 2})
            raise ValueError("arguments in %r must be literals (strings, numbers, True/False/None, "
                             "lists, dicts, tuples)" % source) from None
        if any(key is None for key in kwargs):
            raise ValueError("%r: **kwargs are not allowed in a target" % source)
        call = (args, kwargs)
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ValueError("%r is not an attribute name or a call of one" % source)
    parts.append(node.id)
    if len(parts) > MAX_DOTTED_PARTS:
        raise ValueError("%r has %d dotted parts, at most %d"
                         % (_clip(source), len(parts), MAX_DOTTED_PARTS))
    return ".".join(reversed(parts)), call
