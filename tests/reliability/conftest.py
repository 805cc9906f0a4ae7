"""The reliability suite: a short form in the normal run, a long form with ``--long``.

``pytest tests/reliability --long`` (or ``python bench/reliability.py --long``)
repeats each scenario as many times as docs/reliability.md reports.
"""
from __future__ import annotations

import os

import pytest

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="run the reliability suite's long form (about 15 minutes)")


@pytest.fixture(scope="session")
def long_form(request) -> bool:
    return bool(request.config.getoption("--long"))


def app(name: str) -> str:
    """The target of a file in tests/reliability/apps."""
    return "%s:app" % os.path.join(APPS, name + ".py")


def hang_line(name: str) -> str:
    """``path:line`` of the line marked ``HANG-LINE`` in an app: where it is stuck."""
    path = os.path.join(APPS, name + ".py")
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if "HANG-LINE" in line:
                return "%s:%d" % (path, number)
    raise AssertionError("no HANG-LINE in %s" % path)
