"""Classifying failures into plain error records (child side).

Errors cross the pipe as dicts (``type``, ``message``, ``details``...), never
as pickled exceptions: the parent rebuilds the typed ``HostError``.
"""
import os
import traceback

from .paths import is_library_path, module_name_for_file

__all__ = ["TargetNotFound", "NotWSGI", "ShipError", "TargetRefused", "CannotServe",
           "record", "app_traceback", "classify_load_error"]

# ErrorType values, spelled out: the child does not import pyhost.errors.
SCRIPT_NOT_FOUND = "SCRIPT_NOT_FOUND"
DEPENDENCY_ERROR = "DEPENDENCY_ERROR"
APP_LOAD_ERROR = "APP_LOAD_ERROR"
PORT_IN_USE = "PORT_IN_USE"
NETWORK_ERROR = "NETWORK_ERROR"
PROCESS_SPAWN_ERROR = "PROCESS_SPAWN_ERROR"

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class TargetNotFound(Exception):
    """The target's module, file or attribute does not exist."""


class NotWSGI(Exception):
    """The target resolved to something that is neither a WSGI nor an ASGI app."""


class TargetRefused(Exception):
    """The target would call something that is not the app's own function (nothing ran)."""


class CannotServe(Exception):
    """The app was loaded, but the chosen server cannot serve it (``reason`` says why)."""

    def __init__(self, message, reason, missing_module=None, **details):
        super().__init__(message)
        self.reason = reason
        self.missing_module = missing_module
        self.details = details


class ShipError(Exception):
    """A by-value callable could not be rebuilt in the child."""

    details: dict = {}  # e.g. the cloudpickle versions when they differ


def record(error_type, message, exc=None, with_traceback=True, **details):
    found = {"type": error_type, "message": message, "details": details}
    if exc is not None and with_traceback:
        found["remote_traceback"] = app_traceback(exc)
    return found


def _is_app_frame(frame):
    """False for pyhost's loader and importlib's machinery: noise in the app's traceback."""
    filename = frame.filename
    return not (os.path.abspath(filename).startswith(_HERE)
                or filename.startswith("<frozen") or os.sep + "importlib" + os.sep in filename
                or frame.name == "pyhost_shipped_factory")  # pyhost.hosted's by-value wrapper


def app_traceback(exc):
    """The traceback as ``python app.py`` would show it: the app's frames, not the loader's."""
    formatted = traceback.TracebackException.from_exception(exc)
    seen = set()
    todo = [formatted]
    while todo:  # the exception and the ones it was raised from / during
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [frame for frame in current.stack if _is_app_frame(frame)])
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return "".join(formatted.format())


def own_module(target):
    """The module name the target itself lives in (None for a by-value callable)."""
    if target["kind"] == "file":
        return module_name_for_file(target["module"])[1]
    return target.get("module")


def classify_load_error(exc, target):
    """Decide SCRIPT_NOT_FOUND vs DEPENDENCY_ERROR vs APP_LOAD_ERROR for ``exc``."""
    label = target["label"]
    own = own_module(target)
    if isinstance(exc, TargetNotFound):
        return record(SCRIPT_NOT_FOUND, "App not found: %s" % exc, None, target=label)
    if isinstance(exc, TargetRefused):
        return record(APP_LOAD_ERROR, str(exc), None, target=label, reason="refused_target")
    if isinstance(exc, CannotServe):
        found = record(DEPENDENCY_ERROR if exc.reason == "missing_server" else APP_LOAD_ERROR,
                       str(exc), None, target=label, reason=exc.reason, **exc.details)
        if exc.missing_module:
            found["missing_module"] = exc.missing_module
        return found
    if isinstance(exc, ShipError):
        return record(PROCESS_SPAWN_ERROR, str(exc), exc, target=label, **exc.details)
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        missing = exc.name
        if own and (own == missing or own.startswith(missing + ".")):
            if target["kind"] == "callable":
                return record(PROCESS_SPAWN_ERROR,
                              "%s lives in module %r, which the child cannot import"
                              % (label, missing), exc, target=label)
            return record(SCRIPT_NOT_FOUND, "App not found: no module named %r (target %s)"
                          % (missing, label), None, target=label)
        if own and own.split(".")[0] == missing.split(".")[0] and target["kind"] != "callable":
            return _load_error(exc, target, "the app imports its own missing module %r" % missing)
        found = record(DEPENDENCY_ERROR,
                       "Missing dependency: no module named %r (needed by %s)" % (missing, label),
                       exc, module=own)
        found["missing_module"] = missing
        return found
    if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError) and exc.name:
        if not (own and own.split(".")[0] == exc.name.split(".")[0]):
            found = record(DEPENDENCY_ERROR,
                           "Dependency problem while importing %s: %s (is %r the right version?)"
                           % (label, exc, exc.name), exc, module=own)
            found["missing_module"] = exc.name
            return found
    if isinstance(exc, NotWSGI):
        return record(APP_LOAD_ERROR, str(exc), exc, target=label, module=own, reason="not_wsgi")
    return _load_error(exc, target, None)


def _load_error(exc, target, prefix):
    where = _where(exc)
    text = "%s: %s" % (type(exc).__name__, exc)
    message = "The app raised while loading %s: %s%s" % (
        target["label"], "%s: " % prefix if prefix else "", text)
    if where:
        message += " (at %s)" % where
    return record(APP_LOAD_ERROR, message, exc, where=where, module=target.get("module"),
                  target=target["label"])


def _where(exc):
    if isinstance(exc, SyntaxError) and exc.filename:
        return "%s:%s" % (exc.filename, exc.lineno)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_app_frame(f)]
    # The line to fix is the app's own, not the library frame that raised
    # (a duplicate Flask endpoint raises deep inside flask/).
    own = [f for f in frames if not is_library_path(f.filename)]
    frames = own or frames
    if not frames:
        return None
    frame = frames[-1]
    return "%s:%s" % (frame.filename, frame.lineno)
