"""A simulated province in an InfluxDB, as the dashboards would find it in production.

History (and the same days last year) is backfilled; the last minutes go
through the real path (simulated gateways -> broker -> collector) so that
the collector's own counters and its dead letters exist; analytics is
replayed over the history, so alerts open and resolve and the daily
statistics accumulate; finally the rollups are computed.  Tests, the
README pictures and the latency benchmark all load their data here.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from analytics.alerts import AlertBook
from analytics.report import statistics
from analytics.runner import evaluate
from collector.service import Collector
from dashboards import rollups
from meterwatch.localtime import DAY
from meterwatch.registry import Institution, Registry, load_registry
from meterwatch.settings import Settings
from meterwatch.store import store_for
from meterwatch.store.influx import InfluxStore
from simulators.backfill import backfill
from simulators.broker import embedded_broker
from simulators.faults import FaultRates
from simulators.province import Province, generate_province, write_registry
from simulators.publish import publish_messages
from simulators.traffic import Message, simulate_traffic

log = logging.getLogger(__name__)
SAMPLE_QUOTAS = Path(__file__).resolve().parent.parent / "examples" / "registry" / "quotas.toml"
BOARD_RANGE = {"mw-collector": "now-5m"}  # the sample's collector ran for half a minute, not six hours
PICKS_INSTITUTION = ("mw-institution", "mw-garbage")  # boards with an institution picker
# More faults than a real province has, so that a small sample still has every kind of alert to show.
SAMPLE_FAULTS = FaultRates(leak=0.15, burst=0.1, silent=0.06, frozen=0.02, backwards=0.01, spoof=0.01,
                           malformed=0.01, retry=0.02, unknown_card=0.3, mis_sorted=0.1)


@dataclass
class Sample:
    province: Province
    registry: Registry
    start: int
    end: int
    readings: int = 0
    published: int = 0
    alert_events: int = 0

    def meter_kinds(self) -> dict[str, set[str]]:
        """Institution id -> the kinds of device it has."""
        kinds: dict[str, set[str]] = {}
        for d in self.registry.devices.values():
            kinds.setdefault(d.institution, set()).add(d.kind)
        return kinds

    def showcase(self, alerted: frozenset[str] | set[str] = frozenset()) -> Institution:
        """The institution to show on the pickers: an office (the sample's quotas cover offices) with the
        most kinds of device, one with alerts first."""
        kinds = self.meter_kinds()
        offices = sorted((i for i in self.registry.institutions.values() if i.type == "office"), key=lambda i: i.id)
        return max(offices, key=lambda i: (len(kinds.get(i.id, ())), i.id in alerted))


async def load_sample(settings: Settings, workdir: Path, *, institutions: int, days: int, seed: int = 7,
                      live_s: int = 1800, collector_s: float = 25.0, evaluations_per_day: int = 4) -> Sample:
    """Load ``days`` of history ending now into ``settings.store`` (an InfluxDB); see the module doc."""
    province = generate_province(institutions, seed, settings.cities)
    write_registry(province, workdir / "registry")
    shutil.copy(SAMPLE_QUOTAS, workdir / "registry" / "quotas.toml")
    shutil.copy(SAMPLE_QUOTAS.with_name("tariffs.toml"), workdir / "registry" / "tariffs.toml")
    registry, _ = load_registry(workdir / "registry", settings.cities)
    end = int(time.time())
    live_start = end - live_s
    sample = Sample(province, registry, end - days * DAY, end)
    store = store_for(settings)
    if not isinstance(store, InfluxStore):
        raise ValueError("the dashboards' sample goes into an InfluxDB store")
    await store.open()
    try:
        for shift in (365 * DAY, 0):  # the same days last year, for year-on-year
            done = await backfill(store, province, sample.start - shift, end - shift, seed, SAMPLE_FAULTS,
                                  until=live_start - shift)
            sample.readings += done.readings
        sample.published = await _live(settings, workdir, registry, province, sample.start, live_start, end, seed,
                                       collector_s)
        book = AlertBook(update_interval_s=settings.analytics.update_interval_s)
        step = DAY // evaluations_per_day
        for at in range(sample.start + step, end + 1, step):
            evaluation = await evaluate(store, registry, settings.analytics, book, at, notifiers=[])
            sample.alert_events += len(evaluation.events)
            if (at - sample.start) % DAY == 0:
                await statistics(store, registry, at)
        await statistics(store, registry, end)
        await rollups.apply(store, sample.start - 365 * DAY, end)
        await rollups.install(store)
    finally:
        await store.close()
    log.info("sample loaded", extra={"institutions": institutions, "days": days, "readings": sample.readings,
                                     "published": sample.published, "alert_events": sample.alert_events})
    return sample


async def _live(settings: Settings, workdir: Path, registry: Registry, province: Province, start: int, live_start: int,
                end: int, seed: int, collector_s: float) -> int:
    """The last stretch through broker and collector; runs at least ``collector_s`` for its counters.

    The traffic is simulated over the history's whole window (the same fleet
    model as the backfill, so registers continue where it stopped), and
    only its last stretch is sent.
    """
    traffic = simulate_traffic(province, start, end, seed, SAMPLE_FAULTS)
    traffic.messages = [m for m in traffic.messages if m.at >= live_start] + _dead_letters(province, end)
    async with embedded_broker() as broker_url:
        live = settings.model_copy(update={
            "broker": broker_url, "registry": workdir / "registry",
            "collector": settings.collector.model_copy(update={
                "spool_dir": workdir / "spool", "metrics_interval_s": 2.0, "client_id": "sample-collector",
                "instance": "sample-collector"}),
        })
        store = store_for(live)
        collector = Collector(live, registry, store)
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        started = time.monotonic()
        try:
            await asyncio.wait_for(collector.connected.wait(), 30)
            stats = await publish_messages(live, traffic.messages, max_rate=2000, workers=16)
            deadline = time.monotonic() + 60
            while collector.metrics.received < stats.published and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(max(0.0, collector_s - (time.monotonic() - started)))
        finally:
            stop.set()
            await task
            await store.close()
    return stats.published


def _dead_letters(province: Province, at: int) -> list[Message]:
    """Two messages the collector must refuse, so that its dead letters always have something to show
    (the sample's random faults may send none in half an hour): garbled JSON, and a meter claimed by
    another institution."""
    meter = next(d for d in province.devices if d.kind != "scale")
    other = next(i for i in province.institutions if i.id != meter.institution)
    return [Message(at, f"meterwatch/up/{meter.institution}/{meter.id}/reading", b'{"ts": 1, "value":'),
            Message(at, f"meterwatch/up/{other.id}/{meter.id}/reading", b'{"ts": %d, "value": 1.0}' % (at - 60))]
