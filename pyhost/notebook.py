"""Notebook sessions: detection, and what cell-defined code needs to reach the child.

A factory defined in a notebook cell cannot be imported by name in the child,
so it travels by value (cloudpickle), with every global and closure variable
it uses. When one of those cannot be pickled (a lock, an open connection, a
live app), "cannot pickle '_thread.lock' object" alone does not say which
one: :func:`find_unpicklable` names it.
"""
from __future__ import annotations

import sys
import types
from typing import Any, Callable, Iterator, List, Optional, Set, Tuple

__all__ = ["in_notebook", "find_unpicklable"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain terminal IPython)."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    try:
        shell = ipython_module.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    if shell is None:
        return False
    # A kernel's shell has a .kernel; Colab's and VS Code's shells may lack the
    # IPKernelApp config section, terminal IPython has neither.
    return getattr(shell, "kernel", None) is not None or "IPKernelApp" in getattr(
        shell, "config", {})


def find_unpicklable(fn: Any, dumps: Callable[[Any], bytes]) -> Optional[str]:
    """Name what ``fn`` refers to that ``dumps`` cannot pickle, e.g.
    ``"closure variable 'lock' (a _thread.lock)"``; None if no single culprit is found.

    Follows functions it refers to, so ``helper → global 'conn'`` is named too.
    """
    # A factory wrapped for shipping (pyhost.hosted.with_source): blame its own variables.
    return _search(getattr(fn, "__pyhost_shipped__", fn), dumps, [], set())


def _search(fn: Any, dumps: Callable[[Any], bytes], path: List[str], seen: Set[int]
            ) -> Optional[str]:
    if id(fn) in seen or len(path) > 4:
        return None
    seen.add(id(fn))
    for kind, name, value in _references(fn):
        try:
            dumps(value)
        except Exception:  # noqa: BLE001 - cloudpickle raises many types
            where = path + ["%s %r" % (kind, name)]
            if isinstance(value, (types.FunctionType, types.MethodType)) or hasattr(
                    value, "func"):
                deeper = _search(value, dumps, where, seen)
                if deeper is not None:
                    return deeper
            return "%s (a %s)" % (" → ".join(where), _type_name(value))
    return None


def _references(fn: Any) -> Iterator[Tuple[str, str, Any]]:
    """(kind, name, value) for the closure variables, globals and defaults ``fn`` uses."""
    if hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        yield "partial function", _name(fn.func), fn.func
        for index, value in enumerate(fn.args):
            yield "partial argument", str(index), value
        for key, value in (fn.keywords or {}).items():
            yield "partial argument", key, value
        return
    fn = getattr(fn, "__func__", fn)  # bound methods: the function behind them
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell: nothing to pickle
            continue
        yield "closure variable", name, value
    fn_globals = getattr(fn, "__globals__", {})
    for name in _global_names(code):
        if name in fn_globals:
            yield "global", name, fn_globals[name]
    for index, value in enumerate(getattr(fn, "__defaults__", None) or ()):
        yield "default argument", str(index), value
    for name, value in (getattr(fn, "__kwdefaults__", None) or {}).items():
        yield "default argument", name, value


def _global_names(code: types.CodeType) -> List[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, comprehensions
            names.extend(n for n in _global_names(const) if n not in names)
    return names


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    if module in ("builtins", None):
        return cls.__qualname__
    return "%s.%s" % (module, cls.__qualname__)
