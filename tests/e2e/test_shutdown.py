"""SIGTERM makes `meterwatch collect` flush what it buffered before it exits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from meterwatch.store import ReadingPoint, open_store
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers


async def test_sigterm_flushes_buffered_readings(mosquitto, influx_url, mosquitto_pub, tmp_path):
    tiny_registry(tmp_path / "registry")
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": influx_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"),
           "METERWATCH_COLLECTOR__CLIENT_ID": "test-sigterm",
           "METERWATCH_COLLECTOR__BATCH_INTERVAL_S": "3600", "METERWATCH_COLLECTOR__BATCH_SIZE": "10000"}
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect"], env=env, stderr=fh, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while b"connected and subscribed" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        t0 = (int(time.time()) // 900 - 30) * 900
        for k in range(20):
            mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", json.dumps({"ts": t0 + 900 * k, "value": k * 0.5}))
        store = open_store(influx_url)
        await store.open()
        await asyncio.sleep(0.5)
        assert await store.count(ReadingPoint) == 0  # buffered: the hour-long batch interval has not passed
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert await store.count(ReadingPoint) == 20
    assert "password" not in log.read_text().lower()
    assert "collector stopped" in log.read_text()
    await store.close()
