"""Readings through a real mosquitto into InfluxDB (and DuckDB): values, counts, duplicates, rejects."""

from __future__ import annotations

import json
import time

import pytest

from collector import reasons
from meterwatch.store import ReadingPoint, RejectRecord, WeighingPoint, open_store
from tests.e2e.conftest import eventually, make_settings, running_collector, until
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers


async def test_mosquitto_pub_reading_lands_in_influxdb_with_register_and_consumption(
        mosquitto, influx_url, mosquitto_pub, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry")
    t0 = (int(time.time()) // 900 - 4) * 900
    async with running_collector(settings, registry) as collector:
        mosquitto_pub("meterwatch/up/inst-a/a-e1/reading", json.dumps({"ts": t0, "value": 100.0}))
        mosquitto_pub("meterwatch/up/inst-a/a-e1/reading", json.dumps({"ts": t0 + 900, "value": 100.5}))
        reader = open_store(influx_url)
        await reader.open()
        assert await eventually(lambda: reader.count(ReadingPoint), 2) == 2
    # Straight InfluxQL, as a dashboard would ask:
    series = await reader.query('SELECT "register", "consumption", "interval_s" FROM "reading" '
                                "WHERE \"device\" = 'a-e1' AND \"institution\" = 'inst-a' AND \"kind\" = 'electricity'")
    values = series[0]["values"]
    assert values == [[t0, 4000, None, None], [t0 + 900, 4020, 20, 900]]
    assert collector.metrics.stored == 2 and collector.metrics.received == 2
    await reader.close()


async def test_batch_retry_spoof_and_garbage_through_real_broker(mosquitto, store_url, mosquitto_pub, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    settings = make_settings(mosquitto.port, store_url, tmp_path / "registry")
    t0 = (int(time.time()) // 900 - 10) * 900
    batch = json.dumps({"readings": [{"ts": t0 + 900 * k, "value": 10.0 + k} for k in range(4)]
                        + [{"ts": t0 + 3600, "value": -1}]})
    async with running_collector(settings, registry) as collector:
        mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", batch)
        mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", batch)  # gateway retry
        mosquitto_pub("meterwatch/up/inst-b/a-w1/reading", json.dumps({"ts": t0 + 4500, "value": 99}))  # spoof
        mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", b"\x00garbage{")
        mosquitto_pub("meterwatch/up/inst-a/a-s1/weighing", json.dumps({"ts": t0, "card": "CARD01", "weight_kg": 4.5}))
        mosquitto_pub("meterwatch/up/inst-b/b-w1/reading", json.dumps({"ts": t0, "value": 5}))
        assert await eventually(lambda: _received(collector), 6) == 6
    store = open_store(store_url)
    await store.open()
    readings = await store.fetch(ReadingPoint, device="a-w1")
    assert [(r.ts, r.register, r.consumption) for r in readings] == [
        (t0, 10.0, None), (t0 + 900, 11.0, 1.0), (t0 + 1800, 12.0, 1.0), (t0 + 2700, 13.0, 1.0)]
    assert await store.count(ReadingPoint) == 5  # 4 of a-w1 + 1 of b-w1: the retry collapsed, the spoof refused
    assert await store.count(WeighingPoint) == 1
    rejects = await store.fetch(RejectRecord)
    by_reason = sorted((r.reason, r.topic) for r in rejects)
    assert by_reason == sorted([
        (reasons.BAD_VALUE, "meterwatch/up/inst-a/a-w1/reading"),  # the -1 item, first delivery
        (reasons.BAD_VALUE, "meterwatch/up/inst-a/a-w1/reading"),  # ... and its retry
        (reasons.INSTITUTION_MISMATCH, "meterwatch/up/inst-b/a-w1/reading"),
        (reasons.MALFORMED_JSON, "meterwatch/up/inst-a/a-w1/reading"),
    ])
    spoof = next(r for r in rejects if r.reason == reasons.INSTITUTION_MISMATCH)
    assert "belongs to inst-a" in spoof.detail and json.loads(spoof.payload)["value"] == 99
    assert next(r for r in rejects if r.reason == reasons.MALFORMED_JSON).payload == b"\x00garbage{"
    assert collector.metrics.duplicates == 4 and collector.metrics.rejected == 4
    await store.close()


async def _received(collector) -> int:
    return collector.metrics.received


async def test_store_down_batches_spooled_acknowledged_and_replayed_after_restart(
        mosquitto, influx_url, mosquitto_pub, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    t0 = (int(time.time()) // 900 - 4) * 900
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry", client_id="test-spool")
    async with running_collector(settings, registry) as failing:
        failing.store.base = "http://127.0.0.1:9"  # from here on every write fails (connection refused)
        for k in range(3):
            mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", json.dumps({"ts": t0 + 900 * k, "value": 1.0 + k}))
        assert await eventually(lambda: _spooled(failing), 3) == 3
    assert len(failing.spool) >= 1 and failing.spool.bytes > 0
    async with running_collector(settings, registry) as again:  # same spool directory, store back
        assert await eventually(lambda: _spool_len(again), 0) == 0
    assert again.metrics.received == 0  # acknowledged once spooled: nothing redelivered
    reader = open_store(influx_url)
    await reader.open()
    assert [(r.register, r.consumption) for r in await reader.fetch(ReadingPoint)] == [(1.0, None), (2.0, 1.0),
                                                                                      (3.0, 1.0)]
    await reader.close()


async def test_spool_full_holds_back_acknowledgements_and_the_broker_redelivers(
        mosquitto, influx_url, mosquitto_pub, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    t0 = (int(time.time()) // 900 - 4) * 900
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry", client_id="test-full",
                             shutdown_grace_s=0.5, spool_max_bytes=64)
    async with running_collector(settings, registry):
        pass  # the persistent session now exists on the broker
    async with running_collector(settings, registry) as failing:
        failing.store.base = "http://127.0.0.1:9"
        for k in range(3):
            mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", json.dumps({"ts": t0 + 900 * k, "value": 1.0 + k}))
        assert await eventually(lambda: _received(failing), 3) == 3
        await until(lambda: failing.writer.full_since is not None, "the writer to hold back with the spool full")
    assert failing.metrics.stored == 0 and len(failing.spool) == 0
    async with running_collector(settings, registry) as again:
        assert await eventually(lambda: _stored(again), 3) == 3
    assert again.metrics.received == 3  # redelivered because never acknowledged
    reader = open_store(influx_url)
    await reader.open()
    assert [r.register for r in await reader.fetch(ReadingPoint)] == [1.0, 2.0, 3.0]
    await reader.close()


async def _spooled(collector) -> int:
    return collector.metrics.spooled


async def _spool_len(collector) -> int:
    return len(collector.spool)


async def _stored(collector) -> int:
    return collector.metrics.stored
