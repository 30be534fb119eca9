"""The durable writer on a real influxd: writes split under the body limit, refusals isolated by bisection,
dead-lettered or quarantined with their reason, and a disk that cannot take the spool is backpressure."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request

import pytest

from benchmarks.servers import free_port
from meterwatch.store import Batch, ReadingPoint, RejectRecord
from meterwatch.store.durable import DurableWriter
from meterwatch.store.influx import InfluxStore
from meterwatch.store.spool import DiskSpool, Quarantine

pytestmark = pytest.mark.servers
T0 = (int(time.time()) // 86400 - 2) * 86400


def readings(n: int, flag_at: int | None = None) -> list[ReadingPoint]:
    return [ReadingPoint(f"d{k % 5}", "i1", "yinchuan", "office", "water", T0 + 900 * k, float(k), None, None,
                         "jump" if k == flag_at else None) for k in range(n)]


def rejects(n: int, size: int) -> list[RejectRecord]:
    return [RejectRecord(1_000_000 + k, "malformed_json", f"meterwatch/up/i1/d{k}/reading",
                         b"{" + bytes([65 + k % 26]) * size, f"bad json #{k}") for k in range(n)]


def letters(refused: Batch, error: str) -> list[RejectRecord]:
    return [RejectRecord(2_000_000 + k, "store_refused", "", repr(r).encode(), error[:200], r.institution, r.device)
            for k, r in enumerate(refused.readings)]


def influx_line(port: int, database: str, line: str) -> None:
    """Plant a point with urllib, outside the code under test (to make a field-type conflict)."""
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/write?db={database}&precision=s",
                                                  data=line.encode(), method="POST"), timeout=10)


@pytest.fixture
async def influx(influxd, influx_url):
    store = InfluxStore(influx_url)
    await store.open()
    yield store
    await store.close()


async def test_a_write_over_influxd_body_limit_is_split_not_refused(influx):
    """200 payloads of 200 KB are 40 MB of line protocol: influxd answers 413 above 25,000,000 bytes."""
    await influx.write(Batch(rejects=rejects(200, 200_000)))
    assert await influx.count(RejectRecord) == 200
    stored = await influx.fetch(RejectRecord, reason="malformed_json")
    assert sorted(len(r.payload) for r in stored) == [200_001] * 200


async def test_a_refused_record_is_isolated_and_dead_lettered_the_good_ones_stored(influxd, influx, tmp_path):
    influx_line(influxd.port, influx.database, f"reading,device=planted flag=1i {T0}")  # flag is now an integer
    writer = DurableWriter(influx, DiskSpool(tmp_path / "spool", 1 << 20), Quarantine(tmp_path / "q"),
                           dead_letters=letters)
    written = await writer.write(Batch(readings=readings(50, flag_at=17)))
    assert written.where == "store"
    assert [r.ts for r in written.refused.readings] == [T0 + 900 * 17]
    assert await influx.count(ReadingPoint) == 49
    dead = await influx.fetch(RejectRecord, reason="store_refused")
    assert len(dead) == 1 and "field type conflict" in dead[0].detail and dead[0].device == "d2"
    assert written.quarantined == 0 and len(writer.quarantine) == 0


async def test_what_the_store_refuses_one_by_one_is_quarantined_with_its_reason(influxd, influx, tmp_path):
    influx_line(influxd.port, influx.database, "reject,reason=planted detail=1i 1")  # detail is now an integer
    quarantine = Quarantine(tmp_path / "q")
    writer = DurableWriter(influx, DiskSpool(tmp_path / "spool", 1 << 20), quarantine, dead_letters=letters)
    written = await writer.write(Batch(readings=readings(3), rejects=rejects(2, 10)))
    assert written.where == "store" and written.quarantined == 2
    assert await influx.count(ReadingPoint) == 3
    files = sorted((tmp_path / "q").iterdir())
    assert len(files) == 2 and len(quarantine) == 2
    kept = [json.loads(f.read_bytes()) for f in files]
    assert all("field type conflict" in k["error"] for k in kept)
    assert sorted(row[1] for k in kept for row in k["records"]["reject"]) == ["malformed_json"] * 2
    assert sorted(row[4] for k in kept for row in k["records"]["reject"]) == ["bad json #0", "bad json #1"]


async def test_a_full_disk_under_the_spool_is_backpressure_until_space_returns(tiny_fs, caplog):
    """The spool on a real 1 MiB tmpfs with the store down: ENOSPC holds the write back, then it goes through."""
    caplog.set_level(logging.WARNING)
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * 850_000)
    store = InfluxStore(f"influxdb://127.0.0.1:{free_port()}/down", timeout_s=1)  # nothing listens there
    writer = DurableWriter(store, DiskSpool(tiny_fs / "spool", 1 << 30), Quarantine(tiny_fs / "q"))
    try:
        for _ in range(2):  # about 72 KB each: a third does not fit in what the filler left
            assert (await writer.write(Batch(readings=readings(1000)))).where == "spool"
        blocked = asyncio.create_task(writer.write(Batch(readings=readings(1000))))
        deadline = time.monotonic() + 10
        while writer.full_since is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert writer.full_since is not None and not blocked.done()
        await asyncio.sleep(2.5)  # long enough that a per-second complaint would show twice
        assert not blocked.done()
        filler.unlink()
        written = await asyncio.wait_for(blocked, 10)
        assert written.where == "spool" and len(writer.spool) == 3
        assert not list((tiny_fs / "spool").glob("*.tmp"))
    finally:
        await store.close()
    said = [r for r in caplog.records if "cannot take" in r.getMessage()]
    assert len(said) == 1 and "No space left" in said[0].error
    assert any("accepts again" in r.getMessage() for r in caplog.records)


async def test_a_batch_larger_than_the_spool_bound_is_stored_once_the_store_returns(tmp_path):
    """With nothing spooled, a batch the spool can never hold (over ``spool_max_bytes``) used to wait for disk
    room forever, even after the store came back; now each wait for room tries the store again."""
    from benchmarks.servers import start_influxd

    server = start_influxd(tmp_path / "influxd")
    store = InfluxStore(f"influxdb://127.0.0.1:{server.port}/back", timeout_s=1)
    writer = DurableWriter(store, DiskSpool(tmp_path / "spool", 10_000), Quarantine(tmp_path / "q"))
    try:
        await store.open()
        server.stop()
        blocked = asyncio.create_task(writer.write(Batch(readings=readings(1000))))  # about 72 KB
        deadline = time.monotonic() + 15
        while writer.full_since is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert writer.full_since is not None and not blocked.done() and len(writer.spool) == 0
        server.start()
        written = await asyncio.wait_for(blocked, 30)
        assert written.where == "store" and writer.full_since is None
        assert len(await store.fetch(ReadingPoint)) == 1000
    finally:
        await store.close()
        server.stop()
