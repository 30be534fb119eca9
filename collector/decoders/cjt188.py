"""CJ/T 188-2004 read-data responses from water and heat meters (topic suffix ``frame/cjt188``).

Frame: [FE x0-4] 68 T A0..A6 C L DATA CS 16 (no +0x33 offset).  T is the
meter type (0x10-0x19 water, 0x20-0x29 heat), C = 0x81 for a normal read
response, 0xC1 for an abnormal one.  DATA starts with DI 901F and a serial
number; the standard sends the DI low byte first (1F 90), and meters in the
field also send it high byte first (90 1F: the captures in
fox-edge-server-protocol's CJ/T 188 Demo.java), so both are read.  A
payload may hold several frames (``frames.decode_frames``).  Replies to DI
901F:

- water (L = 0x16): current cumulative flow (4 BCD bytes, 2 decimals) +
  unit, settlement-day flow + unit, real-time clock (7 bytes, ss mm hh DD
  MM YY YY), status ST (2 bytes).
- heat (L = 0x2E): settlement-day heat + unit, current heat + unit, heat
  power + unit, flow rate + unit, cumulative flow + unit, supply and return
  temperature (3 bytes, 2 decimals, deg C), working hours (3 bytes),
  real-time clock, status ST.

ST byte 0: bits 0-1 valve (00 open, 01 closed, 11 fault), bit 2 battery low.
The meter's clock is not the reading time (the collector stamps frames on
receipt); its offset from receipt is kept as ``clock_offset_s``.  A clock of
all zeros is a meter whose clock was never set (common in the field: the
captures in fox-edge-server-protocol and EnergyConsumptionDataAcquisition):
its reading is kept, without ``clock_offset_s``.
"""

from __future__ import annotations

from datetime import datetime

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, MeterValue, Sample
from collector.decoders.frames import FrameError, Layout, bcd, check_address, check_envelope, decode_frames
from meterwatch.localtime import CHINA

LAYOUT = Layout(fixed=13, length_at=10, address=slice(2, 9))
READ_DATA = (b"\x1f\x90", b"\x90\x1f")  # DI 901F as the standard sends it, and high byte first

# Unit code -> (quantity, factor to the base unit: m3, kWh or kW or m3/h).
UNITS: dict[int, tuple[str, float]] = {
    0x02: ("energy", 0.001), 0x05: ("energy", 1.0), 0x08: ("energy", 1000.0), 0x0A: ("energy", 100_000.0),
    0x01: ("energy", 1 / 3_600_000), 0x0B: ("energy", 1 / 3600), 0x0E: ("energy", 1 / 3.6),
    0x11: ("energy", 1000 / 3.6), 0x13: ("energy", 100_000 / 3.6),
    0x14: ("power", 0.001), 0x17: ("power", 1.0), 0x1A: ("power", 1000.0),
    0x29: ("volume", 0.001), 0x2C: ("volume", 1.0),
    0x32: ("flow", 0.001), 0x35: ("flow", 1.0),
}
KWH_PER_UNIT = {"kWh": 1.0, "GJ": 1000 / 3.6}  # registry units of heat meters


def _quantity(raw: bytes, unit_code: int, want: str) -> float:
    if unit_code not in UNITS or UNITS[unit_code][0] != want:
        raise FrameError(reasons.UNIT_MISMATCH, f"unit code {unit_code:02x} is not a {want} unit")
    return bcd(raw, 2) * UNITS[unit_code][1]


def _clock(raw: bytes) -> datetime | None:
    """The meter's clock; None when it was never set (all zeros)."""
    if not any(raw):
        return None
    ss, mm, hh, dd, mo = (int(bcd(raw[i:i + 1])) for i in range(5))
    year = int(bcd(raw[5:7]))
    try:
        return datetime(year, mo, dd, hh, mm, ss, tzinfo=CHINA)
    except ValueError:
        raise FrameError(reasons.BAD_FRAME, f"meter clock {raw.hex()} is not a date") from None


def _status(raw: bytes, ts: int) -> list[MeterValue]:
    return [MeterValue(ts, "valve_state", float(raw[0] & 0x03)),
            MeterValue(ts, "battery_low", float((raw[0] >> 2) & 1)),
            MeterValue(ts, "status_word", float(int.from_bytes(raw, "little")))]


def parse_frame(frame: bytes, ctx: DecodeContext, out: Decoded) -> None:
    """One 901F reply: envelope, address, meter type against the device kind, register and quantities."""
    length = check_envelope(frame, LAYOUT)
    meter_type, control, data = frame[1], frame[9], frame[11:11 + length]
    check_address(frame[LAYOUT.address], ctx.device.address)
    kind = "water" if 0x10 <= meter_type <= 0x19 else "heat" if 0x20 <= meter_type <= 0x29 else None
    if kind != ctx.device.kind:
        raise FrameError(reasons.KIND_MISMATCH, f"meter type {meter_type:02x} on a {ctx.device.kind} device")
    if control == 0xC1:
        raise FrameError(reasons.METER_ERROR, "meter answered with an abnormal response (C1)")
    if control != 0x81:
        raise FrameError(reasons.UNSUPPORTED_DATA, f"control code {control:02x} is not a read-data response")
    if data[:2] not in READ_DATA:
        raise FrameError(reasons.UNSUPPORTED_DATA, f"data identifier {data[:2].hex().upper()} (wire order) "
                                                   "is not supported (901F is)")
    ts = int(ctx.now)
    if kind == "water":
        if length != 0x16:
            raise FrameError(reasons.BAD_FRAME, f"water 901F reply has {length} data bytes, expected 22")
        register = _quantity(data[3:7], data[7], "volume")
        out.values.append(MeterValue(ts, "settlement_volume", _quantity(data[8:12], data[12], "volume")))
        clock, status = data[13:20], data[20:22]
    else:
        if length != 0x2E:
            raise FrameError(reasons.BAD_FRAME, f"heat 901F reply has {length} data bytes, expected 46")
        register = _quantity(data[8:12], data[12], "energy") / KWH_PER_UNIT[ctx.device.unit]
        out.values += [
            MeterValue(ts, "settlement_heat_kwh", _quantity(data[3:7], data[7], "energy")),
            MeterValue(ts, "heat_power_kw", _quantity(data[13:17], data[17], "power")),
            MeterValue(ts, "flow_m3h", _quantity(data[18:22], data[22], "flow")),
            MeterValue(ts, "volume_m3", _quantity(data[23:27], data[27], "volume")),
            MeterValue(ts, "supply_temp_c", bcd(data[28:31], 2)),
            MeterValue(ts, "return_temp_c", bcd(data[31:34], 2)),
            MeterValue(ts, "working_hours", bcd(data[34:37])),
        ]
        clock, status = data[37:44], data[44:46]
    out.samples.append(Sample(ts, register))
    meter_clock = _clock(clock)
    if meter_clock is not None:
        out.values.append(MeterValue(ts, "clock_offset_s", meter_clock.timestamp() - ctx.now))
    out.values += _status(status, ts)


class Cjt188Decoder:
    suffix = "frame/cjt188"
    kinds = frozenset({"water", "heat"})

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded:
        return decode_frames(parse_frame, LAYOUT, self.kinds, payload, ctx)
