"""HTTP push from CTWing and OneNET into a running collector (real mosquitto, real influxd, a real aiohttp
client): signed pushes stored through the same decoders as MQTT, every refusal answered and kept as a reject,
and with influxd stopped a push is still answered 200 once spooled, and stored when influxd is back.

Message envelopes are the platforms' own, from the sources cited in tests/collector/test_platforms.py."""

from __future__ import annotations

import base64
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from collector.metrics import prometheus_registry
from collector.platforms.onenet import msg_text, signature
from collector.push import PushRoutes
from collector.service import Collector
from meterwatch.httpservice import HttpService
from meterwatch.registry import Device, load_registry
from meterwatch.store import MeterValuePoint, ReadingPoint, RejectRecord, open_store
from simulators.province import Province, write_registry
from tests.collector.test_platforms import CTWING_REPORT, ONENET_CAPTURE
from tests.conftest import _serve
from tests.e2e.conftest import eventually, make_settings, running_collector, until
from tests.helpers import cjt188_water_frame, dlt645_energy_frame, fetch_all, tiny_province
from benchmarks.servers import free_port, start_influxd

pytestmark = pytest.mark.servers
ONENET_TOKEN, CTWING_TOKEN = "onenet-secret-0001", "ctwing-secret-0002"
CTWING_DEVICE = json.loads(CTWING_REPORT)["deviceId"]  # a-w1 on CTWing
ONENET_METER, ONENET_WATER = 523444202, 524552229  # a-e1 and b-w1 on OneNET (dev_id)


def push_registry(directory):
    tiny = tiny_province()
    ids = {"a-w1": CTWING_DEVICE, "a-e1": str(ONENET_METER), "b-w1": str(ONENET_WATER)}
    devices = [Device(d.id, d.institution, d.kind, d.unit, d.multiplier, d.address, ids.get(d.id, ""))
               for d in tiny.devices]
    write_registry(Province(tiny.institutions, devices, tiny.cards), directory)
    registry, problems = load_registry(directory)
    assert problems == [] and len(registry.by_platform_id) == 3
    return registry


@pytest.fixture
def influx(tmp_path_factory):
    """An influxd of the test's own: the tests kill or stall it."""
    yield from _serve(start_influxd, tmp_path_factory, "influx")


@contextlib.asynccontextmanager
async def pushing_collector(mosquitto, url, tmp_path) -> AsyncIterator[tuple[Collector, str]]:
    registry = push_registry(tmp_path / "registry")
    settings = make_settings(mosquitto.port, url, tmp_path / "registry", store_timeout_s=2.0,
                             onenet_token=ONENET_TOKEN, ctwing_token=CTWING_TOKEN, push_max_bytes=2048)
    async with running_collector(settings, registry) as collector:
        http = HttpService("127.0.0.1:0", prometheus_registry(collector.metrics), lambda: (True, ""))
        assert PushRoutes(collector).install(http) == ["onenet", "ctwing"]
        await http.start()
        try:
            yield collector, f"http://127.0.0.1:{http.port}"
        finally:
            await http.stop()


def onenet_body(msg, nonce="n0nce-01", token=ONENET_TOKEN) -> bytes:
    return json.dumps({"msg": msg, "msg_signature": signature(token, nonce, msg_text(msg)), "nonce": nonce},
                      separators=(",", ":")).encode()


def onenet_reading(dev_id: int, ts: int, value: float) -> dict:
    return {"at": ts * 1000, "imei": "861931046156398", "type": 1, "ds_id": "3300_0_5700", "value": value,
            "dev_id": dev_id}


def ctwing_body(appdata: bytes, device: str = CTWING_DEVICE) -> bytes:
    report = json.loads(CTWING_REPORT)
    report["deviceId"], report["payload"]["APPdata"] = device, base64.b64encode(appdata).decode()
    return json.dumps(report).encode()


async def send(http: aiohttp.ClientSession, method: str, url: str, body: bytes = b"") -> tuple[int, dict | str]:
    async with http.request(method, url, data=body, headers={"Content-Type": "application/json"}) as answer:
        text = await answer.text()
        return answer.status, json.loads(text) if answer.content_type == "application/json" else text



async def test_signed_pushes_stored_and_every_refusal_answered_and_kept(mosquitto, influx, tmp_path):
    url = f"influxdb://127.0.0.1:{influx.port}/push"
    now = int(time.time())
    async with pushing_collector(mosquitto, url, tmp_path) as (collector, base), aiohttp.ClientSession() as http:
        onenet, ctwing = f"{base}/push/onenet", f"{base}/push/ctwing?token={CTWING_TOKEN}"
        # OneNET's URL verification: the msg back, only with the right signature
        ok = {"msg": "Wq3kRt", "nonce": "abcdefgh", "signature": signature(ONENET_TOKEN, "abcdefgh", "Wq3kRt")}
        async with http.get(onenet, params=ok) as answer:
            assert (answer.status, await answer.text()) == (200, "Wq3kRt")
        async with http.get(onenet, params={**ok, "signature": signature("guess", "abcdefgh", "Wq3kRt")}) as answer:
            assert answer.status == 403
        # a DL/T 645 frame as hex in a OneNET data point: 12.34 kWh x multiplier 40 = 493.6
        frame = dlt645_energy_frame("000000000002", 12.34).hex()
        status, body = await send(http, "POST", onenet, onenet_body({**onenet_reading(ONENET_METER, now, 0),
                                                                    "value": frame}))
        assert (status, body["stored"], body["rejected"]) == (200, 1, [])
        status, body = await send(http, "POST", onenet, onenet_body({**onenet_reading(ONENET_METER, now, 0),
                                                                    "value": frame}, nonce="n0nce-02"))
        assert (status, body["stored"], body["duplicates"]) == (200, 0, 1)  # the platform's retry: a duplicate
        # a OneNET number: a reading at `at`
        status, body = await send(http, "POST", onenet, onenet_body(onenet_reading(ONENET_WATER, now - 60, 87.5)))
        assert (status, body["stored"]) == (200, 1)
        # a CJ/T 188 frame in CTWing's APPdata
        status, body = await send(http, "POST", ctwing, ctwing_body(cjt188_water_frame("00000000000001", 56.78)))
        assert (status, body["stored"]) == (200, 1)
        # the real CTWing report's own APPdata is no meter frame: rejected once, answered 200 (no retry helps)
        status, body = await send(http, "POST", ctwing, CTWING_REPORT.encode())
        assert status == 200 and [r["reason"] for r in body["rejected"]] == ["bad_frame"]
        # refusals
        assert (await send(http, "POST", onenet, ONENET_CAPTURE.encode()))[0] == 403  # signed with another token
        assert (await send(http, "POST", f"{base}/push/ctwing?token=guess", CTWING_REPORT.encode()))[0] == 403
        assert (await send(http, "POST", ctwing, b"x" * 4096))[0] == 413
        report = json.loads(CTWING_REPORT)
        report["payload"]["APPdata"] = "AQFW!!garbage"
        status, body = await send(http, "POST", ctwing, json.dumps(report).encode())
        assert (status, [r["reason"] for r in body["rejected"]]) == (400, ["invalid_payload"])
        assert (await send(http, "POST", ctwing, b"{not json"))[0] == 400
        status, body = await send(http, "POST", ctwing, ctwing_body(b"\x68\x10", device="ffffffffffffffffffffffff"))
        assert (status, [r["reason"] for r in body["rejected"]]) == (200, ["unknown_device"])
        async with http.get(f"{base}/metrics") as answer:
            metrics = await answer.text()
        assert 'meterwatch_collector_push_requests_total{platform="onenet",status="403"} 2.0' in metrics
        assert 'meterwatch_collector_push_requests_total{platform="ctwing",status="403"} 1.0' in metrics
        assert 'meterwatch_collector_rejected_total{reason="bad_signature"} 3.0' in metrics
    readings = {(r.device, r.register) for r in await fetch_all(url, ReadingPoint)}
    assert readings == {("a-e1", 493.6), ("b-w1", 87.5), ("a-w1", 56.78)}
    rejects = await fetch_all(url, RejectRecord)
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r.reason] = by_reason.get(r.reason, 0) + 1
    assert by_reason == {"bad_signature": 3, "bad_frame": 1, "oversized": 1, "invalid_payload": 1,
                         "malformed_json": 1, "unknown_device": 1}
    assert not any(ONENET_TOKEN.encode() in r.payload or CTWING_TOKEN.encode() in r.payload
                   or CTWING_TOKEN in r.detail or CTWING_TOKEN in r.topic for r in rejects)
    unknown = next(r for r in rejects if r.reason == "unknown_device")
    assert unknown.topic == "push/ctwing/ffffffffffffffffffffffff" and unknown.payload == b"\x68\x10"


async def test_pushes_with_the_store_stopped_are_answered_once_spooled_and_stored_when_it_returns(
        mosquitto, influx, tmp_path):
    url = f"influxdb://127.0.0.1:{influx.port}/pushdown"
    start = (int(time.time()) // 900 - 60) * 900
    sent = 40
    async with pushing_collector(mosquitto, url, tmp_path) as (collector, base), aiohttp.ClientSession() as http:
        influx.stop()
        for k in range(sent):
            status, body = await send(http, "POST", f"{base}/push/onenet",
                                      onenet_body(onenet_reading(ONENET_WATER, start + 900 * k, 10.0 + k),
                                                  nonce=f"n{k:07d}"))
            assert (status, body["stored"]) == (200, 1), body
        assert collector.metrics.spooled == sent and collector.spool.bytes > 0
        influx.start()
        assert await eventually(lambda: collector.spool.bytes, 0, timeout=60) == 0
    readings = await fetch_all(url, ReadingPoint)
    assert [(r.ts, r.register) for r in readings] == [(start + 900 * k, 10.0 + k) for k in range(sent)]
    assert [r.consumption for r in readings[1:]] == [1.0] * (sent - 1)


@pytest.mark.parametrize("workers", [1, 2])
async def test_meterwatch_collect_serves_the_push_routes_with_secrets_from_the_environment(mosquitto, tmp_path,
                                                                                          request, workers):
    """The real process: tokens from METERWATCH_* variables, routes wired, a push stored, no secret in the log.
    With ``--workers 2`` (InfluxDB) the supervisor's port passes the pushes to worker 0."""
    push_registry(tmp_path / "registry")
    port = free_port()
    url = (f"duckdb://{tmp_path / 'push.duckdb'}" if workers == 1
           else f"influxdb://127.0.0.1:{request.getfixturevalue('influx').port}/pushworkers")
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{mosquitto.port}", "METERWATCH_STORE": url,
           "METERWATCH_REGISTRY": str(tmp_path / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "test-push",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(tmp_path / "spool"), "METERWATCH_COLLECTOR__BATCH_INTERVAL_S": "0.2",
           "METERWATCH_COLLECTOR__HTTP_LISTEN": f"127.0.0.1:{port}",
           "METERWATCH_COLLECTOR__ONENET_TOKEN": ONENET_TOKEN, "METERWATCH_COLLECTOR__CTWING_TOKEN": CTWING_TOKEN}
    log = tmp_path / "collect.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect", "--workers", str(workers)],
                                env=env, stderr=fh, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"

    async def healthy() -> int:
        try:
            async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as answer:
                return answer.status
        except aiohttp.ClientError:
            return 0
    try:
        assert await eventually(healthy, 200, timeout=30) == 200, log.read_text()[-2000:]
        async with aiohttp.ClientSession() as http:
            status, body = await send(http, "POST", f"{base}/push/ctwing?token={CTWING_TOKEN}",
                                      ctwing_body(cjt188_water_frame("00000000000001", 3.5)))
            assert (status, body["stored"]) == (200, 1)
            assert (await send(http, "POST", f"{base}/push/ctwing?token=wrong", CTWING_REPORT.encode()))[0] == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert [(r.device, r.register) for r in await fetch_all(url, ReadingPoint)] == [("a-w1", 3.5)]
    text = log.read_text()
    assert "push=onenet,ctwing" in text
    assert ONENET_TOKEN not in text and CTWING_TOKEN not in text


async def test_a_push_not_durable_in_time_is_answered_503_and_its_resend_is_a_duplicate(mosquitto, influx, tmp_path):
    """influxd hangs (SIGSTOP): the write is not durable within push_timeout_s, so the platform hears 503 and
    sends again; the first delivery is stored once influxd resumes, and the resend is a duplicate."""
    url = f"influxdb://127.0.0.1:{influx.port}/push503"
    now = int(time.time())
    registry = push_registry(tmp_path / "registry")
    settings = make_settings(mosquitto.port, url, tmp_path / "registry", store_timeout_s=3.0,
                             ctwing_token=CTWING_TOKEN, push_timeout_s=0.5)
    async with running_collector(settings, registry) as collector, aiohttp.ClientSession() as http:
        app = HttpService("127.0.0.1:0", prometheus_registry(collector.metrics), lambda: (True, ""))
        PushRoutes(collector).install(app)
        await app.start()
        try:
            push = f"http://127.0.0.1:{app.port}/push/ctwing?token={CTWING_TOKEN}"
            body = ctwing_body(json.dumps({"ts": now - 30, "value": 42.0}).encode())
            influx.proc.send_signal(signal.SIGSTOP)
            try:
                status, answer = await send(http, "POST", push, body)
                assert (status, answer["error"]) == (503, "not_durable")
            finally:
                influx.proc.send_signal(signal.SIGCONT)
            await until(lambda: collector.metrics.acknowledged == 1, "the first delivery durable")
            status, answer = await send(http, "POST", push, body)  # the platform's retry
            assert (status, answer["stored"], answer["duplicates"]) == (200, 0, 1)
        finally:
            await app.stop()
    assert [(r.device, r.ts, r.register) for r in await fetch_all(url, ReadingPoint)] == [("a-w1", now - 30, 42.0)]
    assert collector.metrics.push_requests == {("ctwing", 503): 1, ("ctwing", 200): 1}


async def test_a_pushed_reading_of_an_unknown_platform_device_is_replayed_once_devices_csv_maps_it(
        mosquitto, duck_url, tmp_path):
    """Issue 17 item 4 for HTTP push: the item is kept as ``push/ctwing/{deviceId}``; once devices.csv gives
    that id a device, ``rejects replay`` stores it as the device's reading (and a second replay stores nothing)."""
    from collector.replay import replay, stored_rejects
    from meterwatch.settings import Settings

    async with pushing_collector(mosquitto, duck_url, tmp_path) as (_, base), aiohttp.ClientSession() as http:
        frame = cjt188_water_frame("00000000000007", 12.5)
        status, body = await send(http, "POST", f"{base}/push/ctwing?token={CTWING_TOKEN}",
                                  ctwing_body(frame, device="NEWPID0001"))
        assert (status, [r["reason"] for r in body["rejected"]]) == (200, ["unknown_device"])
    with open(tmp_path / "registry" / "devices.csv", "a", encoding="utf-8") as f:
        f.write("a-w7,inst-a,water,m3,1,00000000000007,NEWPID0001\n")
    registry, problems = load_registry(tmp_path / "registry")
    assert problems == []
    store = open_store(duck_url)
    await store.open()
    try:
        rejects = await stored_rejects(store, "unknown_device")
        assert [r.topic for r in rejects] == ["push/ctwing/NEWPID0001"]
        first = await replay(rejects, registry, Settings(), store)
        again = await replay(rejects, registry, Settings(), store)
        readings = [(r.device, r.register) for r in await store.fetch(ReadingPoint)]
        values = await store.fetch(MeterValuePoint)
    finally:
        await store.close()
    assert (first.replayed, first.stored, first.skipped) == (1, 1 + len(values), 0)  # the reading, the frame's values
    assert {v.device for v in values} == {"a-w7"}
    assert (again.stored, again.duplicates) == (0, 1)
    assert readings == [("a-w7", 12.5)]


async def test_a_pushed_batch_of_readings_is_answered_with_what_was_stored(mosquitto, duck_url, tmp_path):
    """A CTWing product with a thing model pushes the decoded JSON: a 12-reading batch takes the columnar path,
    and the answer must count its readings (it said 0 when they were held as columns)."""
    now = int(time.time()) // 900 * 900
    batch = {"readings": [{"ts": now - 900 * (12 - k), "value": 100.0 + k * 0.25} for k in range(12)]}
    report = json.loads(CTWING_REPORT)
    report["deviceId"], report["payload"] = CTWING_DEVICE, batch
    async with pushing_collector(mosquitto, duck_url, tmp_path) as (_, base), aiohttp.ClientSession() as http:
        status, body = await send(http, "POST", f"{base}/push/ctwing?token={CTWING_TOKEN}", json.dumps(report).encode())
    assert status == 200, body
    assert (body["stored"], body["rejected"]) == (12, [])
    assert len(await fetch_all(duck_url, ReadingPoint)) == 12


async def test_a_push_body_arriving_in_pieces_is_read_whole(mosquitto, duck_url, tmp_path):
    """A body that reaches the collector in several TCP segments (a slow link, a proxy) must be read whole:
    the route read only what had arrived, and refused the rest as malformed JSON (readings lost)."""
    now = int(time.time()) // 900 * 900
    batch = {"readings": [{"ts": now - 900 * (12 - k), "value": 100.0 + k * 0.25} for k in range(12)]}
    report = json.loads(CTWING_REPORT)
    report["deviceId"], report["payload"] = CTWING_DEVICE, batch
    body = json.dumps(report).encode()
    async with pushing_collector(mosquitto, duck_url, tmp_path) as (_, base):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /push/ctwing?token={CTWING_TOKEN} HTTP/1.1\r\nHost: meterwatch\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                     .encode() + body[:300])
        await writer.drain()
        await asyncio.sleep(0.3)  # the second piece really arrives later: what a slow link does (not a wait for us)
        writer.write(body[300:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    assert status == 200, answer[-400:]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["stored"] == 12
    assert len(await fetch_all(duck_url, ReadingPoint)) == 12
