"""``meterwatch demo``: the whole path on one machine with nothing installed beyond the package.

Embedded amqtt broker, DuckDB file, a simulated province publishing the
last day at full speed, the collector storing it, analytics evaluating at
the end; then a table of what happened next to what the simulator injected.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

from analytics.alerts import load_book, save_book
from analytics.notifiers.mqtt import MqttNotifier
from analytics.sender import Sender
from analytics.rules import configure
from analytics.runner import evaluate
from collector.service import Collector
from meterwatch.registry import load_registry
from meterwatch.settings import Settings
from meterwatch.store import AlertPoint, ReadingPoint, RejectRecord, WeighingPoint, open_store
from simulators.broker import embedded_broker
from simulators.faults import write_labels
from simulators.traffic import Traffic, simulate_traffic
from simulators.province import generate_province, write_registry
from simulators.publish import publish_messages

log = logging.getLogger(__name__)


async def _wait_drained(collector: Collector, published: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while collector.metrics.received < published and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def _demo(settings: Settings, workdir: Path, institutions: int, hours: float, seed: int) -> int:
    started = time.monotonic()
    province = generate_province(institutions, seed, settings.cities)
    write_registry(province, workdir / "registry")
    registry, _ = load_registry(workdir / "registry", settings.cities)
    end = int(time.time())
    traffic = simulate_traffic(province, end - int(hours * 3600), end, seed)
    write_labels(traffic.labels, workdir / "labels.csv")
    print(f"province: {len(province.institutions)} institutions, {len(province.devices)} devices; "
          f"{len(traffic.messages)} messages for the last {hours:g} h; work dir {workdir}")

    async with embedded_broker() as broker_url:
        settings = settings.model_copy(update={
            "broker": broker_url, "store": f"duckdb://{workdir / 'demo.duckdb'}",
            "registry": workdir / "registry",
            "analytics": settings.analytics.model_copy(update={"state_file": workdir / "alerts.json"}),
            "collector": settings.collector.model_copy(update={"spool_dir": workdir / "spool"}),
        })
        store = open_store(settings.store)
        collector = Collector(settings, registry, store)
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        await asyncio.wait_for(collector.connected.wait(), 30)
        stats = await publish_messages(settings, traffic.messages, speed=None, max_rate=1e6, workers=32)
        await _wait_drained(collector, stats.published, timeout_s=120)
        stop.set()
        await task
        await store.open()
        book = load_book(settings.analytics.state_file, update_interval_s=settings.analytics.update_interval_s)
        notifiers = [MqttNotifier(settings)]
        evaluation = await evaluate(store, registry, settings.analytics, book, end, notifiers)
        await Sender(book, registry, settings.analytics, notifiers, store).drain(settings.analytics.delivery_wait_s)
        save_book(book, settings.analytics.state_file)
        meters = [d.id for d in registry.devices.values() if d.kind != "scale"]
        await _summary(store, traffic, collector, stats.published, evaluation.events, time.monotonic() - started,
                       configure(settings.analytics)["silent"].min_s, end - int(hours * 3600), end, meters)
        await store.close()
    return 0


async def _summary(store, traffic: Traffic, collector: Collector, published: int, events: list[AlertPoint],
                   seconds: float, silent_min_s: float, start: int, end: int, meters: list[str]) -> None:
    rejects = Counter(r.reason for r in await store.fetch(RejectRecord))
    expected_rejects = Counter(label.expect.removeprefix("reject:") for label in traffic.labels
                               if label.expect.startswith("reject:"))
    # Silent = nothing delivered intact for longer than the rule's floor: injected silences, meters whose last
    # uploads were garbled in transit, and meters none of whose uploads arrived intact since the window began.
    # A shorter silence is not expected to alert yet.
    silent_truth = {d for d in meters if end - traffic.last_reading.get(d, start) > silent_min_s}
    injected = {label.device for label in traffic.labels if label.expect == "silent"}
    silent_alerts = {e.device for e in events if e.rule == "silent" and e.state == "open"}
    rows = [
        ("messages published", published, len(traffic.messages)),
        ("readings stored", await store.count(ReadingPoint), traffic.valid_readings),
        ("weighings stored", await store.count(WeighingPoint), traffic.valid_weighings),
        ("duplicates collapsed", collector.metrics.duplicates,
         sum(int(label.magnitude) for label in traffic.labels if label.expect == "duplicate")),
    ]
    rows += [(f"rejected: {reason}", rejects.get(reason, 0), expected_rejects.get(reason, 0))
             for reason in sorted(set(rejects) | set(expected_rejects))]
    rows += [(f"alerts: silent > {silent_min_s / 3600:g} h (open)", len(silent_alerts), len(silent_truth)),
             ("  right meter", len(silent_alerts & silent_truth), len(silent_truth)),
             ("  injected silences caught", len(silent_alerts & injected & silent_truth), len(injected & silent_truth))]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'what':<{width}}  {'seen':>9}  {'injected':>9}")
    for name, seen, expected in rows:
        print(f"{name:<{width}}  {seen:>9}  {expected:>9}{'' if seen == expected else '  <- differs'}")
    print(f"\nfinished in {seconds:.1f}s; store {store.url}")


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    seed = args.seed if args.seed is not None else settings.simulator.seed
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_demo(settings, args.workdir, args.institutions, args.hours, seed))
    with tempfile.TemporaryDirectory(prefix="meterwatch-demo-") as tmp:
        return asyncio.run(_demo(settings, Path(tmp), args.institutions, args.hours, seed))
