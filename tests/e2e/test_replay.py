"""Dead letters back in: a device added to the registry, SIGHUP to a real `meterwatch collect`, then its rejects replayed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from collector import reasons
from meterwatch.store import Batch, ReadingPoint, RejectRecord, open_store
from tests.e2e.conftest import log_says, until
from tests.helpers import fetch_all, tiny_registry

pytestmark = pytest.mark.servers

NEW_DEVICE = "a-w9,inst-a,water,m3,1.0,00000000000009\n"
TOPIC = "meterwatch/up/inst-a/a-w9/reading"


def env_for(broker_port: int, store_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{broker_port}", "METERWATCH_STORE": store_url,
            "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "test-sighup",
            "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool"),
            "METERWATCH_COLLECTOR__BATCH_INTERVAL_S": "0.2"}


def meterwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meterwatch_cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


async def test_sighup_adds_a_device_and_replay_stores_its_rejected_reading_once(
        tmp_path: Path, mosquitto, influx_url: str) -> None:
    tiny_registry(tmp_path / "registry")
    env = env_for(mosquitto.port, influx_url, tmp_path)
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect"], env=env, stderr=fh)
    store = open_store(influx_url)
    t0 = (int(time.time()) // 900 - 10) * 900
    try:
        await log_says(log, "connected and subscribed", proc)
        await store.open()

        async def of_new_device() -> list[ReadingPoint]:
            return sorted(await store.fetch(ReadingPoint, device="a-w9"), key=lambda r: r.ts)

        async def unknown() -> list[RejectRecord]:
            return await store.fetch(RejectRecord, reason=reasons.UNKNOWN_DEVICE)

        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.publish(TOPIC, json.dumps({"ts": t0, "value": 10.0}), qos=1)
            await until(lambda: _has(unknown(), 1), "the unknown device's reading rejected")

            with (tmp_path / "registry" / "devices.csv").open("a") as f:
                f.write(NEW_DEVICE)
            # Messages in flight while the registry is swapped: every one must be stored.
            for k in range(20):
                await client.publish("meterwatch/up/inst-a/a-w1/reading",
                                     json.dumps({"ts": t0 + 60 * k, "value": 1.0 + k}), qos=1)
                if k == 10:
                    proc.send_signal(signal.SIGHUP)
            await log_says(log, "registry reloaded", proc)
            await client.publish(TOPIC, json.dumps({"ts": t0 + 900, "value": 12.5}), qos=1)
            await until(lambda: _has(of_new_device(), 1), "the new device's reading stored after SIGHUP")
            await until(lambda: _has(store.fetch(ReadingPoint, device="a-w1"), 20), "all 20 in-flight readings")

            first = meterwatch(env, "rejects", "replay", "--reason", "unknown_device")
            second = meterwatch(env, "rejects", "replay", "--reason", "unknown_device")
            listed = meterwatch(env, "rejects", "list", "--reason", "unknown_device")

            assert first.returncode == 0, first.stderr
            assert "1 rejects replayed: stored 1 points, 0 already stored, 1 following readings recomputed; still rejected: none" in first.stderr
            assert "1 rejects replayed: stored 0 points, 1 already stored" in second.stderr
            rows = await of_new_device()
            assert [(r.ts, r.register, r.consumption, r.interval_s) for r in rows] == [
                (t0, 10.0, None, None), (t0 + 900, 12.5, 2.5, 900)]  # the later one recomputed: 12.5 - 10
            [line] = listed.stdout.splitlines()
            assert f"\tunknown_device\t{TOPIC}\ta-w9\t" in line and '{"ts": ' in line

            # A registry with a problem is refused; the one in use is kept and a-w9 still ingests.
            with (tmp_path / "registry" / "devices.csv").open("a") as f:
                f.write("a-w10,inst-a,water,m3,not-a-number,\n")
            proc.send_signal(signal.SIGHUP)
            await log_says(log, "registry reload refused", proc)
            await client.publish(TOPIC, json.dumps({"ts": t0 + 1800, "value": 13.0}), qos=1)
            await until(lambda: _has(of_new_device(), 3), "a reading after the refused reload")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        await store.close()


async def _has(rows, n: int) -> bool:
    return len(await rows) == n


async def test_replay_leaves_what_still_fails_and_dry_run_stores_nothing(tmp_path: Path, store_url: str) -> None:
    tiny_registry(tmp_path / "registry")
    t0 = (int(time.time()) // 900 - 10) * 900
    env = env_for(1, store_url, tmp_path)
    rejects = [RejectRecord(t0 * 10**9, reasons.UNKNOWN_DEVICE, "meterwatch/up/inst-a/a-w1/reading",
                            json.dumps({"ts": t0, "value": 7.0}).encode(), "device 'a-w1' is not in the registry",
                            "inst-a", "a-w1"),
               RejectRecord(t0 * 10**9 + 1, reasons.UNKNOWN_DEVICE, "meterwatch/up/inst-a/zz-1/reading",
                            b'{"ts": 1, "value": 1}', "device 'zz-1' is not in the registry", "inst-a", "zz-1"),
               RejectRecord(t0 * 10**9 + 2, reasons.STORE_REFUSED, "", b"...", "refused", "inst-a", "a-w1")]
    store = open_store(store_url)
    await store.open()
    await store.write(Batch(rejects=rejects))
    await store.close()

    dry = await asyncio.to_thread(meterwatch, env, "rejects", "replay", "--dry-run")
    after_dry = await _readings(store_url)
    done = await asyncio.to_thread(meterwatch, env, "rejects", "replay", "--since", str(t0))

    assert "3 rejects replayed" not in dry.stderr
    assert ("2 rejects replayed: would store 1 points, 0 already stored, 0 following readings recomputed; "
            "still rejected: 1 unknown_device; "
            "1 not replayable (no MQTT or push item topic)") in dry.stderr
    assert after_dry == []
    assert "2 rejects replayed: stored 1 points" in done.stderr
    assert [(r.device, r.ts, r.register) for r in await _readings(store_url)] == [("a-w1", t0, 7.0)]
    assert len(await fetch_all(store_url, RejectRecord)) == 3  # rejects are left where they are



async def _readings(store_url: str) -> list[ReadingPoint]:
    return await fetch_all(store_url, ReadingPoint)
