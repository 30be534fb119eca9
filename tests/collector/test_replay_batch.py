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
