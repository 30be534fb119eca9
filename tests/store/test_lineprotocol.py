from meterwatch.store import ReadingPoint, RejectRecord
from meterwatch.store.lineprotocol import bytes_of_text, encode_point, escape_tag, text_of_bytes


def test_reading_line_has_tags_typed_fields_and_seconds():
    line = encode_point(ReadingPoint.schema, ReadingPoint("d1", "i1", "yinchuan", "office", "water", 1763914500,
                                                         12.5, 0.25, 900))
    assert line == ("reading,institution=i1,city=yinchuan,type=office,kind=water,device=d1 "
                    "register=12.5,consumption=0.25,interval_s=900i 1763914500")


def test_missing_consumption_is_left_out_not_written_as_null():
    line = encode_point(ReadingPoint.schema, ReadingPoint("d1", "i1", "c", "t", "water", 1, 1.0))
    assert " register=1.0 " in line and "consumption" not in line


def test_escaping_of_tags_and_strings():
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    line = encode_point(RejectRecord.schema, RejectRecord(7, "bad_topic", 'x "y" \\z', b"ok", "d", "i,1"))
    assert 'reject,reason=bad_topic,institution=i\\,1 topic="x \\"y\\" \\\\z",payload="ok",detail="d"' in line
    assert line.endswith(" 7")


def test_binary_and_multiline_payloads_round_trip_losslessly():
    for payload in (b"\x00\xff\x10", b"line1\nline2", "b64:looks-encoded".encode(), "中文".encode()):
        assert bytes_of_text(text_of_bytes(payload)) == payload
    assert text_of_bytes("中文".encode()) == "中文"
