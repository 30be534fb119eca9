"""Budget: pricing a province's stored use, and the budget execution over a priced year, on both stores.

Two measurements per store, on the same simulated province:

- pricing: ``ensure_priced`` over ``days`` of stored readings at full density
  (every meter every 15 minutes), from an empty cost ledger; seconds per day,
  and that rate times 365 as the time to price a province-year (a year of raw
  readings, 670 M for the whole province, is too large to load here: the
  year is extrapolated, and said so);
- execution: ``budget.execution`` at the end of a year whose 365 days of cost
  points (every institution, kind and day) are in the store: what each
  evaluation and ``meterwatch budget`` cost once history is priced.

    python -m benchmarks.budget --institutions 5010 --days 3
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from analytics.budget import clear_caches, execution
from analytics.costs import ensure_priced
from benchmarks.servers import each_store
from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.localtime import DAY, LOCAL_UTC_OFFSET_S, local_day, midnight_of
from meterwatch.registry import Registry
from meterwatch.registry.tariffs import load_tariffs
from meterwatch.store import Batch, CostPoint, Store
from simulators.backfill import backfill
from simulators.province import generate_province

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "registry"
YEAR = 2025


def _registry(institutions: int) -> tuple[Registry, object]:
    import tomllib

    province = generate_province(institutions, seed=11)
    tariffs, problems = load_tariffs((EXAMPLES / "tariffs.toml").read_text(encoding="utf-8"), DEFAULT_CITIES,
                                     INSTITUTION_TYPES)
    assert not problems, problems
    quotas = tomllib.loads((EXAMPLES / "quotas.toml").read_text(encoding="utf-8"))
    registry = Registry({i.id: i for i in province.institutions}, {d.id: d for d in province.devices},
                        {c.card: c for c in province.cards}, quotas, tariffs)
    return registry, province


def _year_of_costs(registry: Registry) -> list[CostPoint]:
    """One cost point per institution, kind and day of YEAR (what pricing leaves behind)."""
    rng = np.random.default_rng(5)
    first = int(local_day(midnight_of(date(YEAR, 1, 1))))
    points = []
    for inst in registry.institutions.values():
        scale = inst.floor_area_m2 / 1000
        for kind, mean in (("electricity", 300.0), ("water", 20.0), ("heat", 50.0)):
            yuan = rng.gamma(4.0, mean * scale / 4.0, 365)
            points += [CostPoint(inst.id, inst.city, inst.type, kind, (first + d) * DAY - LOCAL_UTC_OFFSET_S, float(y / 0.6),
                                 float(y), float(y * 0.9)) for d, y in enumerate(yuan)]
    return points


async def _measure(store: Store, registry: Registry, province: object, days: int) -> dict[str, float]:
    end = midnight_of(date(YEAR, 12, 31))
    start = end - days * DAY
    done = await backfill(store, province, start - DAY, end, seed=3)  # the day before: the first day's baseline
    started = time.perf_counter()
    points = await ensure_priced(store, registry, int(local_day(start)), int(local_day(end - 1)), recent_days=0,
                                 chunk_days=days)
    pricing = time.perf_counter() - started
    costs = _year_of_costs(registry)
    for i in range(0, len(costs), 100_000):
        await store.write(Batch(costs=costs[i:i + 100_000]))
    clear_caches()
    started = time.perf_counter()
    ex = await execution(store, registry, midnight_of(date(YEAR + 1, 1, 1)) - 1, profile_min_days=300)
    executed = time.perf_counter() - started
    clear_caches()  # an evaluating process: the first evaluation sums the year, the next ones the days since
    at = midnight_of(date(YEAR, 12, 30))
    started = time.perf_counter()
    await execution(store, registry, at, profile_min_days=300, monthly=False)
    first = time.perf_counter() - started
    started = time.perf_counter()
    await execution(store, registry, at + DAY, profile_min_days=300, monthly=False)
    following = time.perf_counter() - started
    return {"readings": done.readings, "days": days, "points": points, "pricing_s": pricing,
            "pricing_day_s": pricing / days, "year_s": pricing / days * 365, "cost_points": len(costs),
            "execution_s": executed, "first_evaluation_s": first, "next_evaluation_s": following,
            "over": int(np.sum(ex.status == "over"))}


async def measure(institutions: int, days: int, influx_port: int | None = None) -> dict[str, dict[str, float]]:
    registry, province = _registry(institutions)
    return {name: await _measure(store, registry, province, days)
            async for name, store in each_store("budget", f"budget_{institutions}_{days}", influx_port=influx_port)}


def report(results: dict[str, dict[str, float]], institutions: int) -> str:
    duck, influx = results["duckdb"], results["influxdb"]
    lines = [f"{institutions} institutions; pricing {duck['days']:.0f} days of {duck['readings']:,.0f} stored readings; "
             f"execution over {duck['cost_points']:,.0f} cost points (a year); "
             f"{platform.machine()} Python {platform.python_version()}", "",
             "| | DuckDB | InfluxDB |", "|---|---:|---:|",
             f"| cost points written by pricing | {duck['points']:,.0f} | {influx['points']:,.0f} |",
             f"| pricing, s per province-day | {duck['pricing_day_s']:.2f} | {influx['pricing_day_s']:.2f} |",
             f"| pricing a province-year (x 365, extrapolated), s | {duck['year_s']:.0f} | {influx['year_s']:.0f} |",
             f"| meterwatch budget over a priced year (with months), s | {duck['execution_s']:.2f} | "
             f"{influx['execution_s']:.2f} |",
             f"| an evaluation's budget step, first in a process, s | {duck['first_evaluation_s']:.2f} | "
             f"{influx['first_evaluation_s']:.2f} |",
             f"| the next evaluation's (a day later), s | {duck['next_evaluation_s']:.2f} | "
             f"{influx['next_evaluation_s']:.2f} |"]
    return "\n".join(lines)


async def run(institutions: int = 5010, days: int = 3) -> str:
    return report(await measure(institutions, days), institutions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=5010)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    print(asyncio.run(run(args.institutions, args.days)))


if __name__ == "__main__":
    main()
