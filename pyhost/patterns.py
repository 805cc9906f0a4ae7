"""What a child's output says about a death it did not report.

A child that reports its failure over the pipe gets a typed error from the
report. One that dies during startup without a report has only its output: an
app that catches ``ImportError`` and calls ``sys.exit(1)``, or that runs its
own server and prints "Address already in use". Its output tail is matched
against the patterns the Node.js bridge used ("address already in use", "no
module named", ...), newest line first; a match names the error type, which
decides whether a restart can help (a missing module or a taken port stay so).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, NamedTuple, Optional, Pattern, Tuple

from .errors import ErrorType

__all__ = ["Diagnosis", "diagnose"]


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
