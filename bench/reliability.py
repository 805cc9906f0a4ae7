"""The reliability suite's figures: leaks, orphans, a kill storm, floods and hangs.

    python bench/reliability.py            # the short form (about a minute)
    python bench/reliability.py --long     # the long form reported in docs/reliability.md
    python bench/reliability.py --long --json out.json

The same scenarios run as tests (tests/reliability, ``pytest tests/reliability
--long`` for the long form); this script prints what they measured.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="the long form (about 15 minutes)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    sys.path.insert(0, TESTS)
    from reliability import scenarios  # tests/reliability/scenarios.py

    long = args.long
    results = {"form": "long" if long else "short", "python": platform.python_version(),
               "cpus": os.cpu_count()}
    steps = [
        ("start_stop_cycles", lambda: scenarios.start_stop_cycles(1000 if long else 30)),
        ("failed_starts", lambda: scenarios.failed_starts(100 if long else 3)),
        ("orphans", lambda: [scenarios.orphans(method, 20 if long else 2)
                             for method in ("fork", "spawn", "forkserver")]),
        ("kill_storm", lambda: scenarios.kill_storm(100 if long else 5)),
        ("flood_output", lambda: scenarios.flood_output(200, 10)),
        ("big_responses", lambda: scenarios.big_responses(20 if long else 2, 50)),
        ("endless_responses_during_stop",
         lambda: scenarios.endless_responses_during_stop(8 if long else 4)),
        ("hangs", lambda: dict({name: scenarios.hang(name)
                                for name in ("hang_sleep", "hang_busy", "hang_regex")},
                               request=scenarios.request_hang(),
                               sigterm_ignored=scenarios.sigterm_ignored())),
    ]
    for name, step in steps:
        started = time.monotonic()
        results[name] = step()
        print("%-30s %6.1fs  %s" % (name, time.monotonic() - started,
                                     json.dumps(results[name])), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
