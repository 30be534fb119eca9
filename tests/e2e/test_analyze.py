"""`meterwatch analyze --once --at` raises a silent alert, publishes it, and resolves it later."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import paho.mqtt.client as paho
import pytest

from analytics.alerts import load_book
from analytics.service import run_scheduled
from meterwatch.localtime import local_year
from meterwatch.settings import AnalyticsSettings, Settings
from meterwatch_cli.main import main
from meterwatch.store import AlertPoint, Batch, ReadingPoint, StatisticPoint, open_store
from tests.e2e.conftest import eventually
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


async def test_the_scheduled_process_writes_the_statistics(mosquitto, duck_url, tmp_path, caplog):
    """Issue 13 item 5: only `--once` wrote `statistic`; the service left the quota and ranking panels empty.
    The scheduled process writes them after its first evaluation, then every `statistics_interval_s`."""
    registry = tiny_registry(tmp_path / "registry")
    settings = Settings(broker=f"mqtt://127.0.0.1:{mosquitto.port}", store=duck_url, registry=tmp_path / "registry",
                        analytics=AnalyticsSettings(state_file=tmp_path / "alerts.json", interval_s=0.2,
                                                    statistics_interval_s=3600))
    now = int(time.time())
    _, _, jan1 = local_year(now)
    water = [ReadingPoint("a-w1", "inst-a", "yinchuan", "education", "water", t, 100.0 + 0.25 * k, 0.25, 900)
             for k, t in enumerate(range(now - 7200, now - 60, 900))]
    store = open_store(duck_url)
    await store.open()
    await store.write(Batch(readings=water))
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="analytics.service")
    run = asyncio.create_task(run_scheduled(settings, registry, store, load_book(settings.analytics.state_file,
                                                                                 update_interval_s=0), [], stop))
    try:
        async def stored() -> dict[tuple[str, str], float]:
            return {(s.institution, s.indicator): s.use for s in await store.fetch(StatisticPoint)}

        every = {(i, ind) for i in ("inst-a", "inst-b") for ind in ("water", "electricity", "energy")}
        assert await eventually(lambda: _keys(stored), every, timeout=30) == every
        figures = await stored()
        # inst-a's water this year, by hand: the 0.25 m3 readings since local 1 January; inst-b used none.
        assert figures[("inst-a", "water")] == pytest.approx(0.25 * sum(1 for r in water if r.ts >= jan1))
        assert figures[("inst-b", "water")] == 0.0
        assert await eventually(lambda: len(_logged(caplog, "evaluation done")) >= 3, True, timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)
        await store.close()
    assert len(_logged(caplog, "statistics written")) == 1  # three evaluations or more, one hour of interval


async def _keys(probe) -> set[tuple[str, str]]:
    return set(await probe())


def _logged(caplog, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]
