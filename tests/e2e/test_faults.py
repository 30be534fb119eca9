"""Faults on real mosquitto + influxd: for each, published == stored after recovery, or the process exits
non-zero within seconds.  Never a hang: every wait has a deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.servers import Server, ServerUnavailable, start_influxd, start_mosquitto
from meterwatch.store import RejectRecord, open_store
from simulators.traffic import Message
from tests.conftest import _unavailable
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.e2e.stream import publish, reading_stream
from tests.e2e.test_outage import distinct_readings, province

pytestmark = pytest.mark.servers
PERSISTENT_BROKER = """persistence true
persistence_location {dir}/
autosave_interval 1
autosave_on_changes true
"""


def server(start, *args: object) -> Server:
    try:
        return start(*args)
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        raise


def kill_and_restart(srv: Server) -> None:
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.proc = None
    srv.start()  # same port, same data directory


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def report(fault: str, published: int, stored: int) -> None:
    print(f"\n{fault}: published {published}, stored {stored}, lost {published - stored}")


@pytest.fixture
def own_influxd(tmp_path) -> Server:
    srv = server(start_influxd, tmp_path / "influx")
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGCONT)
    srv.stop()


async def stream_through_fault(mosquitto_port: int, url: str, tmp_path: Path, fault, n: int = 1200,
                               rate: float = 200, **collector: object) -> int:
    """Publish ``n`` readings while ``fault(collector)`` runs; return what the store holds once drained."""
    registry = province(tmp_path)
    messages = reading_stream(registry, n)
    settings = make_settings(mosquitto_port, url, tmp_path / "registry", store_timeout_s=1.0, **collector)
    async with running_collector(settings, registry) as col:
        stream = asyncio.create_task(publish(mosquitto_port, messages, rate=rate))
        await fault(col)
        await asyncio.wait_for(stream, 60)
        await until(lambda: col.metrics.stored == n and len(col.spool) == 0, 60, "everything stored")
    return await distinct_readings(url)


async def test_store_stalled_then_resumed(mosquitto, own_influxd, tmp_path):
    async def stall(col) -> None:
        await asyncio.sleep(1.5)
        own_influxd.proc.send_signal(signal.SIGSTOP)
        await until(lambda: col.metrics.spooled > 0, 20, "writes diverted to the spool")
        await asyncio.sleep(2)
        own_influxd.proc.send_signal(signal.SIGCONT)

    url = f"influxdb://127.0.0.1:{own_influxd.port}/stalled"
    stored = await stream_through_fault(mosquitto.port, url, tmp_path, stall)
    report("influxd SIGSTOP/SIGCONT", 1200, stored)
    assert stored == 1200


async def test_store_killed_and_restarted(mosquitto, own_influxd, tmp_path):
    async def kill(col) -> None:
        await asyncio.sleep(1.5)
        own_influxd.proc.send_signal(signal.SIGKILL)
        own_influxd.proc.wait(10)
        await until(lambda: col.metrics.spooled > 0, 20, "writes diverted to the spool")
        own_influxd.proc = None
        own_influxd.start()

    url = f"influxdb://127.0.0.1:{own_influxd.port}/killed"
    stored = await stream_through_fault(mosquitto.port, url, tmp_path, kill)
    report("influxd SIGKILL + restart", 1200, stored)
    assert stored == 1200


async def test_disk_full_under_the_spool_is_backpressure_then_everything_stored(mosquitto, own_influxd, tiny_fs,
                                                                               tmp_path):
    (tiny_fs / "filler").write_bytes(b"\0" * 900_000)  # ~150 KB left: about 2,000 spooled readings

    async def store_down_disk_full(col) -> None:
        own_influxd.stop()
        await until(lambda: col.writer.full_since is not None, 30, "ENOSPC backpressure")
        held = col.metrics.stored
        await asyncio.sleep(1)
        assert col.metrics.stored == held  # nothing acknowledged while the disk is full
        own_influxd.start()

    url = f"influxdb://127.0.0.1:{own_influxd.port}/diskfull"
    stored = await stream_through_fault(mosquitto.port, url, tmp_path, store_down_disk_full, n=4000, rate=400,
                                        spool_dir=tiny_fs)
    report("influxd down + ENOSPC under the spool", 4000, stored)
    assert stored == 4000


async def test_broker_killed_with_persistence_and_restarted(own_influxd, tmp_path):
    broker = server(start_mosquitto, tmp_path / "broker", PERSISTENT_BROKER)
    try:
        registry = province(tmp_path)
        messages = reading_stream(registry, 1200)
        url = f"influxdb://127.0.0.1:{own_influxd.port}/brokerkilled"
        settings = make_settings(broker.port, url, tmp_path / "registry")
        async with running_collector(settings, registry) as col:
            await publish(broker.port, messages[:600], rate=400)
            kill_and_restart(broker)
            await asyncio.wait_for(col.connected.wait(), 30)
            await publish(broker.port, messages[600:], rate=400)
            await until(lambda: col.metrics.stored == 1200, 60, "everything stored")
        stored = await distinct_readings(url)
    finally:
        broker.stop()
    report("mosquitto SIGKILL + restart (persistence)", 1200, stored)
    assert stored == 1200


FAULTY_COLLECTOR = """
import asyncio
import sys
from meterwatch.store.influx import InfluxStore

async def write(self, batch):
    if batch.readings:  # slow, then broken: batches queue up behind the dying write
        await asyncio.sleep(1.0)
        raise ZeroDivisionError("injected: a bug in the write path")

InfluxStore.write = write
from meterwatch_cli.main import main
sys.exit(main(["collect", "--workers", "1"]))  # one process: the patch above is in it
"""


async def test_a_write_that_raises_exits_non_zero_within_seconds_and_a_restart_stores_everything(
        mosquitto, influx_url, tmp_path):
    registry = province(tmp_path)
    messages = reading_stream(registry, 300)
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": influx_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "test-faulty",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool"), "METERWATCH_COLLECTOR__SHUTDOWN_GRACE_S": "5"}
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", FAULTY_COLLECTOR], env=env, stderr=fh, cwd=tmp_path)
    try:
        await until(lambda: b"connected and subscribed" in log.read_bytes() or proc.poll() is not None, 20,
                    "the faulty collector to subscribe")
        await publish(mosquitto.port, messages, rate=400)
        started = time.monotonic()
        await until(lambda: proc.poll() is not None, 20, "the faulty collector to exit")
        exited_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert proc.returncode == 1, text
    assert "collector component died" in text and "ZeroDivisionError" in text
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry", client_id="test-faulty")
    async with running_collector(settings, registry):  # the supervisor's restart: the broker redelivers
        stored = await eventually(lambda: distinct_readings(influx_url), 300, timeout=30)
    print(f"\nwrite raises: exited with {proc.returncode} {exited_in:.1f} s after the stream")
    report("a write that raises, then restart", 300, stored)
    assert stored == 300


async def test_rejects_over_the_body_limit_are_bounded_split_and_stored(mosquitto, influx_url, tmp_path):
    """200 malformed payloads of 200 KB: 40 MB of rejects, over influxd's 25,000,000-byte request limit."""
    registry = province(tmp_path)
    device = next(d for d in registry.devices.values() if d.kind != "scale")
    topic = f"meterwatch/up/{device.institution}/{device.id}/reading"
    messages = [Message(float(k), topic, b"{" + bytes([65 + k % 26]) * 200_000) for k in range(200)]
    settings = make_settings(mosquitto.port, influx_url, tmp_path / "registry", batch_interval_s=2.0,
                             shutdown_grace_s=5)
    async with running_collector(settings, registry) as col:
        await publish(mosquitto.port, messages, rate=400)
        await until(lambda: col.metrics.rejected == 200, 60, "200 rejects written")
    store = open_store(influx_url)
    try:
        kept = await store.fetch(RejectRecord)
    finally:
        await store.close()
    print(f"\n413 case: published 200 x 200 KB, rejects stored {len(kept)}, quarantined {col.metrics.quarantined}")
    assert len(kept) == 200 and col.metrics.quarantined == 0 and len(col.quarantine) == 0
    assert {r.reason for r in kept} == {"malformed_json"}
    assert {len(r.payload) for r in kept} == {65536}
    assert all("payload 200001 bytes, first 65536 kept" in r.detail for r in kept)
