"""The collector never stalls silently: broker restarts, silence while connected, status command."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from meterwatch_cli.main import main
from meterwatch.store import CollectorSample, ReadingPoint
from tests.conftest import _unavailable
from tests.e2e.conftest import eventually, make_settings, running_collector, until
from tests.helpers import tiny_registry
from benchmarks.servers import ServerUnavailable, start_mosquitto

pytestmark = pytest.mark.servers


async def test_broker_restart_reconnect_resubscribe_and_log_it(tmp_path, duck_url, caplog):
    caplog.set_level(logging.INFO)
    try:
        broker = start_mosquitto(tmp_path / "broker")
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    registry = tiny_registry(tmp_path / "registry")
    settings = make_settings(broker.port, duck_url, tmp_path / "registry")
    t0 = int(time.time()) - 7200
    from tests.e2e.stream import publish
    from simulators.traffic import Message
    try:
        async with running_collector(settings, registry) as collector:
            await publish(broker.port, [Message(0, "meterwatch/up/inst-a/a-w1/reading",
                                                json.dumps({"ts": t0, "value": 1.0}).encode())], rate=100)
            assert await eventually(lambda: _stored(collector), 1) == 1
            broker.stop()
            await until(lambda: not collector.connected.is_set(), "the collector to notice the broker is gone")
            broker.start()
            await asyncio.wait_for(collector.connected.wait(), 30)  # reconnected (backoff) and resubscribed
            await publish(broker.port, [Message(0, "meterwatch/up/inst-a/a-w1/reading",
                                                json.dumps({"ts": t0 + 900, "value": 2.0}).encode())], rate=100)
            assert await eventually(lambda: _stored(collector), 2) == 2
    finally:
        broker.stop()
    assert await _count(collector.store) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert "broker connection lost; reconnecting" in messages
    assert messages.count("connected and subscribed") == 2


async def test_silence_while_connected_is_reported_and_status_command_shows_it(mosquitto, duck_url, tmp_path,
                                                                               caplog, monkeypatch, capsys):
    caplog.set_level(logging.INFO)
    registry = tiny_registry(tmp_path / "registry")
    settings = make_settings(mosquitto.port, duck_url, tmp_path / "registry", instance="quiet-1",
                             silence_warn_s=0.5, metrics_interval_s=0.3)
    async with running_collector(settings, registry) as collector:
        # read while it runs: the sample of its stop (connected 0) may replace the one of the same second
        await until(lambda: _silence_reported(collector.store, caplog),
                    "the silence warning and a connected self-metrics sample with idle_s >= 0.5")
    warnings = [r for r in caplog.records if r.getMessage().startswith("connected but no message")]
    assert warnings and warnings[0].idle_s >= 0.5
    monkeypatch.setenv("METERWATCH_STORE", duck_url)
    assert await asyncio.to_thread(main, ["collect", "--status"]) == 0
    out = capsys.readouterr().out
    assert "quiet-1" in out and "collectors reporting in the last 24 h: 1" in out


async def _silence_reported(store, caplog) -> bool:
    warned = any(r.getMessage().startswith("connected but no message") for r in caplog.records)
    return warned and any(s.idle_s >= 0.5 and s.connected == 1 for s in await store.fetch(CollectorSample))


async def _stored(collector) -> int:
    return collector.metrics.stored


async def _count(store) -> int:
    await store.open()
    try:
        return await store.count(ReadingPoint)
    finally:
        await store.close()
