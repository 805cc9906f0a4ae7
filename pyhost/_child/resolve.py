"""Finding what a target names: its module, its attribute, a shipped callable (child side).

A target is code, like ``FLASK_APP``; still, the factory form
(``"module:create_app(...)"``) may call only a Python function defined in the
target's own package, so ``"os:system('...')"`` or ``"builtins:exec(...)"``
is refused here before anything is called (the parent refuses them too,
before any process starts).
"""
import importlib
import importlib.util
import inspect
import os
import pickle
import sys

from .failures import ShipError, TargetNotFound, TargetRefused
from .paths import is_library_path, module_name_for_file

__all__ = ["import_target_module", "resolve_attr", "unship", "module_name_for_file",
           "check_callable"]


def unship(target):
    """The callable a ``"callable"`` target carries (inherited under fork, else pickled)."""
    if target.get("format") == "inherit":
        return target["value"]  # fork: the parent's own object, nothing was pickled
    payload = target["payload"]
    details = {}
    try:
        if target.get("format") == "cloudpickle":
            import cloudpickle

            theirs, ours = target.get("cloudpickle"), getattr(cloudpickle, "__version__", None)
            if theirs and ours and theirs != ours:
                details = {"cloudpickle_parent": theirs, "cloudpickle_child": ours,
                           "pin": "%s -m pip install cloudpickle==%s" % (sys.executable, theirs)}
        return pickle.loads(payload)
    except ModuleNotFoundError:
        raise
    except Exception as exc:
        mismatch = (" (pickled with cloudpickle %(cloudpickle_parent)s, this interpreter has "
                    "%(cloudpickle_child)s: %(pin)s)" % details) if details else ""
        error = ShipError("could not rebuild %s in the child: %s: %s%s"
                          % (target["label"], type(exc).__name__, exc, mismatch))
        error.details = details
        raise error from exc


def import_target_module(target):
    if target["kind"] == "file":
        path = target["module"]
        if not os.path.isfile(path):
            raise TargetNotFound("no such file: %s" % path)
        root, name = module_name_for_file(path)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith((exc.name or "?") + "."):
                # Not importable by name (e.g. a dash in the file name): load by path.
                return _load_file(name, path)
            raise
        if not _is_file_of(module, path):
            # The name is taken by another module: one this process already imported
            # (socket.py, inspect.py: the child uses them) or one imported before a fork.
            return _load_file("pyhost_app_" + name.replace(".", "_"), path)
        return module
    name = target["module"]
    return importlib.import_module(name)


def _load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_file_of(module, path):
    filename = getattr(module, "__file__", None)
    return bool(filename) and os.path.realpath(filename) == os.path.realpath(path)


def resolve_attr(module, expr, label):
    obj = module
    for part in expr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            hint = ""
            if module.__name__ in ("__main__", "__mp_main__"):
                hint = ("; this child re-ran the parent's script without its "
                        "`if __name__ == '__main__':` block, so names defined there do not "
                        "exist here: define the app at the script's top level, or pass a "
                        "factory function")
            raise TargetNotFound(
                "%s: module %r has no attribute %r%s" % (label, module.__name__, expr, hint)
            ) from None
    return obj


def is_stdlib(name):
    """True for a standard-library (or built-in) top-level module name."""
    top = name.split(".")[0]
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()):
        return True
    module = sys.modules.get(top)
    filename = getattr(module, "__file__", None)
    if filename and is_library_path(filename):
        return "site-packages" not in filename and "dist-packages" not in filename
    return False


def check_callable(obj, module, label):
    """Refuse to call ``obj`` unless it is a Python function of ``module``'s own package.

    ``module`` is the target's module; a factory re-exported from a submodule
    of the same package (``myapp:create_app`` defined in ``myapp.factory``) is allowed.
    """
    own = module.__name__.split(".")[0]
    function = obj.__func__ if inspect.ismethod(obj) else obj
    try:
        # A decorated factory (functools.wraps, pyhost's @hosted) is judged by what it wraps.
        function = inspect.unwrap(function)
    except ValueError:  # a __wrapped__ cycle
        pass
    defined_in = getattr(function, "__module__", None) or ""
    if own in ("__main__", "__mp_main__") or module.__name__.startswith("pyhost_app_"):
        own = module.__name__  # a file loaded by path: its functions carry this name
    why = None
    if not inspect.isfunction(function):
        why = "%r is a %s, not a Python function" % (getattr(obj, "__name__", obj),
                                                     type(obj).__name__)
    elif is_stdlib(own) or is_stdlib(defined_in):
        why = "%s is part of the standard library" % (own if is_stdlib(own) else defined_in)
    elif defined_in.split(".")[0] != own.split(".")[0]:
        why = "%s() is defined in %r, outside the target's package %r" % (
            function.__name__, defined_in, own)
    if why:
        raise TargetRefused(
            "Refused target %s: %s. A factory target may only call a function defined in "
            "the app's own package (e.g. 'myapp:create_app()'); nothing was called."
            % (label, why))
