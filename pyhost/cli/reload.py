"""``pyhost run --reload``: watch the app's files, restart the app when they change.

The watching is watchfiles' (Rust ``notify``, the watcher uvicorn uses). A
change is first imported in a fresh interpreter (:func:`pyhost.preflight.
check_import`): when the new code does not import, the typed error is shown
and the running app keeps serving the previous code, instead of being stopped
for code that cannot start. When it imports, the app is restarted through the
host's normal restart path (``FlaskHost.restart()``: graceful stop, start on the
same port).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

from .._meta import pip_install

__all__ = ["Reloader", "watched_paths"]

log = logging.getLogger("pyhost")

#: Changes closer together than this are one reload (an editor's save writes
#: several times; a `git checkout` touches many files).
DEBOUNCE_MS = 100


def _require_watchfiles() -> Any:
    try:
        import watchfiles
    except ImportError:
        from ..errors import ErrorType, make_error

        raise make_error(
            ErrorType.DEPENDENCY_ERROR,
            "--reload needs the watchfiles package, which is not installed: %s"
            % pip_install("reload"),
            missing_module="watchfiles",
            troubleshooting=["Install it: %s" % pip_install("reload"),
                             "Or run without --reload"],
        ) from None
    return watchfiles


def watched_paths(spec: Dict[str, Any]) -> List[str]:
    """Where the app's code lives, without importing it.

    A file target: its directory. A module target: its top-level package's
    directory, or the directory of a top-level module (``find_spec`` of a
    top-level name locates it without running it). Else the current directory.
    """
    if spec.get("kind") == "file":
        return [os.path.dirname(spec["module"])]
    top = str(spec.get("module") or "").split(".")[0]
    found = None
    if top:
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            found = None
    if found is not None:
        locations = list(found.submodule_search_locations or [])
        if locations:
            return [locations[0]]
        if found.origin and os.path.isfile(found.origin):
            return [os.path.dirname(found.origin)]
    return [os.getcwd()]


class Reloader:
    """Calls ``on_change(changed_paths)`` on its own thread after each batch of changes."""

    def __init__(self, paths: Sequence[str], on_change: Callable[[List[str]], None]) -> None:
        self._watchfiles = _require_watchfiles()
        missing = [path for path in paths if not os.path.isdir(path)]
        if missing:
            raise ValueError("--reload-dir: no such directory %s" % ", ".join(missing))
        self.paths = [os.path.abspath(path) for path in paths]
        self.on_change = on_change
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self, timeout: float = 5.0) -> "Reloader":
        """Start watching; returns once the watcher runs (its first tick), or after ``timeout``."""
        self._thread = threading.Thread(target=self._run, name="pyhost-reload", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        return self

    def _run(self) -> None:
        watchfiles = self._watchfiles
        changes = watchfiles.watch(
            *self.paths, watch_filter=watchfiles.PythonFilter(), debounce=DEBOUNCE_MS,
            step=50, stop_event=self._stop, raise_interrupt=False, yield_on_timeout=True,
            rust_timeout=300)
        for batch in changes:
            self._ready.set()
            if self._stop.is_set():
                return
            if not batch:  # a timeout tick: the watcher is running
                continue
            paths = sorted({path for _, path in batch})
            try:
                self.on_change(paths)
            except Exception:  # noqa: BLE001 - a reload must never end the watching
                log.exception("❌ reloading after a change to %s failed", ", ".join(paths))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)


def reload_host(host: Any, spec: Dict[str, Any], changed: List[str],
                report: Callable[[Any, str], None], say: Callable[[str], None]) -> bool:
    """Import the changed code in a fresh interpreter, then restart ``host`` if it imports.

    Returns True when the app was restarted. A failed import is passed to
    ``report`` and the running app is left alone.
    """
    from ..errors import HostError
    from ..preflight import check_import

    names = ", ".join(os.path.relpath(path) for path in changed[:3])
    if len(changed) > 3:
        names += " and %d more" % (len(changed) - 3)
    try:
        check_import(spec, host.config)
    except HostError as error:
        report(error, "Not reloaded: %s changed, but the new code does not import; %s keeps "
                      "serving the previous code (pid %s)" % (names, host.name, host.pid))
        return False
    say("[pyhost] ↻ %s changed: restarting %s" % (names, host.name))
    try:
        host.restart()
    except HostError as error:
        report(error, "Reloaded code of %s did not start; waiting for the next change"
               % host.name)
        return False
    say("[pyhost] ↻ Reloaded %s at %s (pid %s)" % (host.name, host.url, host.pid))
    return True
