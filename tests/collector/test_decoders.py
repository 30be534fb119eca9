import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import reasons
from collector.decoders import DECODERS, DecodeContext
from meterwatch.registry import Device

NOW = 1_764_000_000.0
METER = Device("m1", "i1", "water", "m3", 1.0, "")
SCALE = Device("s1", "i1", "scale", "kg", 1.0, "")


def ctx(device: Device = METER) -> DecodeContext:
    return DecodeContext(device, NOW, 3600, 100)


def decode_reading(payload: bytes | str):
    raw = payload.encode() if isinstance(payload, str) else payload
    return DECODERS["reading"].decode(raw, ctx())


def test_single_reading_rfc3339_and_unix_seconds_agree():
    a = decode_reading('{"ts": "2025-11-24T00:15:00+08:00", "value": 1234.567}')
    b = decode_reading('{"ts": 1763914500, "value": 1234.567}')
    assert a.samples == b.samples and a.samples[0].ts == 1763914500 and a.samples[0].value == 1234.567


def test_batch_keeps_valid_items_and_rejects_only_the_bad_ones():
    body = {"readings": [{"ts": 1763914500, "value": 1.0}, {"ts": 1763915400, "value": -3},
                         {"ts": "yesterday", "value": 2.0}, {"ts": 1763916300, "value": "2.5"},
                         {"ts": 1763917200, "value": 2.0, "unit": "kWh"}, {"ts": 1763918100, "value": 2.5}],
            "battery_v": 3.6}
    out = decode_reading(json.dumps(body))
    assert [s.ts for s in out.samples] == [1763914500, 1763918100]
    assert [r.reason for r in out.rejects] == [reasons.BAD_VALUE, reasons.BAD_TIMESTAMP, reasons.BAD_VALUE,
                                               reasons.UNIT_MISMATCH]
    assert out.rejects[0].detail.startswith("readings[1]:")
    assert json.loads(out.rejects[0].payload) == {"ts": 1763915400, "value": -3}


@pytest.mark.parametrize("payload, reason", [
    ("{not json", reasons.MALFORMED_JSON),
    ('{"ts": 1763914500, "value": NaN}', reasons.MALFORMED_JSON),
    ('{"ts": 1763914500, "value": Infinity}', reasons.MALFORMED_JSON),
    ("[" * 100_000 + "]" * 100_000, reasons.MALFORMED_JSON),
    ('{"ts": "2025-11-24T00:15:00", "value": 1}', reasons.BAD_TIMESTAMP),
    ('{"ts": 100, "value": 1}', reasons.BAD_TIMESTAMP),
    (f'{{"ts": {int(NOW) + 86400}, "value": 1}}', reasons.BAD_TIMESTAMP),
    ('{"ts": true, "value": 1}', reasons.BAD_TIMESTAMP),
    ('{"ts": 1763914500, "value": true}', reasons.BAD_VALUE),
    ('{"ts": 1763914500}', reasons.BAD_VALUE),
    ('{"readings": []}', reasons.INVALID_PAYLOAD),
    ('{"readings": [' + ",".join(['{"ts": 1763914500, "value": 1}'] * 101) + "]}", reasons.OVERSIZED),
    ("42", reasons.INVALID_PAYLOAD),
    (b"\xff\xfe", reasons.MALFORMED_JSON),
    ('{"ts": 1' + "0" * 400 + ', "value": 1}', reasons.BAD_TIMESTAMP),  # was an OverflowError: a crash loop
    ('{"ts": -1' + "0" * 400 + ', "value": 1}', reasons.BAD_TIMESTAMP),
    ('{"ts": 1e300, "value": 1}', reasons.BAD_TIMESTAMP),
    ('{"ts": "2025-11-24T00:15:00+08:00\\u0000", "value": 1}', reasons.BAD_TIMESTAMP),  # trailing NUL
    ('{"ts": "2025-11-24T00:15:00+08:00\\n", "value": 1}', reasons.BAD_TIMESTAMP),
    ('{"ts": 1763914500, "value": 1, "unit": "m3\\u0000"}', reasons.INVALID_PAYLOAD),
    ('{"ts": 1763914500, "value": 1' + "0" * 400 + '}', reasons.BAD_VALUE),
])
def test_bad_input_gets_a_reason(payload, reason):
    out = decode_reading(payload)
    assert not out.samples
    assert [r.reason for r in out.rejects] == [reason]


def test_a_huge_timestamp_is_named_briefly_in_the_detail():
    (reject,) = decode_reading('{"ts": 1' + "0" * 400 + ', "value": 1}').rejects
    assert reject.reason == reasons.BAD_TIMESTAMP and "out of range" in reject.detail and len(reject.detail) < 200


def test_a_card_with_a_control_character_is_refused():
    out = DECODERS["weighing"].decode(b'{"ts": 1763914500, "card": "c1\\u0000", "weight_kg": 3}', ctx(SCALE))
    assert not out.weighings and [r.reason for r in out.rejects] == [reasons.INVALID_PAYLOAD]


def test_weighing_single_and_batch():
    dec = DECODERS["weighing"]
    one = dec.decode(b'{"ts": "2025-11-24T08:02:11+08:00", "card": "E2801160600002A1", "weight_kg": 12.4}', ctx(SCALE))
    assert one.weighings[0].card == "E2801160600002A1" and one.weighings[0].weight_kg == 12.4
    batch = dec.decode(json.dumps({"weighings": [{"ts": 1763914500, "card": "c1", "weight_kg": 3},
                                                 {"ts": 1763914500, "card": "bad card#", "weight_kg": 3},
                                                 {"ts": 1763914500, "card": "c2", "weight_kg": -1}]}).encode(), ctx(SCALE))
    assert [w.card for w in batch.weighings] == ["c1"] and len(batch.rejects) == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_reject_never_raise(payload):
    for decoder in DECODERS.values():
        out = decoder.decode(payload, ctx(SCALE if decoder.suffix == "weighing" else METER))
        assert out.samples or out.weighings or out.rejects


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(
                        ["ts", "value", "readings", "unit", "card", "weight_kg", "x"]), kids, max_size=5),
                    max_leaves=20))
def test_any_json_shape_decodes_or_rejects(obj):
    payload = json.dumps(obj, allow_nan=True).encode()
    out = decode_reading(payload)
    assert out.samples or out.rejects
