"""HTTP push burst: 24,000 platform pushes (each one meter's upload) into a running collector and influxd.

The province's midnight burst arriving through the NB-IoT platforms
instead of MQTT: half the requests as OneNET pushes (signed; the data
point's value the meter's readings as JSON), half as CTWing dataReports
(the readings in base64 ``APPdata``), sent by a concurrent aiohttp client
to ``meterwatch collect`` running as its own process with ``http_listen``,
into a real influxd.  Each answer 200 means the readings are durable.
Reported: requests/s answered, time from the first request until every
reading is stored, stored = sent.

    python -m benchmarks.push                                  # 24,000 requests, 5,010 institutions
    python -m benchmarks.push --requests 2000 --institutions 100
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from benchmarks.servers import free_port, start_influxd, start_mosquitto
from collector.platforms.onenet import msg_text, signature
from meterwatch.localtime import DAY, local_midnight
from meterwatch.registry import Device, load_registry
from meterwatch.store import ReadingPoint, open_store
from simulators.province import Province, generate_province, write_registry

ONENET_TOKEN, CTWING_TOKEN = "bench-onenet-token", "bench-ctwing-token"


def platform_registry(institutions: int, directory: Path) -> list[Device]:
    """The province with a platform id on every meter; returns the meters."""
    province = generate_province(institutions, seed=5)
    devices = [Device(d.id, d.institution, d.kind, d.unit, d.multiplier, d.address,
                      "" if d.kind == "scale" else f"nb.{d.id}") for d in province.devices]
    write_registry(Province(province.institutions, devices, province.cards), directory)
    registry, _ = load_registry(directory)
    return sorted((d for d in registry.devices.values() if d.platform_id), key=lambda d: d.id)


def requests(meters: list[Device], n: int, readings: int, midnight: int) -> list[tuple[str, bytes]]:
    """(path, body) of ``n`` pushes, every other one through each platform: request k is meter k mod M's
    upload of a day, the older day first when a meter uploads twice (as days pass: no late readings)."""
    out = []
    days = -(-n // len(meters))
    for k in range(n):
        meter, day = meters[k % len(meters)], k // len(meters)
        start = midnight - (days - day) * DAY
        doc = {"readings": [{"ts": start + 900 * (j + 1), "value": round(100.0 + 0.5 * j, 3)} for j in range(readings)]}
        if k % 2:
            msg = {"at": int(time.time() * 1000), "imei": "861931046156398", "type": 1, "ds_id": "3300_0_5700",
                   "value": doc, "dev_id": meter.platform_id}
            nonce = f"n{k:07d}"
            body = {"msg": msg, "msg_signature": signature(ONENET_TOKEN, nonce, msg_text(msg)), "nonce": nonce}
            out.append(("/push/onenet", json.dumps(body, separators=(",", ":")).encode()))
        else:
            body = {"upPacketSN": -1, "upDataSN": -1, "topic": "v1/up/ad", "timestamp": int(time.time() * 1000),
                    "tenantId": "2000033629", "serviceId": "", "protocol": "lwm2m", "productId": "15114816",
                    "payload": {"APPdata": base64.b64encode(json.dumps(doc).encode()).decode()},
                    "messageType": "dataReport", "deviceType": "", "deviceId": meter.platform_id,
                    "assocAssetId": "", "IMSI": "undefined", "IMEI": "862592051651472"}
            out.append((f"/push/ctwing?token={CTWING_TOKEN}", json.dumps(body).encode()))
    return out


async def _send_all(base: str, pushes: list[tuple[str, bytes]], concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for push in pushes:
        queue.put_nowait(push)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            path, body = queue.get_nowait()
            async with http.post(base + path, data=body, headers={"Content-Type": "application/json"}) as answer:
                await answer.read()
                statuses[answer.status] += 1

    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return statuses


async def _healthy(base: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(base + "/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("collector did not become healthy")


async def run(n_requests: int = 24_000, institutions: int = 5010, readings: int = 96, concurrency: int = 256,
              timeout_s: float = 900.0) -> str:
    work = Path(tempfile.mkdtemp(prefix="mw-push-"))
    meters = platform_registry(institutions, work / "registry")
    pushes = requests(meters, n_requests, readings, local_midnight(time.time()))
    expected = n_requests * readings
    broker, influxd = start_mosquitto(work / "broker"), start_influxd(work / "influx")
    store_url = f"influxdb://127.0.0.1:{influxd.port}/push"
    port = free_port()
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{broker.port}", "METERWATCH_STORE": store_url,
           "METERWATCH_REGISTRY": str(work / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "push-bench",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(work / "spool"), "METERWATCH_LOG_LEVEL": "WARNING",
           "METERWATCH_COLLECTOR__HTTP_LISTEN": f"127.0.0.1:{port}",
           "METERWATCH_COLLECTOR__ONENET_TOKEN": ONENET_TOKEN, "METERWATCH_COLLECTOR__CTWING_TOKEN": CTWING_TOKEN}
    log = open(work / "collector.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect"], env=env, stderr=log, cwd=work)
    store = open_store(store_url)
    base = f"http://127.0.0.1:{port}"
    try:
        await store.open()
        await _healthy(base, 60)
        started = time.monotonic()
        statuses = await _send_all(base, pushes, concurrency)
        answered = time.monotonic() - started
        stored = 0
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            stored = await store.count(ReadingPoint)
            if stored >= expected:
                break
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        await store.close()
        broker.stop()
        influxd.stop()
    return (f"{n_requests:,} push requests (half OneNET, half CTWing), {readings} readings each, from "
            f"{min(len(meters), n_requests):,} meters of {institutions:,} institutions, {concurrency} concurrent "
            "connections\n\n| | value |\n|---|---:|\n"
            f"| answers | {', '.join(f'{n:,} x {s}' for s, n in sorted(statuses.items()))} |\n"
            f"| requests/s answered (200 = durable) | {n_requests / answered:,.0f} |\n"
            f"| time until the last answer | {answered:.1f} s |\n"
            f"| time from the first request until all stored | {elapsed:.1f} s |\n"
            f"| readings stored | {stored:,} of {expected:,} |\n"
            f"| lost | {expected - stored:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24_000)
    parser.add_argument("--institutions", type=int, default=5010)
    parser.add_argument("--readings", type=int, default=96, help="readings per push (a day of quarter-hours)")
    parser.add_argument("--concurrency", type=int, default=256, help="concurrent connections of the client")
    args = parser.parse_args()
    print(asyncio.run(run(args.requests, args.institutions, args.readings, args.concurrency)))


if __name__ == "__main__":
    main()
