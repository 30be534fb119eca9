"""The collector process serves /healthz and Prometheus /metrics (a real `meterwatch collect`, real mosquitto,
real DuckDB): operators supervise and scrape it with the tools they already run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import aiomqtt
import pytest

from benchmarks.servers import free_port
from tests.e2e.conftest import eventually
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers


async def _get(url: str) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as answer:
            return answer.status, await answer.text()
    except aiohttp.ClientError:
        return 0, ""


def _metric(text: str, name: str) -> float | None:
    line = next((line for line in text.splitlines() if line.startswith(name + " ")), None)
    return float(line.split()[1]) if line else None


async def test_collector_healthz_and_metrics(mosquitto, duck_url, tmp_path):
    tiny_registry(tmp_path / "registry")
    port = free_port()
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": duck_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "test-http",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool"), "METERWATCH_COLLECTOR__BATCH_INTERVAL_S": "0.2",
           "METERWATCH_COLLECTOR__HTTP_LISTEN": f"127.0.0.1:{port}"}
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect"], env=env, stderr=fh,
                                cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        assert await eventually(lambda: _get(base + "/healthz"), (200, "ok\n"), timeout=30) == (200, "ok\n"), \
            log.read_text()[-2000:]
        t0 = (int(time.time()) // 900 - 4) * 900
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for k in range(3):
                await client.publish("meterwatch/up/inst-a/a-w1/reading", json.dumps({"ts": t0 + 900 * k, "value": k}),
                                     qos=1)
            await client.publish("meterwatch/up/inst-a/a-w1/reading", b"{not json", qos=1)

        async def counts():
            _, text = await _get(base + "/metrics")
            return (_metric(text, "meterwatch_collector_received_total"),
                    _metric(text, "meterwatch_collector_stored_total"),
                    _metric(text, 'meterwatch_collector_rejected_total{reason="malformed_json"}'))
        assert await eventually(counts, (4.0, 3.0, 1.0), timeout=30) == (4.0, 3.0, 1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
