"""The store goes away mid-stream (influxd stopped 30 s) and a collector is SIGKILLed mid-stream:
every reading published is stored, exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from meterwatch.registry import load_registry
from meterwatch.store import ReadingPoint, open_store
from simulators.province import generate_province, write_registry
from tests.conftest import _unavailable
from tests.e2e.conftest import eventually, log_says, make_settings, running_collector, until
from tests.e2e.stream import publish, reading_stream
from benchmarks.servers import ServerUnavailable, start_influxd

pytestmark = pytest.mark.servers


def province(tmp_path, n: int = 10):
    write_registry(generate_province(n, seed=11), tmp_path / "registry")
    registry, _ = load_registry(tmp_path / "registry")
    return registry


async def distinct_readings(url: str) -> int:
    store = open_store(url)
    try:
        await store.open()
        return await store.count(ReadingPoint)
    except Exception:
        return -1
    finally:
        await store.close()


async def test_influxd_stopped_30s_mid_stream_everything_stored_once(mosquitto, tmp_path):
    try:
        influxd = start_influxd(tmp_path / "influx")
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    try:
        url = f"influxdb://127.0.0.1:{influxd.port}/outage"
        registry = province(tmp_path)
        messages = reading_stream(registry, 2400)
        settings = make_settings(mosquitto.port, url, tmp_path / "registry", store_timeout_s=2.0)
        async with running_collector(settings, registry) as collector:
            stream = asyncio.create_task(publish(mosquitto.port, messages, rate=60))
            await until(lambda: collector.metrics.stored > 0, "readings stored before the outage")
            influxd.stop()
            down_at = time.monotonic()
            await asyncio.sleep(30)  # the outage itself: time deliberately left to pass
            peak_spool = collector.spool.bytes
            influxd.start()
            outage = time.monotonic() - down_at
            await stream
            assert await eventually(lambda: _drained(collector), True, timeout=60) is True
        stored = await distinct_readings(url)
        print(f"\noutage {outage:.0f}s: published {len(messages)}, received {collector.metrics.received}, "
              f"spooled {collector.metrics.spooled} readings (peak spool {peak_spool} bytes), stored {stored}")
        assert collector.metrics.spooled > 500  # the outage really diverted the stream to disk
        assert peak_spool > 0
        assert collector.metrics.received == len(messages) and collector.metrics.duplicates == 0
        assert stored == len(messages)
    finally:
        influxd.stop()


async def _drained(collector) -> bool:
    return collector.metrics.received == 2400 and not collector._pending and len(collector.spool) == 0  # noqa: SLF001


async def _some_stored(url: str) -> bool:
    return await distinct_readings(url) > 0


def collect_process(env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect"], env=env, stderr=log)


async def test_sigkill_mid_stream_loses_nothing(mosquitto, influx_url, tmp_path):
    registry = province(tmp_path)
    messages = reading_stream(registry, 3000)
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": influx_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "test-sigkill",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool")}
    with (tmp_path / "collect.log").open("wb") as log:
        first = collect_process(env, log)
        await log_says(tmp_path / "collect.log", "connected and subscribed", first)  # a persistent session
        stream = asyncio.create_task(publish(mosquitto.port, messages, rate=400))
        await until(lambda: _some_stored(influx_url), "readings stored before the kill")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_with = await distinct_readings(influx_url)
        second = collect_process(env, log)
        try:
            await stream
            stored = await eventually(lambda: distinct_readings(influx_url), len(messages), timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    print(f"\nSIGKILL after {killed_with} of {len(messages)} readings stored; after restart: {stored}")
    assert 0 < killed_with < len(messages)  # the kill really was mid-stream
    assert stored == len(messages)
