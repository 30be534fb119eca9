"""`meterwatch collect --workers N` as it runs in production: a real supervisor process, its real worker processes,
real mosquitto and influxd.  It answers for the whole (one /healthz, one /metrics), passes signals on, and replaces
a worker that is killed without losing or doubling anything."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks.servers import free_port
from meterwatch.registry import load_registry
from meterwatch.store import ReadingPoint
from simulators.province import generate_province, write_registry
from tests.e2e.conftest import eventually, http_get, log_says, metric_value, until
from tests.helpers import fetch_all
from tests.e2e.stream import publish, reading_stream

pytestmark = pytest.mark.servers


def start_workers(port: int, store_url: str, tmp_path: Path, count: int, **extra: str) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{port}", "METERWATCH_STORE": store_url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": tmp_path.name,
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool"), "METERWATCH_COLLECTOR__BATCH_INTERVAL_S": "0.2",
           **extra}
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect", "--workers", str(count)],
                                env=env, stderr=fh, cwd=tmp_path)
    return proc, log


def worker_pids(log: Path) -> dict[str, list[int]]:
    """Partition -> the pids of its worker processes, in the order the supervisor started them."""
    pids = defaultdict(list)
    for partition, pid in re.findall(r'msg="collector worker started" partition=(\S+) pid=(\d+)', log.read_text()):
        pids[partition].append(int(pid))
    return pids


def says(log: Path, msg: str, partition: str) -> bool:
    """A line of the worker of ``partition`` (every line of a worker names it) says ``msg``."""
    return re.search(rf'msg="{msg}" .*partition={partition}\b', log.read_text()) is not None



def registry_of(tmp_path: Path, institutions: int):
    write_registry(generate_province(institutions, seed=21), tmp_path / "registry")
    return load_registry(tmp_path / "registry")[0]


async def stop(proc: subprocess.Popen, log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(proc.wait, 60)


async def test_supervisor_answers_for_the_whole_and_passes_signals_on(mosquitto, influx_url, tmp_path):
    registry = registry_of(tmp_path, 4)
    port = free_port()
    proc, log = start_workers(mosquitto.port, influx_url, tmp_path, 2,
                              METERWATCH_COLLECTOR__HTTP_LISTEN=f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    try:
        assert await eventually(lambda: http_get(base + "/healthz"), (200, "ok\n"), timeout=60) == (200, "ok\n"), \
            log.read_text()[-3000:]
        messages = reading_stream(registry, 200)
        await publish(mosquitto.port, messages, rate=500)

        async def whole():
            _, text = await http_get(base + "/metrics")
            return (metric_value(text, "meterwatch_collector_received_total"),
                    metric_value(text, "meterwatch_collector_skipped_other_partition_total"),
                    metric_value(text, "meterwatch_collector_stored_total"),
                    metric_value(text, "meterwatch_collector_workers_running"))
        # each worker received every message: its own handled (received), the other's skipped; summed over both
        expected = (200.0, 200.0, 200.0, 2.0)
        assert await eventually(whole, expected, timeout=30) == expected
        proc.send_signal(signal.SIGHUP)  # both workers reload the registry
        for partition in ("0/2", "1/2"):
            await until(lambda p=partition: says(log, "registry reloaded", p), f"worker {partition} to reload the registry")
        assert sorted(worker_pids(log)) == ["0/2", "1/2"]
        pids = [p for ps in worker_pids(log).values() for p in ps]
        assert await stop(proc, log) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert text.count('msg="collector stopped"') == 2 and 'msg="collector workers stopped"' in text
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # no worker outlives its supervisor
    assert len(await fetch_all(influx_url, ReadingPoint)) == len(messages)


async def test_a_killed_worker_is_replaced_and_its_messages_redelivered_to_it(mosquitto, influx_url, tmp_path):
    registry = registry_of(tmp_path, 6)
    proc, log = start_workers(mosquitto.port, influx_url, tmp_path, 2)
    messages = reading_stream(registry, 1200)
    try:
        for partition in ("0/2", "1/2"):
            await until(lambda p=partition: says(log, "connected and subscribed", p), f"worker {partition} to subscribe",
                        timeout=60)
        publishing = asyncio.create_task(publish(mosquitto.port, messages, rate=150))
        await until(lambda: _some_stored(influx_url), "the first readings to be stored", timeout=30)
        victim = worker_pids(log)["1/2"][0]
        os.kill(victim, signal.SIGKILL)  # mid-stream: what it held unacknowledged, the broker keeps for p1's session
        await publishing
        await log_says(log, 'msg="collector worker exited; restarting"', proc)
        await until(lambda: len(worker_pids(log)["1/2"]) == 2, "the supervisor to start a new worker 1/2")
        assert await eventually(lambda: _count(influx_url), len(messages), timeout=60) == len(messages)
        assert await stop(proc, log) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "exit_code=-9" in log.read_text()
    readings = await fetch_all(influx_url, ReadingPoint)
    assert len(readings) == len(messages)  # none lost (and the store's identity keeps none twice)
    by_device = defaultdict(list)
    for r in readings:
        by_device[r.device].append(r)
    for device, rows in by_device.items():  # nothing counted twice: each quarter-hour's consumption one step
        rows.sort(key=lambda r: r.ts)
        step = 1.5 * registry.devices[device].multiplier
        assert [r.consumption for r in rows[1:]] == pytest.approx([step] * (len(rows) - 1)), device


async def _count(url: str) -> int:
    return len(await fetch_all(url, ReadingPoint))


async def _some_stored(url: str) -> bool:
    return await _count(url) > 0


async def test_every_workers_session_exists_before_any_worker_runs(mosquitto, tmp_path):
    """A worker up before another acknowledges the other's messages unhandled: the other's session must already
    exist and queue them.  The supervisor makes all of them first."""
    import aiomqtt

    from meterwatch.settings import CollectorSettings, Settings
    from meterwatch_cli.workers import Supervisor

    settings = Settings(broker=f"mqtt://127.0.0.1:{mosquitto.port}",
                        collector=CollectorSettings(client_id="prepared", spool_dir=tmp_path / "spool"))
    await Supervisor(settings, 3)._prepare_sessions()  # noqa: SLF001
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as publisher:
        await publisher.publish("meterwatch/up/inst-a/a-w1/reading", b"queued", qos=1)
    await Supervisor(settings, 3)._prepare_sessions()  # noqa: SLF001  (a restart: it must not consume the queue)
    for i in range(3):  # each worker's session kept it, although no worker has connected yet
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=f"prepared-p{i}", clean_session=False) as c:
            assert (await asyncio.wait_for(anext(c.messages), 10)).payload == b"queued"
            await c.unsubscribe("meterwatch/up/#")  # leave nothing behind on the shared broker
