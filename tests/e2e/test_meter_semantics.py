"""Meter semantics through a real mosquitto into InfluxDB: late data (also after a restart),
retries, a rollover, and binary frames with their addresses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from meterwatch.store import MeterValuePoint, ReadingPoint, open_store
from tests.e2e.conftest import eventually, log_says, make_settings, running_collector, until
from tests.helpers import cjt188_water_frame, dlt645_energy_frame, tiny_registry

pytestmark = pytest.mark.servers


async def _stored(collector) -> int:
    return collector.metrics.stored


async def test_late_retry_rollover_and_frames(mosquitto, influx_url, mosquitto_pub, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry", client_id="semantics")
    t = (int(time.time()) // 900 - 20) * 900
    water = "meterwatch/up/inst-a/a-w1/reading"

    def send(topic, ts, value):
        mosquitto_pub(topic, json.dumps({"ts": ts, "value": value}))

    async with running_collector(settings, registry) as first:
        for k, v in enumerate([10.0, 11.0, 13.0, 14.0]):
            send(water, t + 900 * k, v)
        assert await eventually(lambda: _stored(first), 4) == 4
    async with running_collector(settings, registry) as second:  # restarted: knows only the newest reading
        send(water, t + 1350, 11.5)  # late, between t+900 (11.0) and t+1800 (13.0): older than its window
        send(water, t + 5400, 18.0)
        send(water, t + 4500, 16.0)  # late inside the window: splits 14.0 -> 18.0
        send(water, t + 5400, 18.0)  # gateway retry
        for k, v in enumerate([99_990.0, 99_996.0, 3.0]):
            send("meterwatch/up/inst-b/b-w1/reading", t + 900 * k, v)
        mosquitto_pub("meterwatch/up/inst-a/a-e1/frame/dlt645", dlt645_energy_frame("000000000002", 1234.56))
        mosquitto_pub("meterwatch/up/inst-a/a-w1/frame/cjt188", cjt188_water_frame("00000000000001", 20.5).hex(" "))
        mosquitto_pub("meterwatch/up/inst-a/a-e1/frame/dlt645", dlt645_energy_frame("000000000009", 1.0))  # wrong
        assert await eventually(lambda: _received(second), 10) == 10
        assert await eventually(lambda: _stored(second), 10) >= 10
    store = open_store(influx_url)
    await store.open()
    a = {r.ts: (r.register, r.consumption, r.interval_s) for r in await store.fetch(ReadingPoint, device="a-w1")}
    b = [(r.register, r.consumption, r.flag) for r in await store.fetch(ReadingPoint, device="b-w1")]
    e = await store.fetch(ReadingPoint, device="a-e1")
    values = await store.fetch(MeterValuePoint, device="a-w1")
    await store.close()
    assert a[t + 1350] == (11.5, 0.5, 450) and a[t + 1800] == (13.0, 1.5, 450)  # both halves right
    assert a[t + 4500] == (16.0, 2.0, 1800) and a[t + 5400] == (18.0, 2.0, 900)
    assert second.metrics.duplicates == 1
    assert b == [(99_990.0, None, None), (99_996.0, 6.0, None), (3.0, 7.0, "rollover")]
    assert [r.register for r in e] == [pytest.approx(1234.56 * 40)]  # register x multiplier
    frame_reading = [v for ts, v in a.items() if v[0] == 20.5]
    assert len(frame_reading) == 1
    assert {v.quantity for v in values} >= {"valve_state", "battery_low", "clock_offset_s"}
    assert second.metrics.rejected_by_reason == {"address_mismatch": 1}


async def _received(collector) -> int:
    return collector.metrics.received


DIES_BEFORE_ACK = """
import os, signal, sys
from meterwatch.store.influx import InfluxStore

written = InfluxStore.write

async def write(self, batch):
    await written(self, batch)
    if batch.readings:  # durable, not yet acknowledged: the worst moment to die
        os.kill(os.getpid(), signal.SIGKILL)

InfluxStore.write = write
from meterwatch_cli.main import main
sys.exit(main(["collect", "--workers", "1"]))  # one process: the patch above is in it
"""


async def _frame_readings(url: str) -> list[ReadingPoint]:
    store = open_store(url)
    await store.open()
    try:
        return await store.fetch(ReadingPoint, device="a-e1")
    finally:
        await store.close()


async def test_a_frame_redelivered_after_a_crash_before_its_ack_is_stored_once(mosquitto, influx_url,
                                                                             mosquitto_pub, tmp_path):
    """Frames are stamped on receipt: the redelivery must not become a second reading seconds later."""
    registry = tiny_registry(tmp_path / "registry")
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": influx_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "test-redelivery",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool")}
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", DIES_BEFORE_ACK], env=env, stderr=fh, cwd=tmp_path)
    try:
        await log_says(log, "connected and subscribed", proc)
        mosquitto_pub("meterwatch/up/inst-a/a-e1/frame/dlt645", dlt645_energy_frame("000000000002", 1234.56))
        await until(lambda: proc.poll() is not None, "the collector to die after its write")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    (first,) = await _frame_readings(influx_url)  # written, never acknowledged
    await until(lambda: time.time() >= first.ts + 2, "the clock to pass the first reading's second")
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry", client_id="test-redelivery")
    async with running_collector(settings, registry) as restarted:  # the supervisor's restart
        await until(lambda: restarted.metrics.acknowledged == 1, "the redelivered frame to be acknowledged")
    readings = await _frame_readings(influx_url)
    print(f"\nframe redelivered after SIGKILL before its ack: published 1, stored {len(readings)}, "
          f"duplicates {restarted.metrics.duplicates}")
    assert [(r.ts, r.register) for r in readings] == [(first.ts, pytest.approx(1234.56 * 40))]
    assert (restarted.metrics.received, restarted.metrics.duplicates, restarted.metrics.stored) == (1, 1, 0)
    assert dict(restarted.metrics.messages_by_outcome) == {"duplicate": 1}
