"""Buckets by the interval a reading closes: 08:00 with 15 minutes of use belongs to 07:00-08:00, on both backends."""

from meterwatch.localtime import midnight_of
from meterwatch.store import Batch, ReadingPoint, open_store
from meterwatch.store.aggregate import Aggregate

from datetime import date


async def test_readings_at_quarter_hours_fall_in_the_hour_they_close(store_url):
    day = midnight_of(date(2026, 10, 1))
    points = [ReadingPoint("e1", "i1", "yinchuan", "office", "electricity", day + 900 * k, float(k), 1.0 * k, 900)
              for k in range(1, 9)]  # 00:15 .. 02:00 local, consumption k
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(readings=points))
        closing = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, day, day + 7200,
                                                  by=("institution",), bucket_s=3600, closing=True))
        plain = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, day, day + 7200,
                                                by=("institution",), bucket_s=3600))
    finally:
        await store.close()
    # 00:00-01:00 is closed by 00:15, 00:30, 00:45 and 01:00 (1+2+3+4); 01:00-02:00 by 01:15 .. 02:00 (5+6+7+8)
    assert list(zip(closing["bucket"].tolist(), closing["c"].tolist(), strict=True)) == [(day, 10.0), (day + 3600, 26.0)]
    # by the reading's own time: 00:15-00:45 in the first hour, 01:00-01:45 in the second; 02:00 is outside
    assert list(zip(plain["bucket"].tolist(), plain["c"].tolist(), strict=True)) == [(day, 6.0), (day + 3600, 22.0)]


async def test_a_duckdb_table_from_before_a_field_was_added_gains_the_column(tmp_path):
    """Databases outlive releases: a statistic table without the newer fields still takes new points."""
    import duckdb

    from meterwatch.store import StatisticPoint

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute('CREATE TABLE "statistic" ("institution" VARCHAR, "indicator" VARCHAR, "ts" BIGINT, "use" DOUBLE, '
                'PRIMARY KEY ("institution", "indicator", "ts"))')
    con.execute("INSERT INTO statistic VALUES ('i0', 'water', 1, 5.0)")
    con.close()
    store = open_store(f"duckdb://{path}")
    await store.open()
    try:
        point = StatisticPoint("i1", "yinchuan", "office", "water", 2, 7.0, 1.0, 0.1, 1, 1, 1, 1, 0.05, None,
                               quota_status="guide", name="甲")
        await store.write(Batch(statistics=[point]))
        got = {p.institution: p for p in await store.fetch(StatisticPoint)}
    finally:
        await store.close()
    assert got["i0"].use == 5.0 and got["i1"].quota_status == "guide" and got["i1"].name == "甲"


async def test_rejects_kept_in_nanoseconds_aggregate_by_their_seconds(store_url):
    """An aggregate over `reject` (time in ns) filters and buckets by the same seconds as any other record."""
    from meterwatch.store import RejectRecord

    day = midnight_of(date(2026, 10, 1))
    rejects = [RejectRecord((day + 3600 * k) * 1_000_000_000 + k, "bad_topic", "t", b"x", "d") for k in range(3)]
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(rejects=rejects))
        res = await store.aggregate(Aggregate(RejectRecord, {"n": ("count", "topic")}, day, day + 7200,
                                              by=("reason",), bucket_s=3600))
    finally:
        await store.close()
    assert list(zip(res["bucket"].tolist(), res["n"].tolist(), strict=True)) == [(day, 1.0), (day + 3600, 1.0)]
