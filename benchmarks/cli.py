"""``meterwatch bench [--quick]``: every benchmark in one run, each printing its own table.

Full sizes are the ones BENCHMARKS.md reports; ``--quick`` runs the same
code on tiny sizes in well under a minute, to see that it all still works
(the test suite runs the same smoke sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from meterwatch.settings import Settings

SUITES = ("ingest", "midnight", "midnight-burst", "fanout", "store", "analytics-speed", "analytics-accuracy", "dashboards",
          "budget", "delivery", "import", "reports", "push", "province10x")


def suites(quick: bool) -> dict[str, Callable[[], Awaitable[str]]]:
    """Each benchmark's run at full or quick size (imported here: the CLI must not load them all to start)."""
    from benchmarks import (
        analytics_accuracy,
        analytics_speed,
        budget,
        dashboards,
        delivery,
        fanout,
        imports,
        ingest,
        midnight,
        push,
        province10x,
        reports,
        store,
    )

    if quick:
        return {"ingest": lambda: ingest.run(4_000), "midnight": lambda: midnight.run(20, 2.0),
                "midnight-burst": lambda: midnight.run(20, 0.0, workers=2), "fanout": lambda: fanout.run(20),
                "store": lambda: store.run(10, 2), "analytics-speed": lambda: analytics_speed.run(500),
                "analytics-accuracy": lambda: analytics_accuracy.run(40, 8, 12.0, None),
                "dashboards": lambda: dashboards.run(10, 1, 1), "budget": lambda: budget.run(20, 1),
                "delivery": lambda: delivery.run(20, 0.2, 1), "import": lambda: imports.run(2_000, 10),
                "reports": lambda: reports.run(20, 2), "push": lambda: push.run(300, 10, 4, 32),
                "province10x": lambda: province10x.run(60, 2)}
    return {"ingest": lambda: ingest.run(200_000), "midnight": lambda: midnight.run(5010, 60.0),
            "midnight-burst": lambda: midnight.run(5010, 0.0, workers=2), "fanout": lambda: fanout.run(1000),
            "store": lambda: store.run(500, 30), "analytics-speed": lambda: analytics_speed.run(25_000),
            "analytics-accuracy": lambda: analytics_accuracy.run(1000, 30, 1.0, None),
            "dashboards": lambda: dashboards.run(5010, 2, 5), "budget": lambda: budget.run(5010, 3),
            "delivery": lambda: delivery.run(100, 2.0, 3), "import": lambda: imports.run(100_000, 100),
            "reports": lambda: reports.run(5010, 31), "push": lambda: push.run(24_000, 5010, 96, 256),
            "province10x": lambda: province10x.run(50_100, 3)}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmarks (real mosquitto and influxd on free ports)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a check that they run, not a measurement")
    p.add_argument("--only", choices=SUITES, action="append", help="run only these")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    for name, bench in suites(args.quick).items():
        if args.only and name not in args.only:
            continue
        print(f"\n## {name}{' (quick)' if args.quick else ''}\n", flush=True)
        started = time.monotonic()
        print(asyncio.run(bench()))
        print(f"\n({time.monotonic() - started:.0f} s)", flush=True)
    return 0
