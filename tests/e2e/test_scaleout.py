"""Two collectors share the load through a shared subscription: every message stored exactly once,
and consumption still right although consecutive uploads of a meter reach different collectors."""

from __future__ import annotations

from collections import defaultdict

import pytest

from meterwatch.registry import load_registry
from meterwatch.store import ReadingPoint, open_store
from simulators.province import generate_province, write_registry
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.e2e.stream import publish, reading_stream

pytestmark = pytest.mark.servers


async def test_two_collectors_shared_subscription(mosquitto, influx_url, tmp_path):
    write_registry(generate_province(10, seed=11), tmp_path / "registry")
    registry, _ = load_registry(tmp_path / "registry")
    messages = reading_stream(registry, 600)
    common = {"shared_group": "meterwatch"}
    one = make_settings(mosquitto.port, influx_url, tmp_path / "registry", instance="c1", client_id="c1",
                        spool_dir=tmp_path / "spool1", **common)
    two = make_settings(mosquitto.port, influx_url, tmp_path / "registry", instance="c2", client_id="c2",
                        spool_dir=tmp_path / "spool2", **common)
    async with running_collector(one, registry) as a, running_collector(two, registry) as b:
        await publish(mosquitto.port, messages, rate=40)
        assert await eventually(lambda: _received(a, b), len(messages), timeout=30) == len(messages)
    store = open_store(influx_url)
    await store.open()
    readings = await store.fetch(ReadingPoint)
    await store.close()
    print(f"\nshared subscription: c1 received {a.metrics.received}, c2 {b.metrics.received}; stored {len(readings)}")
    assert a.metrics.received > 100 and b.metrics.received > 100  # both did real work
    assert a.metrics.duplicates + b.metrics.duplicates == 0
    assert len(readings) == len(messages)
    by_device = defaultdict(list)
    for r in readings:
        by_device[r.device].append(r)
    for device, rows in by_device.items():
        rows.sort(key=lambda r: r.ts)
        assert rows[0].consumption is None
        step = 1.5 * registry.devices[device].multiplier
        assert [r.consumption for r in rows[1:]] == pytest.approx([step] * (len(rows) - 1)), device


async def _received(a, b) -> int:
    return a.metrics.received + b.metrics.received
