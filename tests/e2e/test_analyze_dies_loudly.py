"""Scheduled analytics never lives on evaluating nothing: it exits non-zero within seconds (item 4).

- the store goes away under a running ``meterwatch analyze`` process: after
  ``max_failed_evaluations`` failed evaluations in a row it exits 1;
- the ack listener dies of something other than a lost broker: the
  scheduled run ends at once with ``AnalyticsDied``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import aiomqtt
import pytest

from analytics.alerts import load_book
from analytics.service import AnalyticsDied, run_scheduled
from meterwatch.const import ACK_TOPIC
from benchmarks.servers import ServerUnavailable, start_influxd
from meterwatch.settings import AnalyticsSettings, Settings
from meterwatch.store import Batch, open_store
from tests.conftest import _unavailable
from tests.e2e.test_analyze import readings
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_store_lost_under_a_scheduled_process_makes_it_exit_non_zero(mosquitto, tmp_path):
    try:
        influxd = start_influxd(tmp_path / "influxd")  # our own: this test kills it
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    tiny_registry(tmp_path / "registry")
    state = tmp_path / "alerts.json"
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}",
           "METERWATCH_STORE": f"influxdb://127.0.0.1:{influxd.port}/mw", "METERWATCH_REGISTRY": str(tmp_path / "registry"),
           "METERWATCH_ANALYTICS__STATE_FILE": str(state), "METERWATCH_ANALYTICS__INTERVAL_S": "0.5",
           "METERWATCH_ANALYTICS__MAX_FAILED_EVALUATIONS": "3"}
    log = tmp_path / "analyze.log"
    with open(log, "wb") as out:  # a file, not a pipe: a full pipe would block the process
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "analyze"], env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: state.exists() or proc.poll() is not None, 60, "a first evaluation")
        assert proc.poll() is None, log.read_text()
        influxd.stop()
        code = proc.wait(timeout=60)  # bounded: an old process lived on here, evaluating nothing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        influxd.stop()
    err = log.read_text()
    assert code == 1, err[-2000:]
    assert err.count('msg="evaluation failed"') == 3 and "3 evaluations failed in a row" in err, err[-3000:]


class BrokenStore:
    """The real store, with a bug in writing (not a StoreError): what an unexpected failure looks like."""

    def __init__(self, store) -> None:
        self.store = store

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def write(self, batch: Batch) -> None:
        if batch.alerts and batch.alerts[0].state == "acknowledged":
            raise RuntimeError("injected bug while storing an acknowledgement")
        await self.store.write(batch)


async def test_a_dead_ack_listener_ends_the_scheduled_run(mosquitto, duck_url, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    settings = Settings(broker=f"mqtt://127.0.0.1:{mosquitto.port}", store=duck_url, registry=tmp_path / "registry",
                        analytics=AnalyticsSettings(state_file=tmp_path / "alerts.json", interval_s=3600))
    store = BrokenStore(open_store(duck_url))
    await store.open()
    await store.write(Batch(readings=readings("a-w1", "inst-a", int(time.time()) - 10 * 3600)))
    book = load_book(settings.analytics.state_file, update_interval_s=0)
    run = asyncio.create_task(run_scheduled(settings, registry, store, book, [], asyncio.Event()))
    try:
        deadline = time.monotonic() + 30
        while not book.alerts and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        alert = next(a for a in book.alerts.values() if a.device == "a-w1")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            while not run.done() and time.monotonic() < deadline:  # until the listener has subscribed and died
                await client.publish(ACK_TOPIC, json.dumps({"id": alert.id, "by": "test"}), qos=1)
                await asyncio.wait({run}, timeout=0.5)
        with pytest.raises(AnalyticsDied, match="ack listener died.*injected bug"):
            await asyncio.wait_for(run, 5)
    finally:
        run.cancel()
        await store.store.close()
