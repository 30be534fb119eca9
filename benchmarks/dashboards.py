"""Dashboards: every panel's query latency on a year of the province, in a real influxd.

A year of raw readings is 840 million points (two hours of backfill and
tens of GB); the panels that span the year read the daily rollups, so the
year is loaded as Grafana's queries meet it in production:

- ``consumption_1d`` for 365 days, computed from the fleet model (the same
  consumption a perfect collector derives, ``simulators.backfill.chunk_use``);
- raw readings and weighings for the last ``--raw-days`` days (the hourly
  and per-meter panels read those), then the rollups over the whole year
  (``dashboards.rollups.apply``, the continuous queries' own statements);
- analytics once at the end (alerts, the daily statistic).

Each query is run as Grafana would (variables and ``$timeFilter``
expanded), ``--repeat`` times; the median is reported.  A raw query over
the raw days shows what the rollups save.

    python -m benchmarks.dashboards                      # 5,010 institutions
    python -m benchmarks.dashboards --institutions 200   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import statistics as stats
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from analytics.alerts import AlertBook
from analytics.report import statistics
from analytics.rules import configure, labels
from analytics.runner import evaluate
from dashboards import rollups
from dashboards.rollups import CONSUMPTION_1D
from dashboards.boards import all_boards
from dashboards.common import AnalyticsFacts
from dashboards.validate import run_board, variable_values
from meterwatch.localtime import DAY, local_midnight
from meterwatch.registry import load_registry
from meterwatch.settings import Settings
from meterwatch.store.influx import InfluxStore
from meterwatch.store.records import Schema
from simulators.backfill import backfill, chunk_use
from simulators.meters import FleetModel
from simulators.province import generate_province, write_registry
from benchmarks.servers import start_influxd

TARGET_MS = 300.0


@dataclass(frozen=True, slots=True)
class DailyConsumption:
    """A ``consumption_1d`` point, as the rollup's continuous query writes it (its fields are the aliases of
    ``CONSUMPTION_1D.select``)."""

    schema: ClassVar[Schema] = Schema(
        CONSUMPTION_1D.name, CONSUMPTION_1D.by, (("consumption", "float"), ("readings", "int")), key=("device", "ts"))


async def load_year(store: InfluxStore, settings: Settings, work: Path, institutions: int, raw_days: int,
                    seed: int = 42) -> dict[str, float]:
    province = generate_province(institutions, seed, settings.cities)
    write_registry(province, work / "registry")
    registry, _ = load_registry(work / "registry", settings.cities)
    end = int(time.time())
    raw_start = end - raw_days * DAY
    year_start = end - 365 * DAY
    started = time.monotonic()
    model = FleetModel(province, year_start, raw_start, seed)
    prev_reg = np.full(len(model.devices), np.nan)
    prev_ts = np.zeros(len(model.devices), dtype=np.int64)
    ids = np.array([d.id for d in model.devices], dtype=object)
    insts = np.array([d.institution for d in model.devices], dtype=object)
    cities = np.array([i.city for i in model.institutions], dtype=object)
    types = np.array([i.type for i in model.institutions], dtype=object)
    kinds = np.array([d.kind for d in model.devices], dtype=object)
    points = 0
    for k, chunk in enumerate(model.chunks()):
        use = chunk_use(model, chunk, prev_reg, prev_ts)
        readings = use.reported.sum(axis=1)
        day = local_midnight(int(chunk.ts[0]))
        rows = readings > 0
        await store.write_columns(DailyConsumption, {
            "device": ids[rows], "institution": insts[rows], "city": cities[rows], "type": types[rows],
            "kind": kinds[rows], "ts": np.full(int(rows.sum()), day),
            "consumption": np.round(np.where(use.reported, use.consumption, 0.0).sum(axis=1)[rows], 4),
            "readings": readings[rows]})
        points += int(rows.sum())
        if k % 30 == 0:
            print(f"  year rollup: day {k + 1}, {points:,} points, {time.monotonic() - started:.0f}s", flush=True)
    timings = {"year_rollup_s": time.monotonic() - started, "year_rollup_points": points}
    started = time.monotonic()
    raw = await backfill(store, province, raw_start, end, seed)
    timings.update(raw_s=time.monotonic() - started, raw_readings=raw.readings, raw_weighings=raw.weighings)
    started = time.monotonic()
    await evaluate(store, registry, settings.analytics, AlertBook(), end, notifiers=[])
    await statistics(store, registry, end)
    timings["analytics_s"] = time.monotonic() - started
    started = time.monotonic()
    timings["rollup_points"] = await rollups.apply(store, year_start, end)
    timings["rollups_s"] = time.monotonic() - started
    return timings


async def measure(institutions: int, raw_days: int, repeat: int, influx_port: int | None = None
                  ) -> list[tuple[str, str, float, int]]:
    """(dashboard uid, panel, median ms, rows) for every query; starts its own influxd unless given a port."""
    server = start_influxd() if influx_port is None else None
    try:
        port = server.port if server else influx_port
        settings = Settings(store=f"influxdb://127.0.0.1:{port}/year_{institutions}")
        store = InfluxStore(settings.store, timeout_s=600)
        await store.open()
        with tempfile.TemporaryDirectory() as tmp:
            loaded = await load_year(store, settings, Path(tmp), institutions, raw_days)
        print("loaded:", {k: round(v, 1) for k, v in loaded.items()})
        now = int(time.time())
        results = []
        facts = AnalyticsFacts(labels(), configure(settings.analytics)["sorting"].target_share)
        for board in all_boards(settings, facts):
            chosen = {}
            if board.uid == "mw-institution":
                found = await store.query('SHOW TAG VALUES FROM "statistic" WITH KEY = "name" LIMIT 1')
                chosen = {"name": found[0]["values"][0][1]}
            values = await variable_values(store, board, chosen, missing="(none)")
            board_from = "now-6h" if board.uid == "mw-collector" else "now-1y"
            samples: dict[tuple[int, str], list[float]] = {}
            rows: dict[tuple[int, str], int] = {}
            for _ in range(repeat):
                for k, run in enumerate(await run_board(store, board, values, now, board_from)):
                    samples.setdefault((k, run.panel), []).append(run.seconds * 1000)
                    rows[(k, run.panel)] = sum(len(s.get("values", [])) for s in run.series)
            results += [(board.uid, panel, stats.median(ms), rows[(k, panel)]) for (k, panel), ms in samples.items()]
        raw_q = ('SELECT sum("consumption") FROM "reading" WHERE time > now() - %dd GROUP BY "city", "type", "kind"'
                 % raw_days)
        t = time.perf_counter()
        await store.query(raw_q)
        results.append(("raw", f"raw readings, {raw_days} days by city/type/kind (no rollup)",
                        (time.perf_counter() - t) * 1000, 0))
        await store.close()
        return results
    finally:
        if server:
            server.stop()


def report(results: list[tuple[str, str, float, int]]) -> str:
    lines = ["| dashboard | panel | median ms | rows |", "|---|---|---:|---:|"]
    lines += [f"| {uid} | {panel} | {ms:.1f}{' **over**' if ms > TARGET_MS else ''} | {rows} |"
              for uid, panel, ms, rows in results]
    panels = [r for r in results if r[0] != "raw"]
    lines.append(f"\n{len(panels)} panel queries; slowest {max(r[2] for r in panels):.1f} ms; "
                 f"{sum(r[2] > TARGET_MS for r in panels)} over the {TARGET_MS:.0f} ms target")
    return "\n".join(lines)


async def run(institutions: int, raw_days: int = 2, repeat: int = 5) -> str:
    return report(await measure(institutions, raw_days, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=5010)
    parser.add_argument("--raw-days", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(asyncio.run(run(args.institutions, args.raw_days, args.repeat)))


if __name__ == "__main__":
    main()
