"""Reading failures from evidence: output patterns, stack dumps."""
from __future__ import annotations

import os

from pyhost.diagnosis import diagnose, stuck_at
from pyhost.errors import ErrorType


def test_output_patterns_name_the_error_type():
    found = diagnose(["Traceback ...", "ModuleNotFoundError: No module named 'flask_cors'"])
    assert found.type is ErrorType.DEPENDENCY_ERROR
    assert found.details["missing_module"] == "flask_cors"
    assert diagnose(["OSError: [Errno 98] Address already in use"]).type is ErrorType.PORT_IN_USE
    assert diagnose(["Port 5001 is in use by another program."]).details["port"] == 5001
    assert diagnose(["PermissionError: [Errno 13] Permission denied"]).type \
        is ErrorType.NETWORK_ERROR


def test_the_newest_matching_line_wins_and_nothing_matches_plain_output():
    lines = ["No module named 'old_thing' (handled)", "OSError: Address already in use"]
    assert diagnose(lines).type is ErrorType.PORT_IN_USE
    assert diagnose(["starting...", "Segmentation fault"]) is None
    assert diagnose([]) is None


def test_stuck_at_is_the_apps_innermost_frame_in_a_faulthandler_dump():
    stdlib = os.path.dirname(os.__file__)
    dump = [
        "Thread 0x00007f (most recent call first):",
        '  File "%s/threading.py", line 320 in wait' % stdlib,
        "",
        "Current thread 0x00007e (most recent call first):",
        '  File "%s/re/__init__.py", line 166 in match' % stdlib,
        '  File "/srv/app/slow.py", line 7 in <module>',
        '  File "/venv/lib/python3.11/site-packages/pyhost/_child/load.py", line 40 in load_app',
    ]
    assert stuck_at(dump) == "/srv/app/slow.py:7 in <module>"
    assert stuck_at(dump[:3]) == "%s/threading.py:320 in wait" % stdlib  # only the stdlib
    assert stuck_at(["no frames here"]) is None
