"""Several collectors share the load: every message stored exactly once, and consumption exact even when one
meter's uploads arrive in a burst (a gateway flushing its backlog) and would reach different collectors."""

from __future__ import annotations

import contextlib
import json
import time
from collections import defaultdict

import aiomqtt
import pytest

from meterwatch.registry import load_registry
from meterwatch.store import ReadingPoint, RejectRecord, WeighingPoint, open_store
from simulators.province import generate_province, write_registry
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.helpers import fetch_all

pytestmark = pytest.mark.servers

STEP = 1.5  # register step between a meter's consecutive readings (times its multiplier)


def backlog_bursts(registry, per_meter: int) -> list[tuple[str, bytes]]:
    """Each meter's ``per_meter`` quarter-hours as consecutive messages, meter after meter: a gateway flushing
    its backlog, so one meter's messages follow each other within the same second."""
    meters = sorted(d.id for d in registry.devices.values() if d.kind != "scale")
    t0 = (int(time.time()) // 900 - per_meter - 4) * 900
    out = []
    for device_id in meters:
        device = registry.devices[device_id]
        for k in range(per_meter):
            out.append((f"meterwatch/up/{device.institution}/{device.id}/reading",
                        json.dumps({"ts": t0 + 900 * k, "value": 10.0 + STEP * k}).encode()))
    return out


async def publish_in_order(port: int, messages: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"burst-{time.monotonic_ns()}") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)



def assert_consumption_exact(readings: list[ReadingPoint], registry) -> None:
    """Per meter: the first reading has no consumption, every other one exactly one step, and their sum is the
    last register minus the first (computed by hand: the stream's registers rise by STEP x multiplier)."""
    by_device = defaultdict(list)
    for r in readings:
        by_device[r.device].append(r)
    for device, rows in by_device.items():
        rows.sort(key=lambda r: r.ts)
        step = STEP * registry.devices[device].multiplier
        assert rows[0].consumption is None, device
        assert [r.consumption for r in rows[1:]] == pytest.approx([step] * (len(rows) - 1)), device
        assert sum(r.consumption for r in rows[1:]) == pytest.approx(rows[-1].register - rows[0].register), device


@contextlib.asynccontextmanager
async def collectors(settings_list, registry):
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_collector(s, registry)) for s in settings_list]


def workers(port: int, store_url: str, tmp_path, count: int) -> list:
    """The settings of ``collect --workers count``'s workers: the same but for the partition."""
    return [make_settings(port, store_url, tmp_path / "registry", instance="c", client_id=f"scale-{count}",
                          spool_dir=tmp_path / "spool", partition=f"{i}/{count}") for i in range(count)]


async def test_partitions_give_exact_consumption_for_a_backlog_burst(mosquitto, influx_url, tmp_path):
    """Issue 17.5: a meter's backlog arrives within the same second.  On a shared subscription the broker
    round-robined it between two collectors and consumption came out doubled (120 instead of 60 per quarter-hour,
    commit 12ed7c2); with partitions each meter has one worker, whose history is the meter's."""
    write_registry(generate_province(6, seed=11), tmp_path / "registry")
    registry, _ = load_registry(tmp_path / "registry")
    messages = backlog_bursts(registry, 12)
    async with collectors(workers(mosquitto.port, influx_url, tmp_path, 2), registry) as running:
        await publish_in_order(mosquitto.port, messages)
        total = await eventually(lambda: sum(c.metrics.acknowledged for c in running), len(messages), timeout=60)
        assert total == len(messages)
        assert [c.metrics.skipped_other_partition for c in running] == [c.metrics.received for c in running[::-1]]
    assert all(c.metrics.received > len(messages) // 4 for c in running)  # both did real work
    readings = await fetch_all(influx_url, ReadingPoint)
    assert len(readings) == len(messages)
    assert_consumption_exact(readings, registry)


@pytest.mark.parametrize("count", [2, 3])
async def test_every_message_is_handled_by_exactly_one_worker(mosquitto, influx_url, tmp_path, count):
    """Readings, weighings and bad input: each stored or rejected once, whichever worker owned it."""
    write_registry(generate_province(6, seed=12), tmp_path / "registry")
    registry, _ = load_registry(tmp_path / "registry")
    scale = next(d for d in registry.devices.values() if d.kind == "scale")
    card = next(c.card for c in registry.cards.values() if c.institution == scale.institution)
    t0 = int(time.time()) - 3600
    weighings = [(f"meterwatch/up/{scale.institution}/{scale.id}/weighing",
                  json.dumps({"ts": t0 + k, "card": card, "weight_kg": 2.5}).encode()) for k in range(20)]
    bad = [("meterwatch/up/inst-only/reading", b"{}"),  # bad_topic: partition 0 keeps it
           (f"meterwatch/up/{scale.institution}/ghost-1/reading", b'{"ts": 1, "value": 1}'),  # unknown_device
           (f"meterwatch/up/{scale.institution}/{scale.id}/weighing", b"{not json")]  # malformed_json
    messages = backlog_bursts(registry, 5) + weighings + bad
    async with collectors(workers(mosquitto.port, influx_url, tmp_path, count), registry) as running:
        await publish_in_order(mosquitto.port, messages)
        total = await eventually(lambda: sum(c.metrics.acknowledged for c in running), len(messages), timeout=60)
        assert total == len(messages)
        for c in running:  # each worker saw every message: its own handled, the others' acknowledged unhandled
            assert await eventually(lambda c=c: c.metrics.received + c.metrics.skipped_other_partition,
                                    len(messages)) == len(messages)
    assert sum(c.metrics.received for c in running) == len(messages)
    assert sum(c.metrics.stored for c in running) == len(messages) - len(bad)
    assert sorted(r for c in running for r in c.metrics.rejected_by_reason.elements()) == \
        ["bad_topic", "malformed_json", "unknown_device"]
    assert running[0].metrics.rejected_by_reason["bad_topic"] == 1
    store = open_store(influx_url)
    await store.open()
    try:
        assert await store.count(WeighingPoint) == len(weighings)
        assert sorted((await store.count_by(RejectRecord, "reason", 0)).items()) == \
            [("bad_topic", 1), ("malformed_json", 1), ("unknown_device", 1)]
    finally:
        await store.close()
    readings = await fetch_all(influx_url, ReadingPoint)
    assert len(readings) == len(messages) - len(weighings) - len(bad)
    assert_consumption_exact(readings, registry)
