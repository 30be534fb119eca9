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


def test_cli_acknowledgement_while_the_scheduled_process_runs_is_not_overwritten(
        mosquitto, duck_url, tmp_path, monkeypatch, capsys):
    """The scheduled process owns the state file and saves it at every evaluation: `analyze --ack` used to
    save its own copy, and the process's next save threw the acknowledgement away.  Now the command sees
    the state held (``<state>.lock``) and hands the acknowledgement to the process over MQTT."""
    import os
    import subprocess
    import sys

    from tests.e2e.conftest import until

    alert_id = _setup(mosquitto, duck_url, tmp_path, monkeypatch)
    os.environ["METERWATCH_STORE"] = f"duckdb://{tmp_path / 'other.duckdb'}"  # DuckDB: one process per file
    log_path = tmp_path / "analytics.log"
    env = {**os.environ, "METERWATCH_ANALYTICS__INTERVAL_S": "0.5"}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "analyze"], env=env,
                                stderr=log_file, stdout=subprocess.DEVNULL)
    try:
        asyncio.run(until(lambda: b"listening for acknowledgements" in log_path.read_bytes(), "the ack listener", 30))
        assert main(["analyze", "--ack", alert_id, "--by", "张工"]) == 0
        assert "sent to the running analytics process" in capsys.readouterr().out

        def acknowledged() -> bool:
            book = load_book(tmp_path / "alerts.json", update_interval_s=0)
            return book.alerts["silent|a-w1"].acknowledged

        asyncio.run(until(acknowledged, "the acknowledgement saved by the running process", 30))
        evaluations = log_path.read_bytes().count(b"evaluation done")
        asyncio.run(until(lambda: log_path.read_bytes().count(b"evaluation done") >= evaluations + 2,
                          "two more evaluations (each saves the state)", 30))
        assert acknowledged()  # still: the process's own saves keep it
        assert main(["analyze", "--once"]) == 1  # a second evaluating process is refused while one runs
        assert "in use by another meterwatch analyze process" in capsys.readouterr().err
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log_path.read_text(errors="replace")[-2000:]


def test_cli_acknowledgement_while_analyze_once_runs_is_refused_not_lost(mosquitto, duck_url, tmp_path,
                                                                         monkeypatch, capsys):
    """`analyze --once` listens to no acknowledgement: handing it one over MQTT lost it while saying "sent"
    (found in review).  The command now says the state is busy, and exits 1 to be run again."""
    from analytics.alerts import hold_state

    alert_id = _setup(mosquitto, duck_url, tmp_path, monkeypatch)
    capsys.readouterr()
    with hold_state(tmp_path / "alerts.json", "once"):  # what a running `analyze --once` holds
        assert main(["analyze", "--ack", alert_id, "--by", "张工"]) == 1
    assert "in use by another meterwatch analyze process (once " in capsys.readouterr().err
    assert not load_book(tmp_path / "alerts.json", update_interval_s=0).alerts["silent|a-w1"].acknowledged
    assert main(["analyze", "--ack", alert_id, "--by", "张工"]) == 0  # once it is done
    assert load_book(tmp_path / "alerts.json", update_interval_s=0).alerts["silent|a-w1"].acknowledged
