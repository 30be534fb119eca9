"""`meterwatch analyze --once --at` raises a silent alert, publishes it, and resolves it later."""

from __future__ import annotations

import asyncio
import json
import threading

import paho.mqtt.client as paho
import pytest

from meterwatch_cli.main import main
from meterwatch.store import AlertPoint, Batch, ReadingPoint, open_store
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers
AT = 1_764_000_000


def readings(device: str, inst: str, until: int) -> list[ReadingPoint]:
    return [ReadingPoint(device, inst, "yinchuan", "office", "water", t, float(t - AT + 10**6) / 1000, 0.9, 900)
            for t in range(AT - 2 * 86400, until + 1, 900)]


def write(url: str, batch: Batch) -> None:
    async def go() -> None:
        store = open_store(url)
        await store.open()
        await store.write(batch)
        await store.close()
    asyncio.run(go())


def alerts(url: str) -> list[AlertPoint]:
    async def go() -> list[AlertPoint]:
        store = open_store(url)
        await store.open()
        try:
            return await store.fetch(AlertPoint)
        finally:
            await store.close()
    return asyncio.run(go())


class Subscriber:
    """A subscriber to the alert topics, returned once the broker has acknowledged the subscription."""

    def __init__(self, port: int, count: int) -> None:
        self.count, self.lines, self.done = count, [], threading.Event()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda client, *_: client.subscribe("meterwatch/alerts/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._received
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.client.loop_stop()
            pytest.fail("no SUBACK from the broker within 10 s")

    def _received(self, _client, _userdata, message) -> None:
        self.lines.append(f"{message.topic} {message.payload.decode()}\n")
        if len(self.lines) >= self.count:
            self.done.set()

    def communicate(self, timeout: float) -> tuple[str, None]:
        """Like ``mosquitto_sub -v -C count``: the first ``count`` messages as "topic payload" lines."""
        self.done.wait(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        return "".join(self.lines[:self.count]), None


def analytics_env(monkeypatch, broker_port: int, store_url: str, tmp_path) -> None:
    """A tiny registry and the METERWATCH_* settings the analyze command reads."""
    tiny_registry(tmp_path / "registry")
    for k, v in {"BROKER": f"mqtt://127.0.0.1:{broker_port}", "STORE": store_url,
                 "REGISTRY": str(tmp_path / "registry"), "ANALYTICS__STATE_FILE": str(tmp_path / "alerts.json")}.items():
        monkeypatch.setenv(f"METERWATCH_{k}", v)


def test_silent_alert_opened_published_kept_and_resolved(mosquitto, influx_url, tmp_path, monkeypatch):
    analytics_env(monkeypatch, mosquitto.port, influx_url, tmp_path)
    write(influx_url, Batch(readings=readings("a-w1", "inst-a", AT - 10 * 3600) + readings("a-e1", "inst-a", AT)
                            + readings("b-w1", "inst-b", AT - 3600)))
    sub = Subscriber(mosquitto.port, 1)
    at = "2025-11-24T16:00:00Z"  # == AT
    assert main(["analyze", "--once", "--at", at]) == 0
    out, _ = sub.communicate(timeout=30)
    topic, payload = out.strip().split(" ", 1)
    event = json.loads(payload)
    assert topic == "meterwatch/alerts/inst-a"
    assert {k: event[k] for k in ("rule", "state", "institution", "device", "unit")} == {
        "rule": "silent", "state": "open", "institution": "inst-a", "device": "a-w1", "unit": "h"}
    assert event["value"] == 10.0 and event["since"] == "2025-11-24T06:00:00Z" and "无数据" in event["message"]
    assert main(["analyze", "--once", "--at", at]) == 0  # state carried over: not opened again
    assert [a.state for a in alerts(influx_url)] == ["open"]
    # The meter speaks again: two evaluations later (hysteresis) the alert is resolved, once.
    write(influx_url, Batch(readings=readings("a-w1", "inst-a", AT)))
    sub = Subscriber(mosquitto.port, 1)
    assert main(["analyze", "--once", "--at", at]) == 0
    assert main(["analyze", "--once", "--at", at]) == 0
    out, _ = sub.communicate(timeout=30)
    assert json.loads(out.split(" ", 1)[1])["state"] == "resolved"
    assert sorted(a.state for a in alerts(influx_url)) == ["open", "resolved"]
