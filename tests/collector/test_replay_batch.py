"""Replaying a rejected batch message: its readings take the columnar path and must all be stored."""

from __future__ import annotations

import json
import time

from collector.replay import replay
from meterwatch.settings import Settings
from meterwatch.store import Batch, ReadingPoint, RejectRecord, open_store
from tests.helpers import tiny_registry


async def test_a_replayed_batch_of_readings_is_stored_whole(tmp_path, duck_url):
    registry = tiny_registry(tmp_path / "registry")
    now = int(time.time()) // 900 * 900
    payload = json.dumps({"readings": [{"ts": now - 900 * (8 - k), "value": 10.0 + k} for k in range(8)]}).encode()
    reject = RejectRecord(now * 10**9, "unknown_device", "meterwatch/up/inst-a/a-w1/reading", payload,
                          "device 'a-w1' is not in the registry", "inst-a", "a-w1")
    store = open_store(duck_url)
    await store.open()
    before = ReadingPoint("a-w1", "inst-a", "yinchuan", "education", "water", now - 900 * 9, 9.0)
    try:
        await store.write(Batch(readings=[before]))  # a history: the batch is appended to it as columns
        report = await replay([reject], registry, Settings(), store)
        readings = await store.fetch(ReadingPoint)
    finally:
        await store.close()
    assert (report.replayed, report.stored) == (1, 8)
    assert [r.register for r in readings] == [9.0] + [10.0 + k for k in range(8)]
    assert [r.consumption for r in readings] == [None] + [1.0] * 8


async def test_a_replayed_gateway_frame_for_another_meter_continues_that_meters_stored_history(tmp_path, duck_url):
    """A frame on a-w1's topic from a-w2's address (gateway forwarding), refused before a-w2 was registered:
    replayed, its consumption is from a-w2's stored reading (it started from nothing; found in review)."""
    from meterwatch.registry import Device, load_registry
    from simulators.province import Province, write_registry
    from tests.helpers import cjt188_water_frame, tiny_province

    tiny = tiny_province()
    peer = Device("a-w2", "inst-a", "water", "m3", 1.0, "00000000000004")
    write_registry(Province(tiny.institutions, [*tiny.devices, peer], tiny.cards), tmp_path / "registry")
    registry, problems = load_registry(tmp_path / "registry")
    assert problems == []
    now = int(time.time())
    reject = RejectRecord((now - 600) * 10**9, "address_mismatch", "meterwatch/up/inst-a/a-w1/frame/cjt188",
                          cjt188_water_frame("00000000000004", 110.0), "no device at address", "inst-a", "a-w1")
    store = open_store(duck_url)
    await store.open()
    try:
        await store.write(Batch(readings=[ReadingPoint("a-w2", "inst-a", "yinchuan", "education", "water",
                                                       now - 3600, 100.0)]))
        report = await replay([reject], registry, Settings(), store)
        a_w2 = [r for r in await store.fetch(ReadingPoint) if r.device == "a-w2"]
    finally:
        await store.close()
    assert [(r.register, r.consumption) for r in a_w2] == [(100.0, None), (110.0, 10.0)]
    assert report.recomputed == 0  # the frame's own reading, not a stored one recomputed after it


def test_which_rejects_are_replayable():
    from collector.replay import replayable

    def reject(topic: str) -> RejectRecord:
        return RejectRecord(1, "unknown_device", topic, b"{}", "")

    assert [replayable(reject(t)) for t in ("meterwatch/up/inst-a/a-w1/reading", "push/ctwing/40edca19",
                                            "push/ctwing/", "push/onenet", "")] == [True, True, False, False, False]
