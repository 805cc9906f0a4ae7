"""Facts about the distribution itself, for install lines in messages.

The import name is ``pyhost``; the name on the package index is
``pyhost-supervisor`` (``pyhost`` there is an unrelated project). Stdlib only:
the child imports this too.
"""
DISTRIBUTION = "pyhost-supervisor"


def pip_install(extra: str = "") -> str:
    """The ``pip install`` line for the distribution, with ``extra`` if given."""
    if extra:
        return "pip install '%s[%s]'" % (DISTRIBUTION, extra)
    return "pip install %s" % DISTRIBUTION
