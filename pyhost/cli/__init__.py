"""The ``pyhost`` command (also ``python -m pyhost``): run, check, demo.

Only this layer prints and picks exit codes; the library raises typed errors.
Settings come from, in order: ``HostConfig`` defaults, ``PYHOST_*`` environment
variables (a ``.env`` file is read first when python-dotenv is installed, as
Flask's CLI does), then command-line options.

Modules: :mod:`.options` (parser generated from the config fields, exit codes,
reference), :mod:`.console` (what is printed), :mod:`.run`, :mod:`.check`,
:mod:`.reload` (``run --reload``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .console import print_error, say
from .options import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    build_config,
    build_parser,
    exit_code_for,
    load_dotenv,
    options_reference,
)

__all__ = ["main", "EXIT_CODES", "exit_code_for", "options_reference", "build_parser",
           "build_config", "print_error"]


def _add_cwd_to_path() -> None:
    # As `flask --app` does: `pyhost run myapp:app` finds ./myapp.py even when
    # the console script's sys.path[0] is its bin/ directory.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def cmd_run(args: argparse.Namespace) -> int:
    from .run import cmd_run as run

    return run(args)


def cmd_check(args: argparse.Namespace) -> int:
    from .check import cmd_check as check

    return check(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(sys.stdout, examples_dir=args.examples, start_method=args.start_method)


_COMMANDS = {"run": cmd_run, "check": cmd_check, "demo": cmd_demo}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pyhost`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        load_dotenv(getattr(args, "env_file", None))
        _add_cwd_to_path()
        return _COMMANDS[args.command](args)
    except (ValueError, RecursionError, MemoryError) as exc:
        # Config and target validation: the message names the field. (RecursionError
        # and MemoryError only as a last line of defence: validation bounds the input.)
        parser.exit(EXIT_USAGE, "pyhost %s: error: %s\n" % (args.command, _one_line(exc)))
    except KeyboardInterrupt:
        say("[pyhost] Interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `pyhost check --json | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return EXIT_INTERNAL  # pragma: no cover - parser.exit raised


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + "..."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
