"""Operators acknowledge alerts from the command line and over MQTT; it is announced once."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from analytics.alerts import load_book
from analytics.notifiers.mqtt import MqttNotifier
from analytics.service import listen_for_acks
from meterwatch_cli.main import main
from meterwatch.const import ACK_TOPIC
from meterwatch.settings import AnalyticsSettings, Settings
from meterwatch.store import AlertPoint, Batch, open_store
from tests.e2e.test_analyze import AT, analytics_env, readings, write

pytestmark = pytest.mark.servers


def _setup(mosquitto, store_url, tmp_path, monkeypatch):
    analytics_env(monkeypatch, mosquitto.port, store_url, tmp_path)
    write(store_url, Batch(readings=readings("a-w1", "inst-a", AT - 10 * 3600) + readings("a-e1", "inst-a", AT)
                           + readings("b-w1", "inst-b", AT)))
    assert main(["analyze", "--once", "--at", "2025-11-24T16:00:00Z"]) == 0
    (only,) = load_book(tmp_path / "alerts.json", update_interval_s=0).alerts.values()
    return only.id


def test_cli_acknowledgement(mosquitto, duck_url, tmp_path, monkeypatch, capsys):
    alert_id = _setup(mosquitto, duck_url, tmp_path, monkeypatch)
    assert main(["analyze", "--ack", alert_id, "--by", "张工"]) == 0
    assert main(["analyze", "--ack", alert_id]) == 1  # already acknowledged: said so, not repeated
    assert "no open, unacknowledged alert" in capsys.readouterr().out
    states = asyncio.run(_states(duck_url))
    assert states == ["open", "acknowledged"]


def test_mqtt_acknowledgement(mosquitto, duck_url, tmp_path, monkeypatch):
    alert_id = _setup(mosquitto, duck_url, tmp_path, monkeypatch)
    event = asyncio.run(_ack_over_mqtt(mosquitto, duck_url, tmp_path, alert_id))
    assert event["state"] == "acknowledged" and event["id"] == alert_id
    assert load_book(tmp_path / "alerts.json", update_interval_s=0).alerts["silent|a-w1"].acknowledged


async def _ack_over_mqtt(mosquitto, duck_url, tmp_path, alert_id):
    settings = Settings(broker=f"mqtt://127.0.0.1:{mosquitto.port}", store=duck_url,
                        analytics=AnalyticsSettings(state_file=tmp_path / "alerts.json"))
    book = load_book(tmp_path / "alerts.json", update_interval_s=0)
    store = open_store(duck_url)
    await store.open()
    ready = asyncio.Event()
    listener = asyncio.create_task(listen_for_acks(settings, book, store, [MqttNotifier(settings)], ready))
    await asyncio.wait_for(ready.wait(), 10)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await client.subscribe("meterwatch/alerts/#", qos=1)
        await client.publish(ACK_TOPIC, json.dumps({"id": alert_id, "by": "李工"}), qos=1)
        message = await asyncio.wait_for(anext(client.messages.__aiter__()), 10)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await store.close()
    return json.loads(message.payload)


async def _states(url: str) -> list[str]:
    store = open_store(url)
    await store.open()
    try:
        return [a.state for a in await store.fetch(AlertPoint)]
    finally:
        await store.close()
