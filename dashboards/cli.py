"""``meterwatch dashboards build | push | rollups``; ``render`` is a whole-system scenario (``scenarios.render``)
and is handed in by the command line, as are the rules' labels (``AnalyticsFacts``), so that this package
depends on the core only."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from dashboards.common import AnalyticsFacts
from meterwatch.localtime import DAY
from meterwatch.settings import Settings, redact_url
from meterwatch.store import store_for

if TYPE_CHECKING:
    from meterwatch.store.influx import InfluxStore


Action = Callable[[argparse.Namespace, Settings], int]


def add_parser(sub: argparse._SubParsersAction, render: Action, facts: Callable[[Settings], AnalyticsFacts]
               ) -> None:
    p = sub.add_parser("dashboards", help="Grafana dashboards: build provisioning files, push, rollups, pictures")
    p.add_argument("action", choices=["build", "push", "rollups", "render"])
    p.add_argument("--out", type=Path, help="build: provisioning directory; render: where the PNGs go")
    p.add_argument("--days", type=float, default=2.0, help="rollups: recompute this many past days (default 2)")
    p.add_argument("--install", action="store_true", help="rollups: also create the continuous queries")
    p.add_argument("--institutions", type=int, default=60, help="render: size of the simulated sample")
    p.set_defaults(func=run, render=render, facts=facts)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.action == "build":
            return _build(args, settings)
        if args.action == "push":
            return _push(settings, args.facts(settings))
        if args.action == "rollups":
            return asyncio.run(_rollups(args, settings))
        return args.render(args, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.provisioning import build

    if args.out is None:
        raise ValueError("dashboards build needs --out DIR")
    built = build(settings, args.out, args.facts(settings))
    print(f"wrote {len(built.dashboards)} dashboards and the provisioning files to {args.out}; "
          f"mount it as /etc/grafana/provisioning")
    return 0


def _push(settings: Settings, facts: AnalyticsFacts) -> int:
    from dashboards.push import push

    result = push(settings, facts)
    print(f"pushed {len(result.dashboards)} dashboards to {redact_url(settings.grafana.url)} "
          f"(folder {'created' if result.folder_created else 'existed'}, "
          f"data source {'created' if result.datasource_created else 'existed'})")
    return 0


def influx_store(settings: Settings) -> InfluxStore:
    from meterwatch.store.influx import InfluxStore  # here: every meterwatch command parses this module

    store = store_for(settings)
    if not isinstance(store, InfluxStore):
        raise ValueError(f"rollups live in InfluxDB; the store is {redact_url(settings.store)}")
    return store


async def _rollups(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards import rollups

    store = influx_store(settings)
    try:
        if args.install:
            print("continuous queries:", ", ".join(await rollups.install(store)))
        end = int(time.time())
        written = await rollups.apply(store, end - int(args.days * DAY), end)
        print(f"rollups recomputed for the last {args.days:g} days: {written} points written")
    finally:
        await store.close()
    return 0
