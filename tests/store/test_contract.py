"""The same contract for every backend: DuckDB and a real InfluxDB."""

import pytest

from meterwatch.store import (
    AlertPoint,
    Batch,
    CollectorSample,
    DeliveryPoint,
    ReadingPoint,
    RejectRecord,
    WeighingPoint,
    open_store,
)


def reading(device, ts, register, consumption=None, interval=None, inst="i1"):
    return ReadingPoint(device, inst, "yinchuan", "office", "water", ts, register, consumption, interval)


@pytest.fixture
async def store(store_url):
    s = open_store(store_url)
    await s.open()
    await s.open()  # harmless twice
    yield s
    await s.close()
    await s.close()  # harmless twice


async def test_same_reading_twice_leaves_one_point_last_write_wins(store):
    await store.write(Batch(readings=[reading("d1", 1000, 5.0), reading("d1", 1000, 5.0)]))
    await store.write(Batch(readings=[reading("d1", 1000, 5.0, 0.5, 900)]))
    assert await store.count(ReadingPoint) == 1
    (p,) = await store.fetch(ReadingPoint)
    assert (p.register, p.consumption, p.interval_s) == (5.0, 0.5, 900)


async def test_rewriting_a_point_without_a_field_keeps_the_stored_field(store):
    """InfluxDB merges fields of the same point; DuckDB must do the same (redelivery after a crash)."""
    await store.write(Batch(readings=[reading("d1", 1000, 5.0, 0.5, 900)]))
    await store.write(Batch(readings=[reading("d1", 1000, 5.0)]))
    (p,) = await store.fetch(ReadingPoint)
    assert (p.consumption, p.interval_s) == (0.5, 900)


async def test_fetch_filters_by_time_and_tag_and_orders_by_time(store):
    await store.write(Batch(readings=[reading("d2", 3000, 3.0), reading("d1", 2000, 2.0), reading("d1", 1000, 1.0),
                                      reading("d1", 4000, 4.0)]))
    got = await store.fetch(ReadingPoint, start=1500, end=4000, device="d1")
    assert [(p.ts, p.register) for p in got] == [(2000, 2.0), (4000, 4.0)]


async def test_every_record_type_round_trips(store):
    batch = Batch(
        weighings=[WeighingPoint("s1", "i1", "yinchuan", "zone-1", "recyclable", 1000, 12.4, "CARD", "张三", "一号楼")],
        alerts=[AlertPoint("a1", 1000, "open", "i1", "d1", "silent", "warning", "表计无数据", "silent", 6.5, "h", 900)],
        rejects=[RejectRecord(1_000_000_000_001, "malformed_json", "meterwatch/up/x/y/reading",
                              b"\x00{bad\n", "not valid JSON", "x", "y")],
        metrics=[CollectorSample("c1", 1000, 10, 8, 2, 1, 0, 0, 3.5, 12.0, 4.0, 1)],
        deliveries=[DeliveryPoint("dingtalk", "yc-ops", "failed", 1_000_000_000_002, "m1", "a1,a2", "HTTP 503", 2)],
    )
    await store.write(batch)
    assert await store.fetch(DeliveryPoint) == batch.deliveries
    assert await store.fetch(WeighingPoint) == batch.weighings
    assert await store.fetch(AlertPoint) == batch.alerts
    assert await store.fetch(RejectRecord) == batch.rejects
    assert await store.fetch(CollectorSample) == batch.metrics


async def test_rejects_in_the_same_second_stay_apart_and_count_by_reason(store):
    await store.write(Batch(rejects=[RejectRecord(5_000_000_000 + i, "bad_topic", "t", b"p", "d") for i in range(3)]
                            + [RejectRecord(6_000_000_000, "oversized", "t", b"p", "d")]))
    assert await store.count(RejectRecord) == 4
    assert await store.count_by(RejectRecord, "reason", since=5) == {"bad_topic": 3, "oversized": 1}
    assert await store.count_by(RejectRecord, "reason", since=6) == {"oversized": 1}


async def test_latest_readings_and_device_activity(store):
    await store.write(Batch(readings=[reading("d1", t, float(t), 1.0, 900) for t in (900, 1800, 2700)]
                            + [reading("d2", 1800, 7.0)]))
    assert await store.latest_readings(0) == {"d1": (2700, 2700.0), "d2": (1800, 7.0)}
    act = await store.device_activity(0, 10_000)
    by = dict(zip(act.device, zip(act.last_ts, act.usual_interval_s, act.count, strict=True), strict=True))
    assert by["d1"][0] == 2700 and by["d1"][1] == 900 and by["d1"][2] == 3
    assert by["d2"][0] == 1800 and by["d2"][2] == 1
    # until: the newest reading at or before it; devices: only those
    assert await store.latest_readings(0, until=2000) == {"d1": (1800, 1800.0), "d2": (1800, 7.0)}
    assert await store.latest_readings(0, ["d2", "d9"], until=2000) == {"d2": (1800, 7.0)}
    assert await store.latest_readings(0, []) == {}
    only = await store.device_activity(0, 2000, devices=["d1"])
    assert only.device == ["d1"] and only.last_ts.tolist() == [1800.0] and only.count.tolist() == [2]
    assert (await store.device_activity(0, 2000, devices=[])).device == []


async def test_neighbours_of_a_time(store):
    await store.write(Batch(readings=[reading("d1", t, float(t)) for t in (900, 1800, 3600)] + [reading("d2", 2000, 1.0)]))
    assert await store.neighbours("d1", 2700) == ((1800, 1800.0), (3600, 3600.0))
    assert await store.neighbours("d1", 899) == (None, (900, 900.0))
    assert await store.neighbours("d1", 1800) == ((1800, 1800.0), (3600, 3600.0))  # a reading at ts itself
    assert await store.neighbours("d1", 5000) == ((3600, 3600.0), None)


async def test_columnar_write_matches_record_write(store):
    import numpy as np

    cols = {"device": ["d1", "d1", "d2"], "institution": ["i1", "i1", "i2"], "city": ["yinchuan"] * 3,
            "type": ["office"] * 3, "kind": ["water"] * 3, "ts": np.array([900, 1800, 900]),
            "register": np.array([1.0, 2.5, 7.0]), "consumption": np.array([np.nan, 1.5, np.nan]),
            "interval_s": np.array([0, 900, 0]), "flag": [None, "rollover", None]}
    await store.write_columns(ReadingPoint, cols)
    got = await store.fetch(ReadingPoint, device="d1")
    assert [(p.ts, p.register, p.consumption, p.flag) for p in got] == [(900, 1.0, None, None), (1800, 2.5, 1.5, "rollover")]
    assert await store.count(ReadingPoint) == 3


async def test_aggregate_grouped_bucketed_and_filtered(store):
    from meterwatch.store.aggregate import Aggregate

    day0 = 1_767_196_800  # 2026-01-01 00:00 China time (16:00 UTC the day before)
    rows = [reading("d1", day0 + 900 * k, float(k), float(k % 3), 900) for k in range(1, 193)]  # two local days
    rows += [ReadingPoint("e1", "i1", "yinchuan", "office", "electricity", day0 + 900, 5.0, 2.0, 900)]
    await store.write(Batch(readings=rows))
    per_device = await store.aggregate(Aggregate(ReadingPoint, {"low": ("min", "consumption"),
                                                                "n": ("count", "consumption"),
                                                                "top": ("max", "interval_s")},
                                                 day0, day0 + 2 * 86400, by=("device",), where={"kind": "water"}))
    assert per_device["device"] == ["d1"] and per_device["low"].tolist() == [0.0]
    assert per_device["n"].tolist() == [191.0] and per_device["top"].tolist() == [900.0]
    daily = await store.aggregate(Aggregate(ReadingPoint, {"use": ("sum", "consumption")}, day0, day0 + 2 * 86400,
                                            by=("institution", "kind"), bucket_s=86400))
    got = sorted(zip(daily["institution"], daily["kind"], daily["bucket"].tolist(), daily["use"].tolist(), strict=True))
    assert got == [("i1", "electricity", day0, 2.0), ("i1", "water", day0, 96.0), ("i1", "water", day0 + 86400, 96.0)]
    nothing = await store.aggregate(Aggregate(ReadingPoint, {"s": ("sum", "consumption")}, 0, 10, by=("device",)))
    assert nothing["device"] == [] and len(nothing["s"]) == 0


async def test_aggregate_over_named_devices_only(store, monkeypatch):
    """``devices`` keeps only those devices' points, over more devices than one InfluxDB query names."""
    from meterwatch.store import influx
    from meterwatch.store.aggregate import Aggregate

    monkeypatch.setattr(influx, "DEVICES_PER_QUERY", 2)  # three queries for five devices
    rows = [reading(f"d{i}", 900 * k, float(k * i), float(i), 900) for i in range(8) for k in range(1, 5)]
    await store.write(Batch(readings=rows))
    wanted = ("d1", "d3", "d4", "d6", "missing")
    got = await store.aggregate(Aggregate(ReadingPoint, {"use": ("sum", "consumption"), "mid": ("median", "register")},
                                          0, 10_000, by=("device",), devices=wanted))
    # each device: consumption i at 900, 1800, 2700, 3600 (4 i); registers i, 2i, 3i, 4i (median 2.5 i)
    assert got["device"] == ["d1", "d3", "d4", "d6"]
    assert got["use"].tolist() == [4.0, 12.0, 16.0, 24.0] and got["mid"].tolist() == [2.5, 7.5, 10.0, 15.0]
    none = await store.aggregate(Aggregate(ReadingPoint, {"use": ("sum", "consumption")}, 0, 10_000, by=("device",),
                                           devices=()))
    assert none["device"] == [] and len(none["use"]) == 0


async def test_a_sparse_aggregate_is_the_same_aggregate(store):
    """``sparse`` (InfluxDB groups the points itself, a local day at a time) changes no figure: weighings over
    three local days, closing or not, filtered by a tag."""
    from meterwatch.store.aggregate import Aggregate

    day0 = 1_767_196_800  # 2026-01-01 00:00 China time
    rows = [WeighingPoint("s1", f"i{k % 3}", "yinchuan", "z", ("recyclable", "other")[k % 2], day0 + 3000 * k,
                          float(k), f"c{k}", "", "") for k in range(80)]  # 66 hours: three local days
    await store.write(Batch(weighings=rows))
    for closing in (False, True):
        for where in ({}, {"city": "yinchuan"}):
            asks = [Aggregate(WeighingPoint, {"kg": ("sum", "weight_kg"), "n": ("count", "weight_kg"),
                                              "top": ("max", "weight_kg")}, day0 + 1, day0 + 3 * 86400,
                              by=("institution", "category"), where=where, closing=closing, sparse=sparse)
                    for sparse in (False, True)]
            dense, sparse = [await store.aggregate(a) for a in asks]
            assert sparse["institution"] == dense["institution"] and sparse["category"] == dense["category"]
            for v in ("kg", "n", "top"):
                assert sparse[v].tolist() == dense[v].tolist()
    by_hand = await store.aggregate(Aggregate(WeighingPoint, {"kg": ("sum", "weight_kg")}, day0, day0 + 86400,
                                              by=("institution", "category"), sparse=True))
    got = dict(zip(zip(by_hand["institution"], by_hand["category"]), by_hand["kg"].tolist(), strict=True))
    # the first local day: k = 0..28 (3000 s apart); i0: k = 0, 3, 6, ...; recyclable: k even
    assert got[("i0", "recyclable")] == 0 + 6 + 12 + 18 + 24 and got[("i0", "other")] == 3 + 9 + 15 + 21 + 27


def weighing(card, ts=1000, kg=10.0, zone="zone-1", category="recyclable", cleaner="张三", owner="一号楼"):
    return WeighingPoint("s1", "i1", "yinchuan", zone, category, ts, kg, card, cleaner, owner)


async def test_weighings_of_one_scale_in_one_second_stay_apart_and_a_redelivery_is_one_point(store):
    """A weighing is identified by scale, second and card in both backends (DuckDB's key)."""
    two_cards = [weighing("CARD-A", kg=10.0), weighing("CARD-B", kg=20.0)]  # one cleaner's two cards, same bin type
    unknown = [weighing(card, kg=kg, zone="unknown", category="unknown", cleaner="unknown", owner="unknown")
               for card, kg in (("STRAY-1", 3.0), ("STRAY-2", 4.0))]
    await store.write(Batch(weighings=two_cards + unknown))
    await store.write(Batch(weighings=[weighing("CARD-A", kg=10.0)]))  # redelivered: the same point again
    assert await store.count(WeighingPoint) == 4
    got = sorted((w.card, w.weight_kg) for w in await store.fetch(WeighingPoint, scale="s1"))
    assert got == [("CARD-A", 10.0), ("CARD-B", 20.0), ("STRAY-1", 3.0), ("STRAY-2", 4.0)]


async def test_a_write_into_days_gone_by_leaves_one_mark_after_its_readings(store):
    """Readings older than a day when written (late, imported, replayed) leave a ``ChangeMark``: the oldest time and
    how many; readings on time leave none.  Every way in: points, columns in a batch, and ``write_columns``."""
    import time

    import numpy as np

    from meterwatch.store import ChangeMark, ReadingColumns

    now = int(time.time())
    day = 86_400
    before = time.time_ns()
    await store.write(Batch(readings=[reading("d1", now - 600, 5.0)]))  # on time
    assert await store.fetch(ChangeMark) == []
    await store.write(Batch(readings=[reading("d1", now - 3 * day, 1.0), reading("d1", now - 600, 5.0),
                                      reading("d2", now - 2 * day, 2.0)]))
    block = ReadingColumns("d3", "i1", "yinchuan", "office", "water", np.array([now - 9 * day, now - 8 * day, now - 60]),
                           np.array([1.0, 2.0, 3.0]), np.array([np.nan, 1.0, 1.0]), np.array([-1, day, day]))
    await store.write(Batch(reading_columns=[block]))
    await store.write_columns(ReadingPoint, {"device": ["d4", "d4"], "institution": ["i1", "i1"],
                                             "city": ["yinchuan"] * 2, "type": ["office"] * 2, "kind": ["water"] * 2,
                                             "ts": [now - 40 * day, now - 39 * day], "register": [1.0, 2.0]})
    marks = await store.fetch(ChangeMark)
    assert [(m.record, m.oldest, m.points) for m in marks] == [
        ("reading", now - 3 * day, 2), ("reading", now - 9 * day, 2), ("reading", now - 40 * day, 2)]
    assert all(before <= m.ts_ns <= time.time_ns() for m in marks)
    assert [m.oldest for m in await store.fetch(ChangeMark, start=now - 5, record="reading")] == [
        now - 3 * day, now - 9 * day, now - 40 * day]
