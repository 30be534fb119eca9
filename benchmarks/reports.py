"""Reports: a month of a whole province as xlsx and pdf, on both stores (issue 15's target: under 60 s each).

One simulated province, ``days`` of history at full density (every meter every 15 minutes, weighings,
injected faults) ending at the end of a local month, priced into the cost measurement; then the report of
that month for the province: the model (every section, from the store's aggregates and analytics), and
each format written from it.  ``meterwatch report`` costs the model plus one format.

    python -m benchmarks.reports --institutions 5010 --days 31
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from analytics.costs import ensure_priced
from benchmarks.budget import _registry
from benchmarks.servers import each_store
from meterwatch.const import DEFAULT_CITIES
from meterwatch.localtime import DAY, local_day
from meterwatch.registry import Registry
from meterwatch.store import Store
from reports import formats
from reports.model import build
from reports.period import Period, windows
from reports.scope import parse_scope
from simulators.backfill import backfill

MONTH = Period("month", 2026, 10)


async def _measure(store: Store, registry: Registry, province: object, days: int, out: Path) -> dict[str, float]:
    start, end = MONTH.bounds()
    first = end - days * DAY
    started = time.perf_counter()
    done = await backfill(store, province, first - DAY, end, seed=3)  # the day before: the first day's baseline
    loaded = time.perf_counter() - started
    await ensure_priced(store, registry, int(local_day(first)), int(local_day(end - 1)), recent_days=0, chunk_days=7)
    scope = parse_scope("province", registry, DEFAULT_CITIES)
    win = windows(MONTH, end)
    started = time.perf_counter()
    report = await build(store, registry, scope, win, yoy_threshold=0.3, target_share=0.1, profile_min_days=300)
    model = time.perf_counter() - started
    result = {"readings": done.readings, "load_s": loaded, "model_s": model, "quality": len(report["quality"])}
    for fmt in ("json", "xlsx", "pdf"):
        path = out / f"province-{MONTH.label}.{fmt}"
        started = time.perf_counter()
        await asyncio.to_thread(formats.write, fmt, report, path)
        result[f"{fmt}_s"] = time.perf_counter() - started
        result[f"{fmt}_mb"] = path.stat().st_size / 1e6
    return result


async def measure(institutions: int, days: int, stores: tuple[str, ...] = ("duckdb", "influxdb"),
                  keep: Path | None = None) -> dict[str, dict[str, float]]:
    registry, province = _registry(institutions)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="meterwatch-reports-out-") as tmp:
        async for name, store in each_store("reports", f"reports_{institutions}_{days}", stores=stores):
            out = (keep or Path(tmp)) / name
            out.mkdir(parents=True, exist_ok=True)
            results[name] = await _measure(store, registry, province, days, out)
    return results


def report(results: dict[str, dict[str, float]], institutions: int, days: int) -> str:
    names = list(results)
    for r in results.values():
        r["xlsx_total_s"], r["pdf_total_s"] = r["model_s"] + r["xlsx_s"], r["model_s"] + r["pdf_s"]

    def row(label: str, key: str, spec: str) -> str:
        return f"| {label} | " + " | ".join(format(results[n][key], spec) for n in names) + " |"

    return "\n".join([
        f"{institutions} institutions, {days} days of {MONTH.label} at full density; "
        f"{platform.machine()} Python {platform.python_version()}", "",
        "| | " + " | ".join({"duckdb": "DuckDB", "influxdb": "InfluxDB"}[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
        row("readings in the month", "readings", ",.0f"),
        row("report model (every section), s", "model_s", ".1f"),
        row("xlsx written from it, s", "xlsx_s", ".1f"),
        row("pdf written from it, s", "pdf_s", ".1f"),
        row("`meterwatch report --format xlsx` (model + write), s", "xlsx_total_s", ".1f"),
        row("`meterwatch report --format pdf` (model + write), s", "pdf_total_s", ".1f"),
        row("items to verify (quality control)", "quality", ",.0f"),
        row("xlsx size, MB", "xlsx_mb", ".1f"),
        row("pdf size, MB", "pdf_mb", ".1f")])


async def run(institutions: int = 5010, days: int = 31, stores: tuple[str, ...] = ("duckdb", "influxdb")) -> str:
    return report(await measure(institutions, days, stores), institutions, days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=5010)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--store", choices=("duckdb", "influxdb"), action="append")
    parser.add_argument("--keep", type=Path, help="keep the reports written here")
    args = parser.parse_args()
    stores = tuple(args.store or ("duckdb", "influxdb"))
    print(report(asyncio.run(measure(args.institutions, args.days, stores, args.keep)), args.institutions, args.days))


if __name__ == "__main__":
    main()
