"""Meter frames as vendors and gateways really send them: DL/T 645-1997 beside 2007, several frames in one
payload, hex text in every case and spacing, CJ/T 188 with the identifier high byte first and unset clocks.

Every real vector names its source (repository + path); its address is the test device's address, and
every expected value is worked out by hand in the comment above it.  A frame built here (marked
"constructed") follows the format of the identifier it carries; the 1997 -> 2007 identifier mapping
it relies on is the one in coyool/XXOO_000
``GPRS_V1.0/伊朗GPRS_APP_ybz_2014_04_09/platform/plc/dd645_2007.c`` (IdConvertion: 9010 -> 00010000,
901F -> 0001FF00, B611 -> 02010100, B61F -> 0201FF00, B621 -> 02020100, B62F -> 0202FF00).
"""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import reasons
from collector.decoders import DECODERS, DecodeContext
from collector.decoders.frames import checksum
from meterwatch.registry import Device

DLT = DECODERS["frame/dlt645"]
CJT = DECODERS["frame/cjt188"]
CHINA = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=CHINA).timestamp()


def ctx(device: Device) -> DecodeContext:
    return DecodeContext(device, NOW, 3600, 100)


def meter(address: str, kind: str = "electricity", unit: str = "kWh") -> Device:
    return Device("d1", "i1", kind, unit, 1.0, address)


def values(out) -> dict[str, float]:
    return {v.name: v.value for v in out.values}


def dlt_frame(address: str, control: int, data: bytes) -> str:
    """A constructed DL/T 645 frame (hex text): ``data`` before its +0x33, checksum computed."""
    wire = bytes.fromhex(address)[::-1]
    body = b"\x68" + wire + b"\x68" + bytes([control, len(data)]) + bytes((b + 0x33) & 0xFF for b in data)
    return (body + bytes([checksum(body), 0x16])).hex(" ").upper()


# -- DL/T 645-1997 ---------------------------------------------------------------------------------
# hupengwu/fox-edge-server-protocol, fox-edge-server-protocol/fox-edge-server-protocol-dlt645-1997/src/test/java/
# cn.foxtech.device.protocol.v1.test/TestUtils97.java: a meter at 351253111111 answering 9010 (43 C3 = 10 90
# after -33).  Value BC 76 46 33 - 33 = 89 43 13 00, BCD low byte first 00134389 -> 1343.89 kWh; then one more
# byte (34 - 33 = 01) that the meter appends to its reply.
FOX_1997_9010 = "FE FE FE FE 68 11 11 11 53 12 35 68 81 07 43 C3 BC 76 46 33 34 0A 16"
# Same file: the meter at 271842003997 answering C032 (65 F3 - 33 = 32 C0), its meter number: not a reading.
FOX_1997_C032 = "FE FE FE FE 68 97 39 00 42 18 27 68 81 09 65 F3 CA 6C 33 75 4B 5A 36 BC 16"
# wuhuangrui/C82_DL689 (Clou Electronics concentrator), ClouSoft/app/Meter/SearchMeter.cpp: "some 97 meters
# still answer with the wildcard address" -- a 9010 reply (94 A5 35 33 -> 61 72 02 00 = 272.61 kWh) from
# AA AA AA AA AA AA.  It names no meter, so it cannot be bound to a device.
CLOU_1997_WILDCARD = "68 AA AA AA AA AA AA 68 81 06 43 C3 94 A5 35 33 FA 16"
E97 = meter("351253111111")


def test_fox_edge_1997_forward_energy_is_the_register_and_the_appended_byte_is_ignored():
    out = DLT.decode(FOX_1997_9010.encode(), ctx(E97))
    assert out.rejects == [] and [(s.ts, s.value) for s in out.samples] == [(int(NOW), 1343.89)]


def test_fox_edge_1997_frame_as_binary_lower_case_colon_and_newline_hex():
    frame = bytes.fromhex(FOX_1997_9010)
    for payload in (frame, frame.hex().encode(), frame.hex(":").encode(), frame.hex("\n").encode(),
                    b"\r\n\t" + frame.hex(" ").encode() + b"\r\n"):
        out = DLT.decode(payload, ctx(E97))
        assert out.rejects == [] and [s.value for s in out.samples] == [1343.89], payload


def test_fox_edge_1997_meter_number_is_unsupported_data_naming_the_identifier():
    out = DLT.decode(FOX_1997_C032.encode(), ctx(meter("271842003997")))
    assert not out.samples and [r.reason for r in out.rejects] == [reasons.UNSUPPORTED_DATA]
    assert "C032" in out.rejects[0].detail and "1997" in out.rejects[0].detail


def test_clou_wildcard_address_reply_is_refused_as_naming_no_meter():
    out = DLT.decode(CLOU_1997_WILDCARD.encode(), ctx(E97))
    assert not out.samples and [r.reason for r in out.rejects] == [reasons.ADDRESS_MISMATCH]
    assert "wildcard" in out.rejects[0].detail and "AAAAAAAAAAAA" in out.rejects[0].detail


# Constructed 1997 replies of meter 351253111111 (formats of DL/T 645-1997: voltage XXX V in 2 bytes,
# current XX.XX A in 2 bytes, energy XXXXXX.XX kWh in 4 bytes, blocks as their items in order).
V_BLOCK = dlt_frame("351253111111", 0x81, bytes.fromhex("1F B6 20 02 21 02 19 02"))  # 220, 221, 219 V
I_BLOCK = dlt_frame("351253111111", 0x81, bytes.fromhex("2F B6 50 01 75 00 00 10"))  # 1.50, 0.75, 10.00 A
I_B = dlt_frame("351253111111", 0x81, bytes.fromhex("22 B6 05 00"))  # B622 phase B: 0.05 A
# 901F: total 1234.56, T1 200.00, T2 1034.56, T3 0, T4 0 (kWh)
E_BLOCK = dlt_frame("351253111111", 0x81, bytes.fromhex("1F 90 56 34 12 00 00 00 02 00 56 34 10 00"
                                                        "00 00 00 00 00 00 00 00"))
REVERSE = dlt_frame("351253111111", 0xA1, bytes.fromhex("20 90 25 00 00 00"))  # 9020, more follows: 0.25 kWh


def test_1997_blocks_and_single_items_get_the_2007_names():
    assert values(DLT.decode(V_BLOCK.encode(), ctx(E97))) == {"voltage_a": 220.0, "voltage_b": 221.0,
                                                              "voltage_c": 219.0}
    assert values(DLT.decode(I_BLOCK.encode(), ctx(E97))) == {"current_a": 1.5, "current_b": 0.75,
                                                              "current_c": 10.0}
    assert values(DLT.decode(I_B.encode(), ctx(E97))) == {"current_b": 0.05}
    out = DLT.decode(E_BLOCK.encode(), ctx(E97))
    assert [s.value for s in out.samples] == [1234.56]
    assert values(out) == {"energy_forward_tariff_1": 200.0, "energy_forward_tariff_2": 1034.56,
                           "energy_forward_tariff_3": 0.0, "energy_forward_tariff_4": 0.0}
    out = DLT.decode(REVERSE.encode(), ctx(E97))  # A1: a response with more to follow is still a response
    assert out.samples == [] and values(out) == {"energy_reverse_total": 0.25}


def test_1997_error_response_is_a_meter_error():
    out = DLT.decode(dlt_frame("351253111111", 0xC1, b"\x02").encode(), ctx(E97))  # C1, status 02
    assert [r.reason for r in out.rejects] == [reasons.METER_ERROR] and "02" in out.rejects[0].detail


# -- DL/T 645-2007 from the field ------------------------------------------------------------------
# hupengwu/fox-edge-server-protocol, fox-edge-server-protocol/fox-edge-server-protocol-dlt645-1997/src/test/java/
# cn.foxtech.device.protocol.v1.test/TestUtils07.java: meter 000000000001 answering 00010000 with 9 data bytes:
# DI, 6A 59 33 33 - 33 = 37 26 00 00 -> 26.37 kWh, and one appended byte (34 - 33 = 01); then 45 33 33 33 -> 0.12.
FOX_2007_A = "FE FE FE FE 68 01 00 00 00 00 00 68 91 09 33 33 34 33 6A 59 33 33 34 95 16"
FOX_2007_B = "FE FE FE FE 68 01 00 00 00 00 00 68 91 09 33 33 34 33 45 33 33 33 34 4A 16"


def test_fox_edge_2007_reply_with_an_appended_byte_is_read():
    assert [s.value for s in DLT.decode(FOX_2007_A.encode(), ctx(meter("000000000001"))).samples] == [26.37]
    assert [s.value for s in DLT.decode(FOX_2007_B.encode(), ctx(meter("000000000001"))).samples] == [0.12]


def test_more_than_one_appended_byte_is_not_guessed_at():
    out = DLT.decode(dlt_frame("351253111111", 0x81, bytes.fromhex("10 90 00 01 00 00 01 02")).encode(), ctx(E97))
    assert [r.reason for r in out.rejects] == [reasons.UNSUPPORTED_DATA] and "9010" in out.rejects[0].detail


# -- several frames in one payload -----------------------------------------------------------------
def test_gateway_payload_of_1997_frames_each_with_its_preamble_and_separated_by_line_breaks():
    payload = "\n".join([FOX_1997_9010, "FE FE " + V_BLOCK, I_BLOCK]).encode()
    out = DLT.decode(payload, ctx(E97))
    assert out.rejects == [] and [s.value for s in out.samples] == [1343.89]
    assert values(out) == {"voltage_a": 220.0, "voltage_b": 221.0, "voltage_c": 219.0,
                           "current_a": 1.5, "current_b": 0.75, "current_c": 10.0}


def test_frames_of_another_meter_and_the_wildcard_are_rejected_alone_the_others_kept():
    payload = " ".join([FOX_1997_9010, FOX_2007_A, CLOU_1997_WILDCARD, V_BLOCK]).encode()
    out = DLT.decode(payload, ctx(E97))
    assert [s.value for s in out.samples] == [1343.89] and values(out)["voltage_b"] == 221.0
    assert [r.reason for r in out.rejects] == [reasons.ADDRESS_MISMATCH, reasons.ADDRESS_MISMATCH]
    other, wildcard = out.rejects
    assert other.detail.startswith("part 2 of 4 (byte 23): ") and "000000000001" in other.detail
    assert other.payload == FOX_2007_A.encode()  # the refused frame itself, as the hex it came in
    assert "wildcard" in wildcard.detail and wildcard.payload == CLOU_1997_WILDCARD.encode()


def test_garbage_between_frames_and_after_the_last_is_rejected_alone():
    first, second = bytes.fromhex(FOX_1997_9010), bytes.fromhex(V_BLOCK)
    out = DLT.decode(first + b"\x12\x34\x56" + second + b"\x52\x4f", ctx(E97))
    assert [s.value for s in out.samples] == [1343.89] and values(out)["voltage_a"] == 220.0
    assert [(r.reason, r.payload) for r in out.rejects] == [(reasons.BAD_FRAME, b"\x12\x34\x56"),
                                                            (reasons.BAD_FRAME, b"\x52\x4f")]
    assert "3 bytes that are not a frame" in out.rejects[0].detail


def test_truncated_frame_before_a_good_one_is_rejected_alone():
    truncated = FOX_1997_9010[:-12]  # the last four bytes (33 34 0A 16) lost
    out = DLT.decode(f"{truncated} {V_BLOCK}".encode(), ctx(E97))
    assert values(out)["voltage_c"] == 219.0 and out.samples == []
    assert [r.reason for r in out.rejects] == [reasons.BAD_FRAME]
    assert "truncated" in out.rejects[0].detail and out.rejects[0].payload == truncated.encode()


def test_a_frame_with_a_bad_checksum_among_good_ones_is_rejected_alone():
    bad = FOX_1997_9010.replace("0A 16", "0B 16")
    out = DLT.decode(f"{bad} {V_BLOCK}".encode(), ctx(E97))
    assert [r.reason for r in out.rejects] == [reasons.BAD_CHECKSUM] and values(out)["voltage_a"] == 220.0


@pytest.mark.parametrize("payload, reason", [
    (FOX_1997_9010[:-12], reasons.BAD_FRAME),  # truncated, alone
    ("68 11 11 11 53 12 3", reasons.BAD_FRAME),  # odd hex
    # a digit lost and one gained: an even count in all, but every byte between them would be shifted
    ("FE FE 68 1 11 11 53 12 35 68 81 07 43 C3 BC 76 46 33 34 0A 166", reasons.BAD_FRAME),
    ("FE FE FE FE FE " + FOX_1997_9010, reasons.BAD_FRAME),  # nine wake-up bytes
    ("", reasons.BAD_FRAME),
    ("FE FE FE FE", reasons.BAD_FRAME),  # wake-up bytes and no frame
])
def test_bad_payloads_alone_are_a_whole_message_reject(payload, reason):
    out = DLT.decode(payload.encode(), ctx(E97))
    assert not out.samples and [(r.reason, r.payload) for r in out.rejects] == [(reason, None)]


def test_trailing_wake_up_padding_is_not_garbage():
    out = DLT.decode((FOX_1997_9010 + " FE FE").encode(), ctx(E97))
    assert out.rejects == [] and [s.value for s in out.samples] == [1343.89]


def test_too_many_frames_in_one_payload_is_oversized():
    out = DLT.decode(" ".join([V_BLOCK] * 101).encode(), ctx(E97))
    assert not out.values and [r.reason for r in out.rejects] == [reasons.OVERSIZED]


# -- CJ/T 188 from the field -----------------------------------------------------------------------
# hupengwu/fox-edge-server-protocol, fox-edge-server-protocol/fox-edge-server-protocol-cjt188/src/main/java/cn/
# foxtech/device/protocol/v1/cjt188/Demo.java.  Meter 00000805000001 (wire 01 00 00 05 08 00 00), DI sent high
# byte first (90 1F), current flow 00 23 01 00 -> 00012300 -> 123.00 m3, settlement 0, clock all zeros (never
# set), status 00 00.
FOX_CJT_A = ("FE FE FE 68 10 01 00 00 05 08 00 00 81 16 90 1F 00 00 23 01 00 2C 00 00 00 00 2C "
             "00 00 00 00 00 00 00 00 00 48 16")
# Same file: meter 00002020120218, flow and settlement 00 02 00 00 -> 2.00 m3, clock zeros, status 00 FF.
FOX_CJT_B = ("FE FE FE 68 10 18 02 12 20 20 00 00 81 16 90 1F 00 00 02 00 00 2C 00 02 00 00 2C "
             "00 00 00 00 00 00 00 00 FF 85 16")
# Same file: the widely copied example reply with its checksum corrected (13): meter 78330011223344, 1F 90 order,
# flow 00 77 66 55 -> 55667700 -> 556677.00 m3, clock 31 01 22 11 05 15 20 -> 2015-05-11 22:01:31, ST 21 84:
# first byte 21, valve bits 01 (closed).
FOX_CJT_PUBLISHED = ("68 10 44 33 22 11 00 33 78 81 16 1F 90 00 00 77 66 55 2C 00 77 66 55 2C "
                     "31 01 22 11 05 15 20 21 84 13 16")
# vkyzmsj/EnergyConsumptionDataAcquisition, src/gui/water_meter_query_thread.cpp: meter 78330007061326 (wire
# 26 13 06 07 00 33 78), 1F 90, SER 04, flow 00 68 00 00 -> 00006800 -> 68.00 m3, clock zeros.
ECDA_CJT = ("FE FE 68 10 26 13 06 07 00 33 78 81 16 1F 90 04 00 68 00 00 2C 00 00 00 00 2C "
            "00 00 00 00 00 00 00 00 00 73 16")


def water(address: str) -> Device:
    return meter(address, "water", "m3")


def test_fox_edge_cjt188_high_byte_first_identifier_and_unset_clock():
    out = CJT.decode(FOX_CJT_A.encode(), ctx(water("00000805000001")))
    assert out.rejects == [] and [s.value for s in out.samples] == [123.0]
    assert values(out) == {"settlement_volume": 0.0, "valve_state": 0.0, "battery_low": 0.0, "status_word": 0.0}
    out = CJT.decode(FOX_CJT_B.encode(), ctx(water("00002020120218")))
    assert out.rejects == [] and [s.value for s in out.samples] == [2.0]
    assert values(out)["settlement_volume"] == 2.0 and values(out)["status_word"] == 0xFF00
    assert "clock_offset_s" not in values(out)


def test_fox_edge_published_reply_with_its_checksum_corrected():
    out = CJT.decode(FOX_CJT_PUBLISHED.encode(), ctx(water("78330011223344")))
    assert out.rejects == [] and [s.value for s in out.samples] == [556677.0]
    meter_clock = datetime(2015, 5, 11, 22, 1, 31, tzinfo=CHINA).timestamp()
    assert values(out)["clock_offset_s"] == meter_clock - NOW and values(out)["valve_state"] == 1.0


def test_energy_consumption_data_acquisition_capture_with_two_wake_up_bytes():
    out = CJT.decode(ECDA_CJT.encode(), ctx(water("78330007061326")))
    assert out.rejects == [] and [s.value for s in out.samples] == [68.0]


def test_cjt188_gateway_payload_other_meter_and_trailing_garbage_rejected_alone():
    payload = f"{FOX_CJT_A}\r\n{FOX_CJT_B}\r\n52 4F".encode()  # two meters' replies, then two stray bytes
    out = CJT.decode(payload, ctx(water("00000805000001")))
    assert [s.value for s in out.samples] == [123.0]
    assert [r.reason for r in out.rejects] == [reasons.ADDRESS_MISMATCH, reasons.BAD_FRAME]
    assert "00002020120218" in out.rejects[0].detail and out.rejects[0].payload == FOX_CJT_B.encode()
    assert out.rejects[1].payload == b"52 4F" and "part 3 of 3" in out.rejects[1].detail


def test_cjt188_other_identifier_and_a_heat_frame_on_a_water_device():
    other_di = FOX_CJT_A.replace("90 1F", "90 2F").replace("48 16", "58 16")  # checksum + 0x10
    out = CJT.decode(other_di.encode(), ctx(water("00000805000001")))
    assert [r.reason for r in out.rejects] == [reasons.UNSUPPORTED_DATA] and "902F" in out.rejects[0].detail
    heat = FOX_CJT_A.replace("68 10 01", "68 20 01").replace("48 16", "58 16")  # type 20 (heat), checksum + 0x10
    out = CJT.decode(heat.encode(), ctx(water("00000805000001")))
    assert [r.reason for r in out.rejects] == [reasons.KIND_MISMATCH]


# -- any arrangement ------------------------------------------------------------------------------
GOOD_1997 = {FOX_1997_9010: [("register", 1343.89)], I_B: [("current_b", 0.05)],
             V_BLOCK: [("voltage_a", 220.0), ("voltage_b", 221.0), ("voltage_c", 219.0)],
             REVERSE: [("energy_reverse_total", 0.25)]}
# Garbage without a 68 (that could begin a frame) and not ending in FE (which would be the next frame's wake-up).
garbage = st.binary(min_size=1, max_size=12).filter(lambda b: 0x68 not in b and b[-1] != 0xFE)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(GOOD_1997)), st.integers(0, 4), st.none() | garbage),
                min_size=1, max_size=8), st.booleans())
def test_any_sequence_of_frames_and_garbage_keeps_every_frame_and_rejects_each_stretch_alone(parts, as_hex):
    data = b"".join(b"\xfe" * fe + bytes.fromhex(frame).lstrip(b"\xfe") + (junk or b"") for frame, fe, junk in parts)
    out = DLT.decode(data.hex(" ").encode() if as_hex else data, ctx(E97))
    kept = [("register", s.value) for s in out.samples] + [(v.name, v.value) for v in out.values]
    assert sorted(kept) == sorted(pair for frame, _, _ in parts for pair in GOOD_1997[frame])
    stretches = [junk for _, _, junk in parts if junk]
    if len(parts) + len(stretches) > 1:
        assert [r.payload for r in out.rejects] == [j.hex(" ").upper().encode() if as_hex else j for j in stretches]
    assert all(r.reason == reasons.BAD_FRAME for r in out.rejects)


# -- a gateway forwarding several meters' replies: each frame bound to its device by address -------------
E2 = Device("e2", "i1", "electricity", "kWh", 1.0, "000000000001")
W1 = Device("w1", "i1", "water", "m3", 1.0, "00000805000001")
OTHER_INSTITUTION = dlt_frame("000000000009", 0x91, bytes.fromhex("00 00 01 00 00 50 00 00"))  # 00010000: 50.00 kWh


def test_frames_for_peers_of_the_institution_are_decoded_as_theirs():
    # (a water meter is not at a 12-digit address in a real registry; here it only has to be another kind)
    peers = {"351253111111": E97, "000000000001": E2, "000000000005": W1, "000000000007": None}
    shared = dlt_frame("000000000007", 0x91, bytes.fromhex("00 00 01 00 00 01 00 00"))
    water_address = dlt_frame("000000000005", 0x91, bytes.fromhex("00 00 01 00 00 01 00 00"))
    payload = " ".join([FOX_1997_9010, FOX_2007_A, shared, water_address, OTHER_INSTITUTION, V_BLOCK]).encode()
    out = DLT.decode(payload, DecodeContext(E97, NOW, 3600, 100, peers))
    assert [s.value for s in out.samples] == [1343.89] and values(out)["voltage_a"] == 220.0
    assert list(out.forwarded) == [E2] and [s.value for s in out.forwarded[E2].samples] == [26.37]
    assert [r.reason for r in out.rejects] == [reasons.ADDRESS_MISMATCH] * 3
    assert "several devices of institution i1 share" in out.rejects[0].detail  # an address two devices have
    assert "000000000005" in out.rejects[1].detail  # a water meter's address on a DL/T 645 frame
    assert "000000000009" in out.rejects[2].detail  # no device of the institution has it


def test_ingest_stores_each_forwarded_frame_under_its_own_device_and_institution_tags(tmp_path):
    from collector.ingest import Ingestor
    from collector.message import Message
    from meterwatch.registry import load_registry
    from meterwatch.settings import CollectorSettings
    from simulators.province import Province, write_registry
    from tests.helpers import tiny_province

    tiny = tiny_province()
    devices = [Device("a-e1", "inst-a", "electricity", "kWh", 40.0, "351253111111"),
               Device("a-e2", "inst-a", "electricity", "kWh", 1.0, "000000000001"),
               Device("b-e1", "inst-b", "electricity", "kWh", 1.0, "000000000009"),
               *[d for d in tiny.devices if d.kind != "electricity"]]
    write_registry(Province(tiny.institutions, devices, tiny.cards), tmp_path)
    registry, problems = load_registry(tmp_path)
    assert problems == []
    ingestor = Ingestor(registry, CollectorSettings(), clock=lambda: NOW)
    payload = "\n".join([FOX_1997_9010, FOX_2007_A, OTHER_INSTITUTION, V_BLOCK]).encode()
    (m,) = ingestor.process([Message("meterwatch/up/inst-a/a-e1/frame/dlt645", payload)])
    readings = {(r.device, r.institution, r.kind): r.register for r in m.out.readings}
    assert readings == {("a-e1", "inst-a", "electricity"): pytest.approx(1343.89 * 40),
                        ("a-e2", "inst-a", "electricity"): 26.37}
    assert {(v.device, v.quantity) for v in m.out.values} == {("a-e1", f"voltage_{p}") for p in "abc"}
    (reject,) = m.out.rejects  # the frame of inst-b's meter: not forwarded across institutions
    assert reject.reason == reasons.ADDRESS_MISMATCH and "000000000009" in reject.detail
    assert reject.payload == OTHER_INSTITUTION.encode() and reject.device == "a-e1"
    assert m.verdict == "stored"


def test_cjt188_frame_for_a_peer_water_meter_is_forwarded_to_it():
    peer = water("00002020120218")
    out = CJT.decode(f"{FOX_CJT_A} {FOX_CJT_B}".encode(),
                     DecodeContext(water("00000805000001"), NOW, 3600, 100, {"00002020120218": peer}))
    assert out.rejects == [] and [s.value for s in out.samples] == [123.0]
    assert [s.value for s in out.forwarded[peer].samples] == [2.0] and values(out.forwarded[peer])["status_word"] == 0xFF00


def test_registry_index_by_address_is_per_institution_and_marks_a_shared_address():
    from meterwatch.registry import Registry

    x1, x2 = (Device(d, "i1", "electricity", "kWh", 1.0, "000000000007") for d in ("x1", "x2"))
    x3, w = Device("x3", "i2", "electricity", "kWh", 1.0, "000000000007"), water("0000000000000a")
    scale = Device("s1", "i1", "scale", "kg", 1.0, "")
    registry = Registry({}, {d.id: d for d in (x1, x2, x3, w, scale)}, {})
    assert registry.devices_by_address("i1") == {"000000000007": None, "0000000000000A": w}
    assert registry.devices_by_address("i2") == {"000000000007": x3} and registry.devices_by_address("i9") == {}
