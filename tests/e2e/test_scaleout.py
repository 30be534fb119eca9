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
from meterwatch.store import ReadingPoint, open_store
from simulators.province import generate_province, write_registry
from tests.e2e.conftest import eventually, make_settings, running_collector

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


async def stored_readings(url: str) -> list[ReadingPoint]:
    store = open_store(url)
    await store.open()
    try:
        return await store.fetch(ReadingPoint)
    finally:
        await store.close()


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


async def test_shared_subscription_backlog_burst_gives_exact_consumption(mosquitto, influx_url, tmp_path):
    """Issue 17.5: a meter's backlog, round-robined between two collectors of a shared subscription."""
    write_registry(generate_province(6, seed=11), tmp_path / "registry")
    registry, _ = load_registry(tmp_path / "registry")
    messages = backlog_bursts(registry, 12)
    settings = [make_settings(mosquitto.port, influx_url, tmp_path / "registry", instance=f"c{i}",
                              client_id=f"race-c{i}", spool_dir=tmp_path / f"spool{i}", shared_group="race")
                for i in range(2)]
    async with collectors(settings, registry) as running:
        await publish_in_order(mosquitto.port, messages)
        total = await eventually(lambda: sum(c.metrics.acknowledged for c in running), len(messages), timeout=60)
        assert total == len(messages)
    assert all(c.metrics.received > len(messages) // 4 for c in running)  # both did real work
    readings = await stored_readings(influx_url)
    assert len(readings) == len(messages)
    assert_consumption_exact(readings, registry)
