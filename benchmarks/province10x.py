"""The 10x province (issue 18 item 3): 50,100 institutions, about 240,000 devices, on DuckDB and InfluxDB.

Steps, each measured on its own:

1. the registry: generated, written (with the sample tariffs and quotas of
   examples/registry), then loaded and checked by ``load_registry``;
2. ``days`` of history backfilled into a DuckDB file and into an influxd of
   our own (``simulators.backfill``, a slice of the fleet per write);
3. one whole evaluation per store (``analytics.runner.evaluate``: pricing,
   every rule, the alert book in memory), then the next one a quarter-hour
   later in the same process (its caches warm);
4. the collector's side: the startup baseline (``store.latest_readings``
   over 60 days, every device at once as at start) per store, and the memory of a day of
   ``collector.deltas.DeviceHistory`` for every meter.

Every step that reports memory runs in a child process of its own, so its
peak resident memory (``ru_maxrss``) is its own and not the backfill's.

    python -m benchmarks.province10x                         # 50,100 institutions, 3 days
    python -m benchmarks.province10x --institutions 100 --days 2   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from analytics.alerts import AlertBook
from analytics.runner import evaluate
from benchmarks.servers import start_influxd
from collector.deltas import DeviceHistory
from meterwatch.localtime import DAY
from meterwatch.registry import load_registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import open_store
from simulators.backfill import backfill
from simulators.province import Province, generate_province, write_registry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "registry"
END = 1_790_035_200  # 2026-09-23 00:00 UTC, 08:00 local: the evaluation's "now"
SEED = 7


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _registry(directory: Path):
    registry, problems = load_registry(directory)
    if problems:
        raise RuntimeError(f"the generated registry has problems, first: {problems[0]}")
    return registry


async def _backfill(url: str, directory: Path, days: float) -> dict[str, Any]:
    registry = _registry(directory)
    province = Province(list(registry.institutions.values()), list(registry.devices.values()),
                        list(registry.cards.values()))
    store = open_store(url, timeout_s=600)
    await store.open()
    try:
        done = await backfill(store, province, END - int(days * DAY), END, SEED)
    finally:
        await store.close()
    return {"readings": done.readings, "weighings": done.weighings, "seconds": done.seconds}


async def _evaluate(url: str, directory: Path) -> dict[str, Any]:
    registry = _registry(directory)
    before = _peak_mb()
    store = open_store(url, timeout_s=AnalyticsSettings().query_timeout_s)  # the request timeout of `meterwatch analyze`
    await store.open()
    book = AlertBook()
    out: dict[str, Any] = {"registry_mb": before}
    try:
        for k, at in enumerate((END, END + 900)):
            started, cpu = time.perf_counter(), time.process_time()
            result = await evaluate(store, registry, AnalyticsSettings(), book, at, [])
            out[f"eval{k}_s"] = time.perf_counter() - started
            out[f"eval{k}_cpu_s"] = time.process_time() - cpu
            out[f"eval{k}_failed"] = sorted(result.failed)
            out[f"eval{k}_why"] = {rule: why[:160] for rule, why in result.failed.items()}  # e.g. a timeout
            out[f"eval{k}_ran"] = len(result.ran)
        out["open_alerts"] = len(book.alerts)
    finally:
        await store.close()
    out["peak_mb"] = _peak_mb()
    return out


async def _baseline(url: str, directory: Path) -> dict[str, Any]:
    registry = _registry(directory)
    devices = sorted(d.id for d in registry.devices.values() if d.kind != "scale")
    store = open_store(url, timeout_s=600)
    await store.open()
    try:
        started = time.perf_counter()
        latest = await store.latest_readings(END - 60 * DAY)  # as the collector starts: every device at once
        seconds = time.perf_counter() - started
        meters = set(devices)
        latest = {d: v for d, v in latest.items() if d in meters}
    finally:
        await store.close()
    return {"devices": len(devices), "found": len(latest), "seconds": seconds, "peak_mb": _peak_mb()}


def _histories(devices: int, readings: int = 96, capacity: int = 128) -> dict[str, Any]:
    """``devices`` DeviceHistory objects after a day of quarter-hourly readings: resident memory they add."""
    import gc

    gc.collect()
    before = _rss_mb()
    histories = {}
    for d in range(devices):
        h = DeviceHistory(capacity)
        for k in range(readings):
            h.add(END + 900 * k, 1000.0 + d + 0.25 * k)
        histories[f"dev-{d:06d}"] = h
    gc.collect()
    used = _rss_mb() - before
    return {"devices": len(histories), "readings": readings, "mb": used, "bytes_per_device": used * 2**20 / devices}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _child(step: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.province10x", "--step", step, *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"step {step} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write_registry(province: Province, directory: Path) -> None:
    write_registry(province, directory)
    for name in ("tariffs.toml", "quotas.toml"):
        shutil.copy(EXAMPLES / name, directory / name)


def measure(institutions: int, days: float, influx_port: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"institutions": institutions, "days": days}
    work = Path(tempfile.mkdtemp(prefix="meterwatch-10x-"))
    server = start_influxd(work / "influxd", unlimited_tags=True) if influx_port is None else None
    try:
        started = time.perf_counter()
        province = generate_province(institutions, seed=SEED)
        out["generate_s"] = time.perf_counter() - started
        out["devices"], out["meters"] = len(province.devices), sum(d.kind != "scale" for d in province.devices)
        started = time.perf_counter()
        _write_registry(province, work / "registry")
        out["write_registry_s"] = time.perf_counter() - started
        del province
        out["load"] = _child("load", str(work / "registry"))
        out["histories"] = _child("histories", str(out["meters"]))
        port = server.port if server else influx_port
        for name, url in (("duckdb", f"duckdb://{work / 'p10x.duckdb'}"),
                          ("influxdb", f"influxdb://127.0.0.1:{port}/p10x_{work.name[-8:]}")):
            out[name] = {"backfill": _child("backfill", url, str(work / "registry"), str(days)),
                         "evaluate": _child("evaluate", url, str(work / "registry")),
                         "baseline": _child("baseline", url, str(work / "registry"))}
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def report(r: dict[str, Any]) -> str:
    load, hist = r["load"], r["histories"]
    lines = [f"{r['institutions']:,} institutions, {r['devices']:,} devices ({r['meters']:,} meters), "
             f"{r['days']:g} days of history; {platform.machine()} Python {platform.python_version()}", "",
             f"registry: generated in {r['generate_s']:.1f} s, written in {r['write_registry_s']:.1f} s, "
             f"loaded and checked in {load['seconds']:.1f} s ({load['cpu_s']:.1f} CPU s), "
             f"{load['devices']:,} devices, peak {load['peak_mb']:.0f} MB",
             f"collector histories: {hist['devices']:,} meters x {hist['readings']} readings = {hist['mb']:.0f} MB "
             f"({hist['bytes_per_device']:,.0f} bytes a meter)", "",
             "| | DuckDB | InfluxDB |", "|---|---:|---:|"]
    duck, influx = r["duckdb"], r["influxdb"]

    def row(label: str, fmt: str, get) -> None:
        lines.append(f"| {label} | {fmt.format(get(duck))} | {fmt.format(get(influx))} |")

    row("readings backfilled", "{:,.0f}", lambda s: s["backfill"]["readings"])
    row("backfill, readings/s", "{:,.0f}", lambda s: s["backfill"]["readings"] / max(s["backfill"]["seconds"], 1e-9))
    row("first evaluation, s", "{:.1f}", lambda s: s["evaluate"]["eval0_s"])
    row("next evaluation (15 min later), s", "{:.1f}", lambda s: s["evaluate"]["eval1_s"])
    row("evaluation peak memory, MB", "{:,.0f}", lambda s: s["evaluate"]["peak_mb"])
    row("of which the registry, MB", "{:,.0f}", lambda s: s["evaluate"]["registry_mb"])
    row("failed steps", "{}", lambda s: ", ".join(s["evaluate"]["eval0_failed"]) or "none")
    row("open alerts", "{:,}", lambda s: s["evaluate"]["open_alerts"])
    row("baseline: devices found", "{:,}", lambda s: s["baseline"]["found"])
    row("baseline (latest_readings, 60 days), s", "{:.1f}", lambda s: s["baseline"]["seconds"])
    row("baseline peak memory, MB", "{:,.0f}", lambda s: s["baseline"]["peak_mb"])
    return "\n".join(lines)


async def run(institutions: int = 50_100, days: float = 3.0) -> str:
    return report(await asyncio.to_thread(measure, institutions, days))


def _step(args: argparse.Namespace) -> dict[str, Any]:
    if args.step == "load":
        started, cpu = time.perf_counter(), time.process_time()
        registry = _registry(Path(args.rest[0]))
        return {"seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
                "devices": len(registry.devices), "peak_mb": _peak_mb()}
    if args.step == "histories":
        return _histories(int(args.rest[0]))
    if args.step == "backfill":
        return asyncio.run(_backfill(args.rest[0], Path(args.rest[1]), float(args.rest[2])))
    if args.step == "evaluate":
        return asyncio.run(_evaluate(args.rest[0], Path(args.rest[1])))
    return asyncio.run(_baseline(args.rest[0], Path(args.rest[1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=50_100)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--step", choices=["load", "histories", "backfill", "evaluate", "baseline"])
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(_step(args)))
    else:
        print(report(measure(args.institutions, args.days)))


if __name__ == "__main__":
    main()
