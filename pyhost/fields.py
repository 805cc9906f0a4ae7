"""The ``HostConfig`` fields' metadata, and the reference table generated from it.

Every field of :class:`pyhost.config.HostConfig` is declared with
:func:`pyhost.setting.setting`; its ``metadata`` carries ``help``, ``env`` (the
``PYHOST_<FIELD>`` variable or None), ``flag`` (the ``pyhost`` option or None),
``kind``, ``optional``, ``choices``, ``min``/``max``, ``commands`` and
``pytest``. The environment parsing, the ``pyhost`` options, the pytest options
and :func:`config_reference` are all generated from it.
"""
from __future__ import annotations

from typing import Any, Mapping

from .config import HostConfig
from .setting import (
    ENV_PREFIX,
    NONE_WORDS,
    bounds_text,
    check_bounds,
    default_of,
    describe,
    parse_text,
    settings,
)

__all__ = ["config_reference", "settings", "parse_text", "check_bounds", "describe",
           "default_of", "bounds_text", "ENV_PREFIX", "NONE_WORDS"]


# --------------------------------------------------------------------------- docs
def _type_text(meta: Mapping[str, Any]) -> str:
    name = {int: "int", float: "float", bool: "bool", str: "str",
            tuple: "tuple of str", dict: "dict of str"}[meta["kind"]]
    if meta.get("unit"):
        name += " (%s)" % meta["unit"]
    if meta["choices"]:
        name = " \\| ".join("`%s`" % choice for choice in meta["choices"])
    return name + (" or None" if meta["optional"] else "")


def config_reference(cls: Any = HostConfig) -> str:
    """A markdown table of every ``HostConfig`` field: type, default, env var, CLI flag, help."""
    rows = ["| Field | Type | Default | Environment | CLI flag | Description |",
            "|---|---|---|---|---|---|"]
    for field in settings(cls):
        meta = field.metadata
        default = default_of(field)
        default_text = "auto" if field.name == "start_method" and default is None else repr(
            default if not isinstance(default, tuple) or default else ())
        flag = meta["flag"]
        if flag:
            flag = "`%s`%s" % (flag, " (`%s`)" % meta["short"] if meta["short"] else "")
            if tuple(meta["commands"]) == ("run",):
                flag += " (run)"
        description = meta["help"]
        bounds = bounds_text(meta)
        if bounds and meta["kind"] in (int, float):
            description += " Allowed: %s." % bounds
        rows.append("| `%s` | %s | `%s` | %s | %s | %s |" % (
            field.name, _type_text(meta), default_text,
            "`%s`" % meta["env"] if meta["env"] else "–", flag or "–",
            description.replace("|", "\\|")))
    return "\n".join(rows) + "\n"
