"""``pyhost run``: serve an app in the foreground until Ctrl+C or SIGTERM.

Threads: the main thread waits for events and does the stopping; the app is
started on ``pyhost-cli-start`` (so Ctrl+C during a slow import stops at once)
and stopped on ``pyhost-cli-stop`` (so a second Ctrl+C can kill the app while
the graceful stop waits). Signal handlers only set events.
"""
from __future__ import annotations

import argparse
import signal
import threading
from typing import Any, Dict, List, Optional

from .console import print_error, say, setup_logging
from .options import EXIT_INTERRUPTED, EXIT_OK, build_config

__all__ = ["cmd_run"]

_WAKING_EVENTS = ("crashed", "gave_up", "ready", "restarted")


def cmd_run(args: argparse.Namespace) -> int:
    from .. import FlaskHost, HostError, HostState

    config = build_config(args)
    reloading = bool(getattr(args, "reload", False))
    spec: Optional[Dict[str, Any]] = None
    paths: List[str] = []
    if reloading:
        from ..targets import parse_target
        from .reload import _require_watchfiles, watched_paths

        try:
            _require_watchfiles()  # before anything starts
            spec = parse_target(args.target)
        except HostError as error:
            return print_error(error, "Cannot run %s with --reload" % args.target)
        paths = list(args.reload_dir or watched_paths(spec))
    wake = threading.Event()  # something for the main thread to look at
    stop_requested = threading.Event()
    force = threading.Event()
    host = FlaskHost(args.target, config=config,
                     on_event=lambda event: wake.set() if event.name in _WAKING_EVENTS else None)
    setup_logging(quiet=args.quiet, verbose=args.verbose)

    def on_signal(signum: int, frame: Any) -> None:
        # The first asks for a graceful stop, the second for a kill.
        (force if stop_requested.is_set() else stop_requested).set()
        wake.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in _stop_signals()}
    outcome: Dict[str, Any] = {}

    def start() -> None:
        try:
            host.start()
        except HostError as exc:
            outcome["error"] = exc
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            outcome["crash"] = exc
        finally:
            outcome["done"] = True
            wake.set()

    starter = threading.Thread(target=start, name="pyhost-cli-start", daemon=True)
    starter.start()
    reloader = None
    announced = False
    code = EXIT_OK
    try:
        while True:
            # Events wake this loop; the timeout only re-reads the state, for a
            # crash without auto_restart (FAILED is set after the "crashed" event).
            wake.wait(1.0)
            wake.clear()
            if stop_requested.is_set():
                break
            if "crash" in outcome:
                raise outcome["crash"]
            if "error" in outcome:
                code = print_error(outcome["error"], "Could not start %s" % host.name,
                                   traceback=args.verbose, output_shown=not args.quiet)
                break
            if outcome.get("done") and not announced:
                announced = True
                say("[pyhost] Serving %s at %s (pid %s); press Ctrl+C to stop"
                    % (host.name, host.url, host.pid))
                if reloading:
                    reloader = _start_reloader(host, spec, paths, args.verbose)
            if reloading:
                continue  # a failed reload waits for the next change, it does not end the run
            error = host.last_error
            if host.state is HostState.FAILED and error is not None:
                host.stop()  # a deliberate stop: the error becomes history
                code = print_error(error, "%s is down" % host.name, traceback=args.verbose,
                                   output_shown=not args.quiet)
                break
    finally:
        if reloader is not None:
            reloader.close()
        if stop_requested.is_set():
            say("[pyhost] Stopping %s... (Ctrl+C again to kill it now)" % host.name)
        killed = _stop(host, wake, force)
        starter.join(config.shutdown_timeout + 5)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_INTERRUPTED if killed else code


def _stop(host: Any, wake: threading.Event, force: threading.Event) -> bool:
    """Stop gracefully on another thread; kill the app if ``force`` is set meanwhile."""
    stopped = threading.Event()

    def stop() -> None:
        try:
            host.stop()
        finally:
            stopped.set()
            wake.set()

    stopper = threading.Thread(target=stop, name="pyhost-cli-stop", daemon=True)
    stopper.start()
    killed = False
    while not stopped.is_set():
        wake.wait(0.5)
        wake.clear()
        if force.is_set() and not killed:
            killed = True
            say("[pyhost] Second Ctrl+C: killing %s (pid %s) now" % (host.name, host.pid))
            host.kill()
    stopper.join()
    return killed


def _start_reloader(host: Any, spec: Any, paths: List[str], verbose: bool) -> Any:
    from .reload import Reloader, reload_host

    def report(error: Any, what: str) -> None:
        print_error(error, what, traceback=verbose, ending=False)

    reloader = Reloader(paths, lambda changed: reload_host(host, spec, changed, report, say))
    reloader.start()
    say("[pyhost] Watching %s for changes (--reload)" % ", ".join(reloader.paths))
    return reloader


def _stop_signals() -> List[int]:
    names = ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]
