import asyncio
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterwatch.store import Batch, ReadingPoint, RejectRecord, WeighingPoint, open_store
from meterwatch.store.lineprotocol import (
    B64_PREFIX,
    bytes_of_text,
    encode_lines,
    encode_point,
    escape_tag,
    text_of_bytes,
)


def test_reading_line_has_tags_typed_fields_and_seconds():
    line = encode_point(ReadingPoint.schema, ReadingPoint("d1", "i1", "yinchuan", "office", "water", 1763914500,
                                                         12.5, 0.25, 900))
    assert line == ("reading,city=yinchuan,device=d1,institution=i1,kind=water,type=office "
                    "register=12.5,consumption=0.25,interval_s=900i 1763914500")  # tags by key: influxd's order


def test_missing_consumption_is_left_out_not_written_as_null():
    line = encode_point(ReadingPoint.schema, ReadingPoint("d1", "i1", "c", "t", "water", 1, 1.0))
    assert " register=1.0 " in line and "consumption" not in line


def test_escaping_of_tags_and_strings():
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    line = encode_point(RejectRecord.schema, RejectRecord(7, "bad_topic", 'x "y" \\z', b"ok", "d", "i,1"))
    assert 'reject,institution=i\\,1,reason=bad_topic topic="x \\"y\\" \\\\z",payload="ok",detail="d"' in line
    assert line.endswith(" 7")


def test_binary_and_multiline_payloads_round_trip_losslessly():
    for payload in (b"\x00\xff\x10", b"line1\nline2", "b64:looks-encoded".encode(), "中文".encode()):
        assert bytes_of_text(text_of_bytes(payload)) == payload
    assert text_of_bytes("中文".encode()) == "中文"


def _weighing(zone: str, ts: int = 1, card: str = "C1") -> WeighingPoint:
    return WeighingPoint("s1", "i1", "yinchuan", zone, "recyclable", ts, 1.5, card, "p", "u")


def test_a_newline_in_a_tag_value_stays_inside_its_own_line():
    body = encode_lines(WeighingPoint.schema, [_weighing("z\nevil,x=1 f=1 1"), _weighing("z2", 2)])
    assert len(body.split("\n")) == 2 and all(line.startswith("weighing,") for line in body.split("\n"))


def test_a_tag_value_line_protocol_cannot_carry_is_base64_and_decodes_back():
    """Trailing backslash (it would escape the separator) and control characters."""
    for value in ("zone\\", "a\tb", "a\x00b", "b64:not-base64!", "\u2028"):
        line = encode_point(WeighingPoint.schema, _weighing(value))
        encoded = re.search(r",zone=((?:[^,\\ ]|\\.)*)", line).group(1)  # up to the next unescaped comma or space
        assert encoded.startswith(B64_PREFIX) and bytes_of_text(encoded.replace("\\=", "=")).decode() == value
    assert ",zone=a\\\\\\,b " in encode_point(WeighingPoint.schema, _weighing("a\\\\,b"))  # backslashes kept as such


SPECIAL = st.text(alphabet=" ,=\\\"'\n\r\t\x00b64:é中\u2028", max_size=12)
TEXTS = st.lists(st.one_of(SPECIAL, st.text(max_size=16)), min_size=1, max_size=6)


@pytest.mark.servers
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=TEXTS)
def test_any_text_as_tag_or_string_field_round_trips_through_influxd(influx_url, texts):
    """Arbitrary unicode in tags and string fields: read back equal, and never a point elsewhere."""
    asyncio.run(_round_trip(influx_url, texts))


_written = {"examples": 0, "weighings": 0, "rejects": 0}


async def _round_trip(url: str, texts: list[str]) -> None:
    k = _written["examples"] = _written["examples"] + 1
    scale = f"s{k}"
    weighings = [WeighingPoint(scale, "i1", "yinchuan", t, "recyclable", 1000 + i, 1.5, f"C{i}", t, t)
                 for i, t in enumerate(texts)]
    rejects = [RejectRecord(2 * k * 1_000_000_000 + i, "bad_topic", t, t.encode(), t, t, t) for i, t in enumerate(texts)]
    store = open_store(url)
    await store.open()
    try:
        await store.write(Batch(weighings=weighings, rejects=rejects))
        _written["weighings"] += len(weighings)
        _written["rejects"] += len(rejects)
        assert sorted(await store.fetch(WeighingPoint, scale=scale), key=lambda w: w.ts) == weighings
        assert await store.fetch(RejectRecord, start=2 * k, end=2 * k + 1) == rejects
        assert await store.query("SHOW MEASUREMENTS") == [
            {"name": "measurements", "columns": ["name"], "values": [["reject"], ["weighing"]]}]
        assert await store.count(WeighingPoint) == _written["weighings"]
        assert await store.count(RejectRecord) == _written["rejects"]
    finally:
        await store.close()


def test_request_bodies_are_bounded_in_utf8_bytes_not_characters() -> None:
    """A line of Chinese text is three bytes a character: the body limit counts bytes, ASCII lines or not."""
    from meterwatch.store.influx import request_bodies

    chinese, ascii_line = "w,name=银川 v=1 1", "w,name=yc v=1 1"  # 15 characters, 19 bytes; 15 characters and bytes
    assert list(request_bodies([chinese, chinese], max_bytes=40)) == [f"{chinese}\n{chinese}"]  # (19 + 1) x 2
    assert list(request_bodies([chinese, chinese], max_bytes=39)) == [chinese, chinese]
    assert list(request_bodies([ascii_line] * 2, max_bytes=32)) == [f"{ascii_line}\n{ascii_line}"]  # (15 + 1) x 2
    assert list(request_bodies([ascii_line] * 2, max_bytes=31)) == [ascii_line, ascii_line]
    assert list(request_bodies([ascii_line] * 3, max_bytes=32, max_lines=2)) == [f"{ascii_line}\n{ascii_line}",
                                                                                  ascii_line]
