import pytest

from meterwatch.store import (
    AlertPoint,
    Batch,
    ChangeMark,
    CollectorSample,
    CostPoint,
    DeliveryPoint,
    MeterValuePoint,
    PricedDay,
    ReadingPoint,
    RejectRecord,
    StatisticPoint,
    WeighingPoint,
)
from meterwatch.store.codec import decode_batch, encode_batch
from meterwatch.store.records import RECORD_TYPES, BillPoint
from meterwatch.store.spool import DiskSpool, Quarantine, SpoolFull


def batch(n: int, device: str = "d1") -> Batch:
    return Batch(readings=[ReadingPoint(device, "i1", "yinchuan", "office", "water", 900 * k, float(k),
                                        1.0 if k else None, 900 if k else None) for k in range(n)],
                 rejects=[RejectRecord(n, "malformed_json", "t", b"\x00\xff", "x")])


def test_codec_round_trips_every_field_including_bytes_and_nulls():
    b = batch(3)
    assert decode_batch(encode_batch(b)) == b


def test_batches_come_back_in_order_and_survive_a_restart(tmp_path):
    spool = DiskSpool(tmp_path, 1 << 20)
    for n in (1, 2, 3):
        spool.append(batch(n))
    path, first = spool.oldest()
    assert len(first.readings) == 1
    spool.remove(path)
    (tmp_path / "0000000000000009.tmp").write_bytes(b"half a batch")  # a crash mid-write
    again = DiskSpool(tmp_path, 1 << 20)
    assert len(again) == 2 and not list(tmp_path.glob("*.tmp"))
    assert [len(again.oldest()[1].readings)] == [2]
    again.append(batch(4))
    sizes = []
    while (item := again.oldest()) is not None:
        sizes.append(len(item[1].readings))
        again.remove(item[0])
    assert sizes == [2, 3, 4] and again.bytes == 0


def test_full_spool_refuses_instead_of_dropping(tmp_path):
    spool = DiskSpool(tmp_path, 600)
    spool.append(batch(1))
    with pytest.raises(SpoolFull):
        spool.append(batch(20))
    assert len(spool) == 1


def test_latest_readings_of_spooled_batches(tmp_path):
    spool = DiskSpool(tmp_path, 1 << 20)
    spool.append(batch(3, "d1"))
    spool.append(batch(2, "d2"))
    assert spool.latest_readings() == {"d1": (1800, 2.0), "d2": (900, 1.0)}


def test_quarantine_keeps_each_refused_set_with_the_error_and_survives_a_restart(tmp_path):
    import json

    q = Quarantine(tmp_path / "q")
    q.put(batch(1), "InfluxDB 400: field type conflict")
    q.put(batch(2), "InfluxDB 413")
    again = Quarantine(tmp_path / "q")
    assert len(again) == 2
    first = json.loads(sorted((tmp_path / "q").glob("*.json"))[0].read_bytes())
    assert first["error"] == "InfluxDB 400: field type conflict"
    assert first["records"]["reject"][0][1] == "malformed_json" and len(first["records"]["reading"]) == 1


def one_of_each() -> Batch:
    """A batch holding one record of every stored type (a new type must be added here and to Batch)."""
    return Batch(
        readings=batch(1).readings, rejects=batch(1).rejects,
        weighings=[WeighingPoint("s1", "i1", "yinchuan", "z1", "other", 5, 3.5, "c1", "k1", "u1")],
        values=[MeterValuePoint("d1", "i1", "voltage_a", 5, 229.5)],
        alerts=[AlertPoint("a1", 5, "open", "i1", "d1", "leak", "warning", "漏水", "leak", 0.5, "m3/h", 1)],
        metrics=[CollectorSample("c1", 5, 10, 9, 1, 0, 0, 0, 0.5, 3.0, 1.0, 1)],
        statistics=[StatisticPoint("i1", "yinchuan", "office", "water", 5, 10.0, 0.1, None, 1, 1, None, None,
                                   0.05, None)],
        costs=[CostPoint("i1", "yinchuan", "office", "water", 5, 3.0, 12.3, method="profile", tariff="f1")],
        ledger=[PricedDay(5, "f1", 1)],
        deliveries=[DeliveryPoint("dingtalk", "yc-ops", "sent", 5_000_000_001, "m1", "a1,a2", "", 1)],
        bills=[BillPoint("i1", "yinchuan", "office", "water", 5, 300.0, 1200.5, "bills.csv")],
        changes=[ChangeMark("reading", 5_000_000_002, 5, 1)],
    )


def test_codec_round_trips_a_batch_of_every_record_type():
    b = one_of_each()
    assert {t.schema.measurement for t, _ in b.groups()} == {t.schema.measurement for t in RECORD_TYPES}
    assert decode_batch(encode_batch(b)) == b

