"""Notebook detection (Jupyter/IPython kernels)."""
from __future__ import annotations

import sys

__all__ = ["in_notebook"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain terminal IPython)."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    try:
        shell = ipython_module.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
