"""Store: the InfluxDB and DuckDB backends on the same batches, then analytics' queries on a month.

Writes: the same simulated month, day by day, as columns (the backfill
path) into each backend; and the collector's path, ``write(Batch)`` of
5,000 ``ReadingPoint`` records at a time.  Queries: each rule's evaluator
(its aggregations are all it does with the store) at the month's end,
timed per rule, and one whole evaluation.

    python -m benchmarks.store --institutions 500 --days 30
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from analytics.rules import configure, discover
from analytics.rules.base import Context
from meterwatch.localtime import DAY
from meterwatch.registry import Registry
from benchmarks.servers import start_influxd
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Batch, ReadingPoint, Store, open_store
from simulators.backfill import backfill
from simulators.province import generate_province

BATCH = 5_000


async def _collector_path(store: Store, records: list[ReadingPoint]) -> float:
    started = time.perf_counter()
    for i in range(0, len(records), BATCH):
        await store.write(Batch(readings=records[i:i + BATCH]))
    return time.perf_counter() - started


async def _evaluators(store: Store, registry: Registry, at: int) -> dict[str, float]:
    cfg = AnalyticsSettings()
    own = configure(cfg)
    out = {}
    for name, rule in discover().items():
        started = time.perf_counter()
        await rule.evaluate(Context(rule, store, registry, cfg, own[name], at))
        out[name] = time.perf_counter() - started
    return out


async def measure(institutions: int, days: int, influx_port: int | None = None) -> dict[str, dict[str, float]]:
    province = generate_province(institutions, seed=3)
    registry = Registry({i.id: i for i in province.institutions}, {d.id: d for d in province.devices},
                        {c.card: c for c in province.cards})
    end = (int(time.time()) // DAY) * DAY
    start = end - days * DAY
    meters = sorted((d for d in province.devices if d.kind != "scale"), key=lambda d: d.id)
    inst = {i.id: i for i in province.institutions}
    records = [ReadingPoint(d.id, d.institution, inst[d.institution].city, inst[d.institution].type, d.kind,
                            start - DAY * 400 + 900 * k, 100.0 + k, 1.0, 900)
               for k in range(max(1, 200_000 // len(meters))) for d in meters]
    server = start_influxd() if influx_port is None else None
    results: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = server.port if server else influx_port
            for name, url in (("duckdb", f"duckdb://{Path(tmp) / 'bench.duckdb'}"),
                              ("influxdb", f"influxdb://127.0.0.1:{port}/store_{institutions}_{days}")):
                store = open_store(url, timeout_s=600)
                await store.open()
                done = await backfill(store, province, start, end, seed=3)
                collector_s = await _collector_path(store, records)
                rules = await _evaluators(store, registry, end)
                await store.close()
                results[name] = {"readings": done.readings, "backfill_s": done.seconds,
                                 "records": len(records), "collector_s": collector_s,
                                 **{f"rule:{k}": v for k, v in rules.items()}}
    finally:
        if server:
            server.stop()
    return results


def report(results: dict[str, dict[str, float]], institutions: int, days: int) -> str:
    duck, influx = results["duckdb"], results["influxdb"]
    lines = [f"{institutions} institutions, {days} days: {duck['readings']:,.0f} readings; "
             f"{platform.machine()} Python {platform.python_version()}", "",
             "| | DuckDB | InfluxDB | DuckDB / InfluxDB |", "|---|---:|---:|---:|"]
    for label, key, count in (("columns (backfill), readings/s", "backfill_s", "readings"),
                              (f"write(Batch) of {BATCH:,} records, readings/s", "collector_s", "records")):
        d, i = duck[count] / duck[key], influx[count] / influx[key]
        lines.append(f"| {label} | {d:,.0f} | {i:,.0f} | {d / i:.1f} |")
    for key in [k for k in duck if k.startswith("rule:")]:
        lines.append(f"| evaluator {key[5:]}, ms | {duck[key] * 1000:,.0f} | {influx[key] * 1000:,.0f} | "
                     f"{duck[key] / influx[key]:.2f} |")
    total_d = sum(v for k, v in duck.items() if k.startswith("rule:"))
    total_i = sum(v for k, v in influx.items() if k.startswith("rule:"))
    lines.append(f"| one whole evaluation, s | {total_d:.2f} | {total_i:.2f} | {total_d / total_i:.2f} |")
    return "\n".join(lines)


async def run(institutions: int = 500, days: int = 30) -> str:
    return report(await measure(institutions, days), institutions, days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    print(asyncio.run(run(args.institutions, args.days)))


if __name__ == "__main__":
    main()
