"""Each setting's facts, written once on the ``HostConfig`` field that holds it (machinery).

A field is declared with :func:`setting`; its ``metadata`` then carries what
every surface needs to know about it:

- ``help``: one sentence for ``--help``, the pytest options and the docs;
- ``env``: the environment variable read by ``HostConfig.from_env``
  (``PYHOST_<FIELD>``; None when the field is not read from the environment);
- ``flag``: the ``pyhost`` command-line option (None: no option);
- ``kind``: ``int``, ``float``, ``bool``, ``str``, ``tuple`` or ``dict``;
  ``optional``: whether None is allowed (``none`` in text);
- ``choices``, ``min``, ``max`` (``above``: the minimum itself is excluded);
- ``commands``: which ``pyhost`` commands take the flag; ``pytest``: whether the
  pytest plugin offers ``--pyhost-<field>`` and an ini value.

From these, :func:`parse_text` reads a value from text (environment, ini file,
command line), :func:`check_bounds` validates numbers and choices, and
:func:`config_reference` writes the reference table of the docs.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence

__all__ = ["setting", "settings", "parse_text", "check_bounds", "describe", "default_of",
           "bounds_text", "finish", "ENV_PREFIX", "NONE_WORDS"]

ENV_PREFIX = "PYHOST_"
NONE_WORDS = ("none", "null", "off", "")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_KINDS = (int, float, bool, str, tuple, dict)


def setting(default: Any = dataclasses.MISSING, *, help: str, kind: type,  # noqa: A002
            optional: bool = False, flag: Any = True, short: Optional[str] = None,
            env: bool = True, choices: Optional[Sequence[Any]] = None,
            min: Any = None, max: Any = None, above: bool = False,  # noqa: A002
            unit: Optional[str] = None, metavar: Optional[str] = None,
            commands: Sequence[str] = ("run", "check"), pytest: bool = False,
            group: str = "hosting",
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A ``dataclasses.field`` carrying the setting's metadata.

    ``flag=True`` derives ``--field-name`` from the field's name (filled in by
    :func:`finish`, like ``env``); a string is used as is; None means no option.
    """
    if kind not in _KINDS:
        raise TypeError("kind must be one of %s" % ", ".join(k.__name__ for k in _KINDS))
    metadata: Dict[str, Any] = {
        "help": help, "kind": kind, "optional": optional, "flag": flag, "short": short,
        "env": env, "choices": tuple(choices) if choices else None, "min": min, "max": max,
        "above": above,
        "unit": ("seconds" if kind is float else None) if unit is None else (unit or None),
        "metavar": metavar or ("SECONDS" if kind is float and unit is None else None),
        "commands": tuple(commands), "pytest": pytest,
        "group": group,
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def finish(cls: type) -> type:
    """Class decorator (after ``@dataclass``): name-derived ``env`` and ``flag`` values."""
    for field in dataclasses.fields(cls):
        if not field.metadata:
            continue
        meta = dict(field.metadata)
        if meta.get("env") is True:
            meta["env"] = ENV_PREFIX + field.name.upper()
        elif not meta.get("env"):
            meta["env"] = None
        if meta.get("flag") is True:
            meta["flag"] = "--" + field.name.replace("_", "-")
        field.metadata = types.MappingProxyType(meta)
    return cls


def settings(cls: Any) -> Iterator[dataclasses.Field]:
    """The fields of ``cls`` declared with :func:`setting`, in declaration order."""
    return (field for field in dataclasses.fields(cls) if "help" in field.metadata)


def default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


# --------------------------------------------------------------------------- text
def parse_text(field: dataclasses.Field, raw: str) -> Any:
    """The value of ``field`` written as text (``PYHOST_PORT=0``, an ini line, an option).

    Raises ``ValueError`` naming the field and the kind expected.
    """
    meta = field.metadata
    kind = meta["kind"]
    text = raw.strip()
    if meta["optional"] and text.lower() in NONE_WORDS:
        return None
    try:
        if "\x00" in text:
            raise ValueError(text)
        if kind is bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(text)
        if kind is int:
            if len(text) > 20:  # int("9" * 10**6) is slow and never a sane setting
                raise ValueError(text)
            return int(text)
        if kind is float:
            if len(text) > 40:
                raise ValueError(text)
            return float(text)
        if kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if kind is dict:
            raise ValueError(text)  # env: set it in the environment itself
    except ValueError:
        expected = {bool: "true/false", int: "an integer", float: "a number",
                    dict: "a setting"}.get(kind, "text")
        raise ValueError("HostConfig.%s: cannot read %r as %s%s" % (
            field.name, _short(raw), expected, " or 'none'" if meta["optional"] else "")) from None
    return text


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "...(%d characters)" % len(text)


# --------------------------------------------------------------------------- bounds
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def bounds_text(meta: Mapping[str, Any]) -> str:
    """``"1 to 256"``, ``"> 0, at most 31536000"``: the bounds as the docs and errors say them."""
    low, high = meta.get("min"), meta.get("max")
    if low is not None and high is not None and not meta.get("above"):
        return "%s to %s" % (low, high)
    parts = []
    if low is not None:
        parts.append("%s %s" % (">" if meta.get("above") else ">=", low))
    if high is not None:
        parts.append("<= %s" % high)
    return ", ".join(parts)


def check_bounds(instance: Any) -> None:
    """Kinds, ``choices``, ``min`` and ``max`` of every numeric or choice field.

    Raises ``ValueError("HostConfig.<field>: ... (got <value>)")``.
    """
    for field in settings(type(instance)):
        meta = field.metadata
        value = getattr(instance, field.name)
        if value is None and meta["optional"]:
            continue
        kind = meta["kind"]

        def fail(problem: str, name: str = field.name, value: Any = value) -> None:
            raise ValueError("HostConfig.%s: %s (got %r)" % (name, problem, value))

        if kind is str and not isinstance(value, str):
            fail("must be a string" + (" or None" if meta["optional"] else ""))
        if kind is bool and not isinstance(value, bool):
            fail("must be True or False" + (" or None" if meta["optional"] else ""))
        if kind is int and not _is_int(value):
            fail("must be " + describe(meta))
        if kind is float and not _is_number(value):
            fail("must be " + describe(meta))
        if kind is float and meta["max"] is not None and not value <= meta["max"]:
            # inf or 1e10 would overflow the waits that supervision relies on
            unit = " of %s" % meta["unit"] if meta["unit"] else ""
            fail("must be a finite number%s, at most %s" % (unit, meta["max"]))
        if kind in (int, float):
            low, high = meta["min"], meta["max"]
            too_low = low is not None and (value <= low if meta["above"] else value < low)
            if too_low or (high is not None and value > high):
                fail("must be " + describe(meta))
        if meta["choices"] and value not in meta["choices"]:
            fail("must be one of %s%s" % (", ".join(map(str, meta["choices"])),
                                          " or None" if meta["optional"] else ""))


def describe(meta: Mapping[str, Any]) -> str:
    """``"a positive number of seconds (at most 31536000)"``, ``"an integer from 1 to 256"``."""
    kind, low, high = meta["kind"], meta.get("min"), meta.get("max")
    if kind is int:
        if low is not None and high is not None:
            return "an integer from %s to %s" % (low, high)
        return "an integer" + _range(meta)
    noun = "number of %s" % meta["unit"] if meta.get("unit") else "number"
    if low == 0:
        text = ("a positive " if meta.get("above") else "zero or a positive ") + noun
        return text + (" (at most %s)" % high if high is not None else "")
    return "a " + noun + _range(meta)


def _range(meta: Mapping[str, Any]) -> str:
    text = bounds_text(meta)
    return (" (%s)" % text) if text else ""
