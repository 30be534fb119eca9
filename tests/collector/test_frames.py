"""Binary frames: vectors from published DL/T 645-2007 and CJ/T 188-2004 examples, and fuzzing."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import reasons
from collector.decoders import DECODERS, DecodeContext
from collector.decoders.frames import checksum, printed_address
from meterwatch.registry import Device

DLT = DECODERS["frame/dlt645"]
CJT = DECODERS["frame/cjt188"]
CHINA = timezone(timedelta(hours=8))
NOW = datetime(2015, 5, 11, 22, 1, 31, tzinfo=CHINA).timestamp() + 60  # a minute after the meter's clock
E_METER = Device("e1", "i1", "electricity", "kWh", 1.0, "000000000161")
W_METER = Device("w1", "i1", "water", "m3", 1.0, "78330011223344")
H_METER = Device("h1", "i1", "heat", "GJ", 1.0, "78330011223344")


def ctx(device):
    return DecodeContext(device, NOW, 3600, 100)


def with_checksum(body_hex: str) -> bytes:
    """A frame from its bytes up to the data field: checksum and end byte appended."""
    body = bytes.fromhex(body_hex)
    return body + bytes([checksum(body), 0x16])


# -- DL/T 645-2007 ---------------------------------------------------------------------------------
# Published example exchange with meter 000000000161 ("DLT645-2007 规约常见报文解析"):
DLT_ENERGY = "68 61 01 00 00 00 00 68 91 08 33 33 34 33 59 33 33 33 8A 16"  # forward active total 0.26 kWh
DLT_VOLTAGE = "68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16"  # phase A voltage 100.1 V


def test_dlt645_published_energy_response():
    out = DLT.decode(DLT_ENERGY.encode(), ctx(E_METER))
    assert out.rejects == [] and [(s.ts, s.value) for s in out.samples] == [(int(NOW), 0.26)]


def test_dlt645_published_voltage_response_with_wake_up_bytes_and_binary_payload():
    out = DLT.decode(bytes.fromhex("FE FE FE FE " + DLT_VOLTAGE), ctx(E_METER))
    assert out.samples == [] and [(v.name, v.value) for v in out.values] == [("voltage_a", 100.1)]


def test_dlt645_tariff_block_and_current_block():
    # 0001FF00: total 1234.56, T1 200.00, T2 1034.56 (all +0x33 on the wire)
    data = bytes([0x00, 0xFF, 0x01, 0x00]) + bytes.fromhex("56341200") + bytes.fromhex("00000200") + bytes.fromhex("56341000")
    body = "68 61 01 00 00 00 00 68 91 " + f"{len(data):02x} " + bytes((b + 0x33) & 0xFF for b in data).hex()
    out = DLT.decode(with_checksum(body), ctx(E_METER))
    assert [s.value for s in out.samples] == [1234.56]
    assert [(v.name, v.value) for v in out.values] == [("energy_forward_tariff_1", 200.0),
                                                      ("energy_forward_tariff_2", 1034.56)]
    # 0202FF00: currents 1.234 A, -0.500 A (sign bit), 10.000 A
    data = bytes([0x00, 0xFF, 0x02, 0x02]) + bytes.fromhex("341200") + bytes.fromhex("000580") + bytes.fromhex("000001")
    body = "68 61 01 00 00 00 00 68 91 " + f"{len(data):02x} " + bytes((b + 0x33) & 0xFF for b in data).hex()
    out = DLT.decode(with_checksum(body), ctx(E_METER))
    assert [(v.name, v.value) for v in out.values] == [("current_a", 1.234), ("current_b", -0.5), ("current_c", 10.0)]


@pytest.mark.parametrize("frame, reason", [
    (DLT_ENERGY.replace("8A 16", "8B 16"), reasons.BAD_CHECKSUM),
    (DLT_ENERGY.replace("91 08", "91 09"), reasons.BAD_FRAME),
    ("FE " * 5 + DLT_ENERGY, reasons.BAD_FRAME),
    ("68 61 01 00 00 00 00 68 D1 01 35 " + f"{checksum(bytes.fromhex('68 61 01 00 00 00 00 68 D1 01 35')):02x} 16",
     reasons.METER_ERROR),
    ("12 34 5", reasons.BAD_FRAME),
])
def test_dlt645_bad_frames(frame, reason):
    out = DLT.decode(frame.encode(), ctx(E_METER))
    assert not out.samples and [r.reason for r in out.rejects] == [reason]


def test_dlt645_block_without_values_is_refused_not_silently_empty():
    """Found by the whole-process fuzz test: a valid block reply with no value bytes gave nothing at all."""
    data = bytes([0x00, 0xFF, 0x01, 0x00])
    body = "68 61 01 00 00 00 00 68 91 " + f"{len(data):02x} " + bytes((b + 0x33) & 0xFF for b in data).hex()
    out = DLT.decode(with_checksum(body), ctx(E_METER))
    assert not out.samples and not out.values and [r.reason for r in out.rejects] == [reasons.UNSUPPORTED_DATA]


def test_dlt645_address_must_be_the_devices():
    other = Device("e2", "i1", "electricity", "kWh", 1.0, "000000000162")
    out = DLT.decode(DLT_ENERGY.encode(), ctx(other))
    assert out.rejects[0].reason == reasons.ADDRESS_MISMATCH and "000000000161" in out.rejects[0].detail


def test_printed_address_is_wire_bytes_reversed():
    assert printed_address(bytes.fromhex("61 01 00 00 00 00")) == "000000000161"
    assert printed_address(bytes.fromhex("12 90 78 56 34 12")) == "123456789012"


# -- CJ/T 188-2004 ---------------------------------------------------------------------------------
# Published example (CJ/T-188 水表协议解析): request checksum 80 is consistent with its bytes; the
# published reply's checksum (08) is not (its bytes sum to 13), so the reply is used both as
# published (refused) and with the checksum recomputed.
CJT_REQUEST = "68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16"
CJT_REPLY_BODY = ("68 10 44 33 22 11 00 33 78 81 16 1F 90 00 00 77 66 55 2C 00 77 66 55 2C "
                  "31 01 22 11 05 15 20 21 84")


def test_cjt188_checksum_algorithm_matches_published_request():
    body = bytes.fromhex(CJT_REQUEST)[:-2]
    assert checksum(body) == 0x80


def test_cjt188_published_reply_decodes_flow_clock_and_status():
    out = CJT.decode(b"FE FE FE FE " + with_checksum(CJT_REPLY_BODY).hex(" ").encode(), ctx(W_METER))
    assert out.rejects == [] and [s.value for s in out.samples] == [556677.0]
    values = {v.name: v.value for v in out.values}
    assert values["settlement_volume"] == 556677.0
    assert values["clock_offset_s"] == -60.0  # meter clock 2015-05-11 22:01:31, received a minute later
    assert (values["valve_state"], values["battery_low"], values["status_word"]) == (1.0, 0.0, 0x8421)


def test_cjt188_published_reply_as_printed_is_refused_for_its_checksum():
    out = CJT.decode((CJT_REPLY_BODY + " 08 16").encode(), ctx(W_METER))
    assert [r.reason for r in out.rejects] == [reasons.BAD_CHECKSUM]


def test_cjt188_litres_are_converted_and_heat_meter_reply():
    litres = CJT_REPLY_BODY.replace("00 77 66 55 2C 00", "00 77 66 55 29 00", 1)
    assert [s.value for s in CJT.decode(with_checksum(litres), ctx(W_METER)).samples] == [556.677]
    data = ("1F 90 01 " "78 56 34 12 05 " "00 00 01 00 11 " "50 12 00 00 17 " "25 01 00 00 35 " "00 77 66 55 2C "
            "50 62 00 " "25 40 00 " "00 12 00 " "31 01 22 11 05 15 20 " "04 00")
    body = "68 20 44 33 22 11 00 33 78 81 2E " + data
    out = CJT.decode(with_checksum(body), ctx(H_METER))
    assert out.rejects == [] and [s.value for s in out.samples] == [pytest.approx(100.0)]  # 100.00 GJ
    values = {v.name: v.value for v in out.values}
    assert values["settlement_heat_kwh"] == 123456.78 and values["supply_temp_c"] == 62.5
    assert values["return_temp_c"] == 40.25 and values["flow_m3h"] == 1.25 and values["battery_low"] == 1.0


def test_cjt188_wrong_meter_type_for_the_device_is_refused():
    out = CJT.decode(with_checksum(CJT_REPLY_BODY), ctx(H_METER))
    assert out.rejects[0].reason == reasons.KIND_MISMATCH


# -- never an exception ----------------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_give_a_reading_or_a_reason(payload):
    for decoder, device in ((DLT, E_METER), (CJT, W_METER), (CJT, H_METER)):
        out = decoder.decode(payload, ctx(device))
        assert out.samples or out.rejects


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 34), st.integers(0, 255))
def test_any_single_byte_corruption_of_a_valid_frame_is_caught_or_harmless(index, value):
    frame = bytearray(with_checksum(CJT_REPLY_BODY))
    frame[index] = value
    out = CJT.decode(bytes(frame), ctx(W_METER))
    assert out.samples or out.rejects
    if out.samples:  # only a change that keeps the frame valid can decode: then it must be the same frame
        assert bytes(frame) == with_checksum(CJT_REPLY_BODY)
