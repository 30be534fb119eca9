"""Import: rows per second of ``meterwatch import`` from a readings CSV into DuckDB.

A CSV of ``rows`` readings (``device,time,register``, local times written
``2025/10/01 08:00``, quarter-hourly and rising) over ``devices`` meters of
a simulated province, imported into an empty DuckDB file through the same
code as the command (``collector.imports.import_file``: parsing, the
collector's checks, consumption from the stored history, the writes), then
the same file again (every row a duplicate).

    python -m benchmarks.imports --rows 100000 --devices 100
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from collector.imports import ImportReport, import_file
from meterwatch.const import METER_KINDS
from meterwatch.localtime import CHINA
from meterwatch.registry import Registry
from meterwatch.settings import Settings
from meterwatch.store import ReadingPoint, open_store
from simulators.province import generate_province

START = int(datetime(2025, 1, 1, tzinfo=CHINA).timestamp())
STEP_S = 900


def _registry(devices: int) -> Registry:
    province = generate_province(max(10, devices // 2), seed=17)
    meters = [d for d in province.devices if d.kind in METER_KINDS][:devices]
    return Registry({i.id: i for i in province.institutions}, {d.id: d for d in meters}, {})


def write_csv(path: Path, registry: Registry, rows: int) -> None:
    meters = list(registry.devices)
    per_device = -(-rows // len(meters))
    with path.open("w", encoding="utf-8") as f:
        f.write("device,time,register\n")
        written = 0
        for device in meters:
            for k in range(min(per_device, rows - written)):
                when = datetime.fromtimestamp(START + STEP_S * k, CHINA).strftime("%Y/%m/%d %H:%M")
                f.write(f"{device},{when},{1000 + 0.25 * k:.2f}\n")
            written += min(per_device, rows - written)


async def _timed(path: Path, registry: Registry, url: str) -> tuple[ImportReport, float]:
    store = open_store(url)
    try:
        await store.open()
        started = time.perf_counter()
        report = await import_file(path, registry, Settings(store=url), store)
        return report, time.perf_counter() - started
    finally:
        await store.close()


async def _count(url: str) -> int:
    store = open_store(url)
    try:
        await store.open()
        return await store.count(ReadingPoint)
    finally:
        await store.close()


async def run(rows: int, devices: int = 100) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="mw-bench-import-"))
    try:
        registry = _registry(devices)
        path = workdir / "history.csv"
        write_csv(path, registry, rows)
        url = f"duckdb://{workdir / 'store.duckdb'}"
        first, first_s = await _timed(path, registry, url)
        again, again_s = await _timed(path, registry, url)
        stored = await _count(url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return "\n".join([
        f"{rows:,} readings of {len(registry.devices)} meters in one CSV ({platform.machine()}, DuckDB)",
        "",
        "| import | rows | stored | already stored | refused | seconds | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| first | {first.rows:,} | {first.stored:,} | {first.duplicates:,} | {len(first.problems):,} "
        f"| {first_s:.1f} | {first.rows / first_s:,.0f} |",
        f"| again (all duplicates) | {again.rows:,} | {again.stored:,} | {again.duplicates:,} "
        f"| {len(again.problems):,} | {again_s:.1f} | {again.rows / again_s:,.0f} |",
        "",
        f"({stored:,} readings in the store)",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=100)
    args = parser.parse_args()
    print(asyncio.run(run(args.rows, args.devices)))


if __name__ == "__main__":
    main()
