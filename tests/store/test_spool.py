import pytest

from meterwatch.store import Batch, ReadingPoint, RejectRecord
from meterwatch.store.codec import decode_batch, encode_batch
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
