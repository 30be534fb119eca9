"""DL/T 645 read-data responses from electricity meters (topic suffix ``frame/dlt645``), 2007 and 1997.

Frame: [FE x0-4] 68 A0..A5 68 C L DATA CS 16; DATA bytes carry +0x33;
DATA = the data identifier (low byte first) then the value.  The control
code tells the edition: DL/T 645-2007 answers 0x91 (0xB1: more follows,
0xD1: error) with 4-byte identifiers; DL/T 645-1997 answers 0x81 (0xA1:
more follows, 0xC1: error) with 2-byte identifiers.  An error response's
single data byte says why.  A payload may hold several frames
(``frames.decode_frames``).  Supported identifiers, with the names that
both editions share so that everything downstream is the same:

=========== ======== ================================== ==============================
2007 DI     1997 DI  meaning                            format (2007 / 1997)
=========== ======== ================================== ==============================
00000000             combined active energy, total      XXXXXX.XX kWh (4 bytes)
00010000    9010     forward active energy, total       XXXXXX.XX kWh
000101..04  9011..4  forward active energy, tariff 1-4  XXXXXX.XX kWh
0001FF00    901F     forward active block (total, T1..) n x XXXXXX.XX kWh
00020000..  9020..   reverse active energy, the same    XXXXXX.XX kWh
020101..03  B611..3  voltage phase A-C                  XXX.X V / XXX V (2 bytes)
0201FF00    B61F     voltage block                      3 x the above
020201..03  B621..3  current phase A-C                  XXX.XXX A signed (3) / XX.XX A (2)
0202FF00    B62F     current block                      3 x the above
=========== ======== ================================== ==============================

A single-value reply may carry one byte more than its value (meters seen
in the field append a sequence byte: fox-edge-server-protocol's 1997 and
2007 captures); the value is its leading bytes.
"""

from __future__ import annotations

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, MeterValue, Sample
from collector.decoders.frames import FrameError, Layout, bcd, check_address, check_envelope, decode_frames

LAYOUT = Layout(fixed=12, length_at=9, address=slice(1, 7), second_start=7)
RESPONSES = {0x91: 2007, 0xB1: 2007, 0x81: 1997, 0xA1: 1997}  # read-data response (, more follows)
ERRORS = {0xD1: 2007, 0xC1: 1997}
ID_SIZE = {2007: 4, 1997: 2}
ENERGY_KINDS = {0x00: "combined", 0x01: "forward", 0x02: "reverse"}  # 2007 DI2; 1997 has forward and reverse
REGISTERS = ("energy_forward_total", "energy_combined_total")  # the values that are the reading's register
PHASES = ("a", "b", "c")
BLOCK = -1


def _unsupported(di: str, values: bytes) -> FrameError:
    return FrameError(reasons.UNSUPPORTED_DATA, f"identifier {di} with {len(values)} value bytes")


def _single(values: bytes, size: int, di: str) -> bytes:
    """One value of ``size`` bytes, or that and one appended sequence byte."""
    if len(values) not in (size, size + 1):
        raise _unsupported(di, values)
    return values[:size]


def _energy(kind: str, values: bytes, item: int, di: str) -> list[tuple[str, float]]:
    """Energy of ``kind``: a block (total, tariff 1, ...) when ``item`` is BLOCK, else item 0 (total) or a tariff."""
    names = ["total"] + [f"tariff_{k}" for k in range(1, 64)]
    if item == BLOCK:
        if len(values) % 4 or len(values) > 4 * len(names):
            raise _unsupported(di, values)
        return [(f"energy_{kind}_{names[i]}", bcd(values[4 * i:4 * i + 4], 2)) for i in range(len(values) // 4)]
    return [(f"energy_{kind}_{names[item]}", bcd(_single(values, 4, di), 2))]


def _phases(name: str, values: bytes, item: int, size: int, decimals: int, di: str) -> list[tuple[str, float]]:
    """Voltage or current of phase ``item`` (1-3), or of the three phases when ``item`` is BLOCK."""
    signed = name == "current" and size == 3  # 2007 currents carry a sign bit; 1997 currents do not
    if item == BLOCK:
        if len(values) != 3 * size:
            raise _unsupported(di, values)
        return [(f"{name}_{p}", bcd(values[size * i:size * (i + 1)], decimals, signed=signed))
                for i, p in enumerate(PHASES)]
    if not 1 <= item <= 3:
        raise FrameError(reasons.UNSUPPORTED_DATA, f"data identifier {di} is not supported")
    return [(f"{name}_{PHASES[item - 1]}", bcd(_single(values, size, di), decimals, signed=signed))]


def parse_values(di: int, values: bytes) -> list[tuple[str, float]]:
    """(name, value) pairs of a DL/T 645-2007 identifier; energy names are ``energy_{kind}_total``, ``..._tariff_k``."""
    di3, di2, di1, di0 = di >> 24, (di >> 16) & 0xFF, (di >> 8) & 0xFF, di & 0xFF
    text = f"{di:08X}"
    if di3 == 0x00 and di2 in ENERGY_KINDS and di0 == 0x00 and (di1 == 0xFF or di1 <= 0x3F):
        return _energy(ENERGY_KINDS[di2], values, BLOCK if di1 == 0xFF else di1, text)
    if di3 == 0x02 and di2 in (0x01, 0x02) and di0 == 0x00:
        item = BLOCK if di1 == 0xFF else di1
        if di2 == 0x01:
            return _phases("voltage", values, item, 2, 1, text)
        return _phases("current", values, item, 3, 3, text)
    raise FrameError(reasons.UNSUPPORTED_DATA, f"data identifier {text} is not supported")


def parse_values_1997(di: int, values: bytes) -> list[tuple[str, float]]:
    """(name, value) pairs of a DL/T 645-1997 identifier, named as their DL/T 645-2007 counterparts."""
    di1, kind, item = di >> 8, (di >> 4) & 0x0F, di & 0x0F
    text = f"{di:04X}"
    position = BLOCK if item == 0xF else item
    if di1 == 0x90 and kind in (1, 2) and (item <= 4 or item == 0xF):  # current active energy
        return _energy("forward" if kind == 1 else "reverse", values, position, text)
    if di1 == 0xB6 and kind == 1:
        return _phases("voltage", values, position, 2, 0, text)
    if di1 == 0xB6 and kind == 2:
        return _phases("current", values, position, 2, 2, text)
    raise FrameError(reasons.UNSUPPORTED_DATA, f"data identifier {text} (DL/T 645-1997) is not supported")


def parse_frame(frame: bytes, ctx: DecodeContext, out: Decoded) -> None:
    """One response frame: envelope, address, edition by control code, identifier, values."""
    length = check_envelope(frame, LAYOUT)
    check_address(frame[LAYOUT.address], ctx.device.address)
    control = frame[8]
    data = bytes((b - 0x33) & 0xFF for b in frame[10:10 + length])
    if control in ERRORS:
        code = data[0] if data else 0
        raise FrameError(reasons.METER_ERROR, f"meter answered with error status {code:02x} "
                                              f"(control {control:02X}, DL/T 645-{ERRORS[control]})")
    edition = RESPONSES.get(control)
    if edition is None:
        raise FrameError(reasons.UNSUPPORTED_DATA, f"control code {control:02x} is not a read-data response")
    size = ID_SIZE[edition]
    if length < size:
        raise FrameError(reasons.BAD_FRAME, "response without a data identifier")
    di = int.from_bytes(data[:size], "little")
    pairs = parse_values(di, data[size:]) if edition == 2007 else parse_values_1997(di, data[size:])
    if not pairs:  # a block identifier with no value bytes: nothing to store, and it must say so
        raise FrameError(reasons.UNSUPPORTED_DATA, f"identifier {di:0{2 * size}X} without values")
    ts = int(ctx.now)
    for name, value in pairs:
        if name in REGISTERS:
            out.samples.append(Sample(ts, value))
        else:
            out.values.append(MeterValue(ts, name, value))


class Dlt645Decoder:
    suffix = "frame/dlt645"
    kinds = frozenset({"electricity"})

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded:
        return decode_frames(parse_frame, LAYOUT, self.kinds, payload, ctx)
