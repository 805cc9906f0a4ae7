"""What the evidence says about a failed child, beyond its own report.

- :func:`diagnose`: the error type a report-less death's output shows;
- :func:`stuck_at`: where a hung child was, from its faulthandler stack dump;
- :func:`importable_here`: where this process finds a module another
  interpreter (``python=``) could not import.

On report-less deaths:

A child that reports its failure over the pipe gets a typed error from the
report. One that dies during startup without a report has only its output: an
app that catches ``ImportError`` and calls ``sys.exit(1)``, or that runs its
own server and prints "Address already in use". Its output tail is matched
against the patterns the Node.js bridge used ("address already in use", "no
module named", ...), newest line first; a match names the error type, which
decides whether a restart can help (a missing module or a taken port stay so).
"""
from __future__ import annotations

import importlib.util
import os
import re
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Pattern, Tuple

from .errors import ErrorType

__all__ = ["Diagnosis", "diagnose", "stuck_at", "importable_here"]

#: A frame line of faulthandler's dump: ``  File "/app/slow.py", line 5 in <module>``.
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


class Diagnosis(NamedTuple):
    """An error type read from output, with the line that showed it."""

    type: ErrorType
    message: str
    details: Dict[str, Any]


_Rule = Tuple[Pattern[str], ErrorType, str]

_RULES: Tuple[_Rule, ...] = (
    (re.compile(r"No module named ['\"]?(?P<module>[\w.]+)['\"]?", re.IGNORECASE),
     ErrorType.DEPENDENCY_ERROR, "no module named {module!r}"),
    (re.compile(r"cannot import name ['\"]?(?P<name>\w+)['\"]? from ['\"]?(?P<module>[\w.]+)",
                re.IGNORECASE),
     ErrorType.DEPENDENCY_ERROR, "cannot import name {name!r} from {module!r}"),
    (re.compile(r"address already in use|port (?P<port>\d+)? ?is (already )?in use",
                re.IGNORECASE),
     ErrorType.PORT_IN_USE, "the address is already in use"),
    (re.compile(r"permission denied", re.IGNORECASE),
     ErrorType.NETWORK_ERROR, "permission denied"),
    (re.compile(r"cannot assign requested address", re.IGNORECASE),
     ErrorType.NETWORK_ERROR, "the address is not available on this machine"),
)


def diagnose(lines: Iterable[str]) -> Optional[Diagnosis]:
    """The error type the output shows, newest line first; None when nothing matches."""
    for line in reversed(list(lines)):
        for pattern, error_type, summary in _RULES:
            found = pattern.search(line)
            if found is None:
                continue
            groups = {key: value for key, value in found.groupdict().items() if value}
            details: Dict[str, Any] = {"reason": "output_pattern", "line": line.strip()[:300]}
            if error_type is ErrorType.DEPENDENCY_ERROR and "module" in groups:
                details["missing_module"] = groups["module"]
            if "port" in groups:
                details["port"] = int(groups["port"])
            return Diagnosis(error_type, summary.format(**{**{"name": "?", "module": "?"},
                                                          **groups}), details)
    return None


def stuck_at(lines: List[str]) -> Optional[str]:
    """The innermost frame of the app in a faulthandler dump (``path:line in func``).

    faulthandler lists the current thread first, most recent call first; the
    first frame outside pyhost, the standard library and site-packages is where
    the app was.
    """
    fallback = None
    for line in lines:
        found = _FRAME.match(line)
        if not found:
            continue
        where = "%s:%s in %s" % (found["file"], found["line"], found["func"])
        path = found["file"]
        if os.sep + "pyhost" + os.sep in path or "site-packages" in path or path.startswith("<"):
            continue
        if path.startswith(os.path.dirname(os.__file__) + os.sep):
            fallback = fallback or where
            continue
        return where
    return fallback


def importable_here(target: Dict[str, Any], message: str) -> Optional[str]:
    """The sys.path entry this process imports ``target``'s module from, if any.

    Asked when the child reported the module's top-level package missing. Only
    the top-level name is looked up (nothing is imported): a child under
    ``python=`` has its own sys.path, without entries this process added.
    """
    if target.get("kind") != "module" or not target.get("module"):
        return None
    top = str(target["module"]).split(".")[0]
    if "no module named '%s'" % top not in message.lower():
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isabs(spec.origin):
        return None
    origin = os.path.dirname(spec.origin)
    return os.path.dirname(origin) if spec.submodule_search_locations else origin
