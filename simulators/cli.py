"""``meterwatch simulate``: registry files, MQTT publishing, history backfill."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from meterwatch.localtime import DAY
from meterwatch.runtime import load_checked_registry
from meterwatch.settings import Settings
from meterwatch.store import store_for
from simulators.backfill import BackfillResult, backfill
from simulators.faults import write_labels
from simulators.traffic import iter_traffic
from simulators.province import Province, generate_province, write_registry
from simulators.publish import publish_messages

log = logging.getLogger(__name__)


def run(args: argparse.Namespace, settings: Settings) -> int:
    sim = settings.simulator
    if args.action == "registry":
        started = time.monotonic()
        province = generate_province(args.institutions or sim.institutions, args.seed if args.seed is not None
                                     else sim.seed, settings.cities)
        write_registry(province, args.out)
        print(f"wrote {len(province.institutions)} institutions, {len(province.devices)} devices, "
              f"{len(province.cards)} cards to {args.out} in {time.monotonic() - started:.1f}s")
        return 0
    if args.action == "publish":
        registry = load_checked_registry(settings)
        province = Province(list(registry.institutions.values()), list(registry.devices.values()),
                            list(registry.cards.values()))
        end = int(time.time())
        labels, published, seconds = [], 0, 0.0
        for day in iter_traffic(province, end - int(args.hours * 3600), end, sim.seed):  # a day at a time
            labels += day.labels
            log.info("publishing a simulated day", extra={"messages": len(day.messages)})
            stats = asyncio.run(publish_messages(settings, day.messages, speed=args.speed or sim.speed))
            published, seconds = published + stats.published, seconds + stats.seconds
        write_labels(labels, args.labels or sim.labels_file)
        print(f"published {published} messages in {seconds:.1f}s ({published / max(seconds, 1e-9):.0f}/s); "
              f"labels in {args.labels or sim.labels_file}")
        return 0
    if args.action == "backfill":
        return _backfill(args, settings)
    raise ValueError(f"unknown simulate action {args.action!r}")  # argparse's choices keep this unreachable


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    registry = load_checked_registry(settings)
    province = Province(list(registry.institutions.values()), list(registry.devices.values()),
                        list(registry.cards.values()))
    end = int(args.end.timestamp()) if args.end else int(time.time())
    start = end - int(args.days * DAY)
    store = store_for(settings)

    async def main() -> BackfillResult:
        await store.open()
        try:
            return await backfill(store, province, start, end, settings.simulator.seed)
        finally:
            await store.close()

    result = asyncio.run(main())
    labels = args.labels or settings.simulator.labels_file
    write_labels(result.labels or [], labels)
    print(f"backfilled {result.readings} readings and {result.weighings} weighings over {args.days:g} days "
          f"in {result.seconds:.1f}s ({result.rate:,.0f} readings/s); labels in {labels}")
    return 0
