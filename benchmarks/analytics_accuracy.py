"""Precision, recall and detection delay of every rule against the simulator's ground truth.

A month of a simulated province (with injected faults) is backfilled into a
store, then analytics is replayed every few hours (from day 7, so that
rules have a baseline) with one alert book, as production would run it.  An alert is a true positive when its device (or,
for sorting, institution or scale) carries a label of the fault the rule is
meant to catch and it opened after that fault began.  Recall counts faults
old enough for the rule to have seen them (a leak needs its nights).  The
rule a fault should raise is the ``expect`` of its label (``simulators/faults.py``).

    python -m benchmarks.analytics_accuracy --institutions 1000 --days 30
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from analytics.alerts import AlertBook
from analytics.rules import configure, discover
from analytics.runner import evaluate
from meterwatch.localtime import DAY
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import open_store
from simulators.backfill import backfill
from simulators.faults import EXPECT, FaultRates
from simulators.province import generate_province

END = 1_774_918_800 + 9 * 3600  # 2026-03-31 09:00 China time


def settle_time(cfg: AnalyticsSettings) -> dict[str, float]:
    """How long after a fault begins the rule can possibly know (by design), per simulated fault kind."""
    own = configure(cfg)
    return {"leak": (own["leak"].nights + 1) * DAY, "burst": 3600,
            "silent": own["silent"].min_s, "frozen": own["meter_fault"].frozen_days * DAY, "backwards": DAY,
            "mis_sorted": 2 * DAY, "unknown_card": DAY}


async def run(institutions: int, days: int, step_h: float, store_url: str | None, burst_rate: float | None = None) -> str:
    cfg = AnalyticsSettings(state_file=Path(tempfile.mkdtemp()) / "alerts.json")
    province = generate_province(institutions, seed=42)
    registry = Registry({i.id: i for i in province.institutions}, {d.id: d for d in province.devices},
                        {c.card: c for c in province.cards})
    url = store_url or f"duckdb://{tempfile.mkdtemp()}/accuracy.duckdb"
    store = open_store(url)
    await store.open()
    start = END - days * DAY
    rates = FaultRates() if burst_rate is None else FaultRates(burst=burst_rate)
    bf = await backfill(store, province, start, END, seed=42, rates=rates)
    labels = bf.labels or []
    book = AlertBook(update_interval_s=cfg.update_interval_s)
    opened: dict[str, dict[str, int]] = defaultdict(dict)  # rule -> key -> first open time
    t, timings = start + 7 * DAY, []
    while t <= END:
        began = time.perf_counter()
        result = await evaluate(store, registry, cfg, book, int(t), [])
        timings.append(time.perf_counter() - began)
        for e in result.events:
            if e.state == "open":
                opened[e.rule].setdefault(e.device, e.ts)
        t += step_h * 3600
    await store.close()
    settle = settle_time(cfg)
    lines = ["| rule | faults injected (old enough) | alerts | recall | precision | median delay (h) | p90 delay (h) |",
             "|---|---|---|---|---|---|---|"]
    for rule in (r for r in discover() if r in EXPECT.values()):  # every rule the simulator injects faults for
        faults = [lb for lb in labels if lb.expect == rule]
        key = (lambda lb: lb.institution) if rule == "sorting" else (lambda lb: lb.device)
        truth = {(key(lb) if lb.fault != "unknown_card" else lb.device): lb for lb in faults}
        replay_start = start + 7 * DAY  # a fault over before the replay began was never observable
        old_enough = {k: lb for k, lb in truth.items()
                      if END - lb.start >= settle[lb.fault] and lb.end >= replay_start}
        alerts = opened.get(rule, {})
        hits = {k: ts for k, ts in alerts.items() if k in truth and ts >= truth[k].start - DAY}
        found = [k for k in old_enough if k in hits]
        recall = len(found) / len(old_enough) if old_enough else float("nan")
        precision = len(hits) / len(alerts) if alerts else float("nan")
        delays = [(hits[k] - max(old_enough[k].start, start + 7 * DAY)) / 3600 for k in found]
        med = f"{np.median(delays):.1f}" if delays else "-"
        p90 = f"{np.percentile(delays, 90):.1f}" if delays else "-"
        lines.append(f"| {rule} | {len(old_enough)} | {len(alerts)} | {recall:.2f} | {precision:.2f} | {med} | {p90} |")
    header = (f"{institutions} institutions, {len(registry.devices)} devices, {days} days ending 2026-03-31 "
              f"({bf.readings:,} readings backfilled in {bf.seconds:.0f} s), analytics every {step_h:g} h "
              f"from day 7: {len(timings)} evaluations, median {np.median(timings):.2f} s each "
              f"({store.url.split(':')[0]}), {platform.machine()} {platform.python_version()}")
    return header + "\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step-hours", type=float, default=6.0)
    parser.add_argument("--store", default=None, help="store URL (default: a temporary DuckDB file)")
    parser.add_argument("--burst-rate", type=float, default=None, help="share of water meters with a burst")
    args = parser.parse_args()
    print(asyncio.run(run(args.institutions, args.days, args.step_hours, args.store, args.burst_rate)))


if __name__ == "__main__":
    main()
