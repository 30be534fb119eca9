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
from tests.e2e.conftest import eventually, http_get, metric_value
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers



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
        assert await eventually(lambda: http_get(base + "/healthz"), (200, "ok\n"), timeout=30) == (200, "ok\n"), \
            log.read_text()[-2000:]
        t0 = (int(time.time()) // 900 - 4) * 900
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for k in range(3):
                await client.publish("meterwatch/up/inst-a/a-w1/reading", json.dumps({"ts": t0 + 900 * k, "value": k}),
                                     qos=1)
            await client.publish("meterwatch/up/inst-a/a-w1/reading", b"{not json", qos=1)

        async def counts():
            _, text = await http_get(base + "/metrics")
            return (metric_value(text, "meterwatch_collector_received_total"),
                    metric_value(text, "meterwatch_collector_stored_total"),
                    metric_value(text, 'meterwatch_collector_rejected_total{reason="malformed_json"}'))
        assert await eventually(counts, (4.0, 3.0, 1.0), timeout=30) == (4.0, 3.0, 1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)


async def test_scheduled_analytics_delivers_digests_and_serves_health_metrics_and_links(mosquitto, duck_url, tmp_path):
    """`meterwatch analyze` as it runs in production: evaluations, the sender, the ack listener, the HTTP service."""
    from tests.analytics.robots import robot_server

    tiny_registry(tmp_path / "registry")
    port = free_port()
    async with robot_server(delay_s=1.0) as robot:
        (tmp_path / "registry" / "contacts.csv").write_text(
            "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
            f"prov,能源办,webhook,{robot.base}/prov,province,*,info,\n", encoding="utf-8")
        env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": duck_url,
               "METERWATCH_REGISTRY": str(tmp_path / "registry"),
               "METERWATCH_ANALYTICS__STATE_FILE": str(tmp_path / "alerts.json"),
               "METERWATCH_ANALYTICS__INTERVAL_S": "3600", "METERWATCH_ANALYTICS__HTTP_LISTEN": f"127.0.0.1:{port}",
               "METERWATCH_ANALYTICS__PUBLIC_URL": f"http://127.0.0.1:{port}",
               "METERWATCH_ANALYTICS__ACK_SECRET": "e2e-secret"}
        log = tmp_path / "analyze.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "analyze"], env=env, stderr=fh,
                                    stdout=fh, cwd=tmp_path)
        base = f"http://127.0.0.1:{port}"
        try:
            assert await eventually(lambda: len(robot.got), 1, timeout=60) == 1, log.read_text()[-3000:]
            digest = robot.got[0]["body"]
            assert sorted(a["device"] for a in digest["alerts"]) == ["a-e1", "a-w1", "b-w1"]

            async def sent():
                _, text = await http_get(base + "/metrics")
                return metric_value(text, 'meterwatch_alert_deliveries_total{channel="webhook",outcome="sent"}')
            assert await eventually(sent, 1.0, timeout=30) == 1.0
            assert await http_get(base + "/healthz") == (200, "ok\n")
            link = next(line for line in digest["text"].splitlines() if "b-w1" in line).split("(", 1)[1].rstrip(")")
            query = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))
            async with aiohttp.ClientSession() as http, http.post(base + "/ack", data=query) as done:
                assert done.status == 200 and "已确认" in await done.text()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0, log.read_text()[-3000:]
    from analytics.alerts import load_book
    assert load_book(tmp_path / "alerts.json", update_interval_s=0).alerts["silent|b-w1"].acknowledged
