"""SIGTERM makes `meterwatch collect` flush what it buffered, and acknowledge it, before it exits.

The batch interval is an hour, so nothing is written until the signal.  Two cases, one per flush in
``Collector``: connected (the consumer's flush writes and acknowledges while the session is up; a
restart must get nothing redelivered), and the broker away (``run``'s own flush still writes what was
buffered; the broker will redeliver it, and the store's idempotence absorbs that).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from benchmarks.servers import Server, ServerUnavailable, start_mosquitto
from meterwatch.store import CollectorSample, ReadingPoint, Store, open_store
from tests.conftest import _unavailable
from tests.e2e.conftest import log_says, until
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers

TOPIC = "meterwatch/up/inst-a/a-w1/reading"
COUNT = 20


def start_collect(broker_port: int, store_url: str, tmp_path: Path, client_id: str,
                  workers: int = 1) -> tuple[subprocess.Popen, Path]:
    tiny_registry(tmp_path / "registry")
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{broker_port}", "METERWATCH_STORE": store_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": client_id,
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool"),
           "METERWATCH_COLLECTOR__BATCH_INTERVAL_S": "3600", "METERWATCH_COLLECTOR__BATCH_SIZE": "10000",
           "METERWATCH_COLLECTOR__METRICS_INTERVAL_S": "0.2"}  # its counters reach the store: we see it buffer
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect", "--workers", str(workers)],
                                env=env, stderr=fh, cwd=tmp_path)
    return proc, log


async def publish_readings(port: int) -> None:
    t0 = (int(time.time()) // 900 - 30) * 900
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for k in range(COUNT):
            await client.publish(TOPIC, json.dumps({"ts": t0 + 900 * k, "value": k * 0.5}), qos=1)


async def buffered(store: Store) -> bool:
    """The collector reports having received every reading while none is stored yet."""
    samples = await store.fetch(CollectorSample)
    return bool(samples) and max(s.received for s in samples) == COUNT


async def sigterm(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0, log.read_text()
    text = log.read_text()
    assert "collector stopped" in text and "password" not in text.lower()


async def first_messages_after_restart(port: int, client_ids: list[str]) -> list[bytes]:
    """Resume the collectors' sessions and publish a sentinel: the broker sends anything left unacknowledged
    first, so each first message is the sentinel only if every reading was acknowledged on that session."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(aiomqtt.Client("127.0.0.1", port, identifier=c,
                                                                  clean_session=False)) for c in client_ids]
        async with aiomqtt.Client("127.0.0.1", port) as publisher:
            await publisher.publish(TOPIC, b"sentinel", qos=1)
        return [(await asyncio.wait_for(anext(c.messages), 10)).payload for c in clients]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_flushes_and_acknowledges_buffered_readings(mosquitto, influx_url, tmp_path, workers):
    """With --workers 2 the supervisor passes SIGTERM on: the worker owning the meter flushes and acknowledges,
    the other has acknowledged its skips; neither session holds anything for a restart."""
    client_id = f"test-sigterm-{workers}"
    proc, log = start_collect(mosquitto.port, influx_url, tmp_path, client_id, workers)
    store = open_store(influx_url)
    try:
        await log_says(log, "connected and subscribed", proc)
        await publish_readings(mosquitto.port)
        await store.open()
        await until(lambda: buffered(store), "the collector to report every reading received")
        if workers > 1:  # the other worker may start later: it must have had (and acknowledged) its skips
            await until(lambda: f"skipped_other_partition={COUNT}" in log.read_text(), "the skips acknowledged")
        assert await store.count(ReadingPoint) == 0  # buffered: the hour-long batch interval has not passed
        await sigterm(proc, log)
        assert await store.count(ReadingPoint) == COUNT
    finally:
        if proc.poll() is None:
            proc.kill()
        await store.close()
    sessions = [client_id] if workers == 1 else [f"{client_id}-p{i}" for i in range(workers)]
    assert await first_messages_after_restart(mosquitto.port, sessions) == [b"sentinel"] * workers


@pytest.fixture
def own_broker(tmp_path) -> Server:
    try:
        broker = start_mosquitto(tmp_path / "broker")
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    yield broker
    broker.stop()


async def test_sigterm_while_the_broker_is_away_still_writes_what_was_buffered(own_broker, influx_url, tmp_path):
    proc, log = start_collect(own_broker.port, influx_url, tmp_path, "test-sigterm-away")
    store = open_store(influx_url)
    try:
        await log_says(log, "connected and subscribed", proc)
        await publish_readings(own_broker.port)
        await store.open()
        await until(lambda: buffered(store), "the collector to report every reading received")
        own_broker.stop()
        await log_says(log, "broker connection lost", proc)
        assert await store.count(ReadingPoint) == 0
        await sigterm(proc, log)
        assert await store.count(ReadingPoint) == COUNT
    finally:
        if proc.poll() is None:
            proc.kill()
        await store.close()
