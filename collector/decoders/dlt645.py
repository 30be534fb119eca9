"""DL/T 645-2007 read-data responses from electricity meters (topic suffix ``frame/dlt645``).

Frame: [FE x0-4] 68 A0..A5 68 C L DATA CS 16; DATA bytes carry +0x33;
DATA = DI0..DI3 (data identifier, low byte first) then the value.
C = 0x91 (response) or 0xB1 (response, more follows); 0xD1 is an error
response whose single data byte says why.  Supported identifiers:

=========== ================================== =========================
DI          meaning                            format
=========== ================================== =========================
00000000    combined active energy, total      XXXXXX.XX kWh (4 bytes)
00010000    forward active energy, total       XXXXXX.XX kWh
000101..04  forward active energy, tariff 1-4  XXXXXX.XX kWh
0001FF00    forward active block (total, T1..) n x XXXXXX.XX kWh
020101..03  voltage phase A-C                  XXX.X V (2 bytes)
0201FF00    voltage block                      3 x XXX.X V
020201..03  current phase A-C                  XXX.XXX A (3 bytes, signed)
0202FF00    current block                      3 x XXX.XXX A
=========== ================================== =========================
"""

from __future__ import annotations

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, MeterValue, Sample
from collector.decoders.frames import (
    FrameError,
    bcd,
    check_address,
    check_envelope,
    frame_bytes,
    guarded,
    strip_preamble,
)

PHASES = ("a", "b", "c")


def _energy(values: bytes, first: int) -> list[tuple[str, float]]:
    names = ["total"] + [f"tariff_{k}" for k in range(1, 64)]
    return [(names[first + i], bcd(values[4 * i:4 * i + 4], 2)) for i in range(len(values) // 4)]


def parse_values(di: int, values: bytes) -> list[tuple[str, float]]:
    """(name, value) pairs of one data identifier; energy names are ``energy_total``, ``energy_tariff_k``."""
    di3, di2, di1, di0 = di >> 24, (di >> 16) & 0xFF, (di >> 8) & 0xFF, di & 0xFF
    if di3 == 0x00 and di2 in (0x00, 0x01) and di0 == 0x00:
        if di1 == 0xFF:
            pairs = _energy(values, 0)
        elif di1 <= 0x3F and len(values) == 4:
            pairs = _energy(values, di1)
        else:
            raise FrameError(reasons.UNSUPPORTED_DATA, f"energy identifier {di:08X} with {len(values)} bytes")
        kind = "combined" if di2 == 0x00 else "forward"
        return [(f"energy_{kind}_{n}", v) for n, v in pairs]
    if di3 == 0x02 and di2 in (0x01, 0x02) and di0 == 0x00:
        size, decimals, name = (2, 1, "voltage") if di2 == 0x01 else (3, 3, "current")
        phases = PHASES if di1 == 0xFF else PHASES[di1 - 1:di1] if 1 <= di1 <= 3 else ()
        if not phases or len(values) != size * len(phases):
            raise FrameError(reasons.UNSUPPORTED_DATA, f"identifier {di:08X} with {len(values)} bytes")
        return [(f"{name}_{p}", bcd(values[size * i:size * (i + 1)], decimals, signed=name == "current"))
                for i, p in enumerate(phases)]
    raise FrameError(reasons.UNSUPPORTED_DATA, f"data identifier {di:08X} is not supported")


class Dlt645Decoder:
    suffix = "frame/dlt645"
    kinds = frozenset({"electricity"})

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded:
        return guarded(self._decode, payload, ctx)

    def _decode(self, payload: bytes, ctx: DecodeContext, out: Decoded) -> None:
        frame, length = check_envelope(strip_preamble(frame_bytes(payload)), fixed=12, length_at=9)
        if frame[7] != 0x68:
            raise FrameError(reasons.BAD_FRAME, "second 68 delimiter missing")
        check_address(frame[1:7], ctx.device.address)
        control = frame[8]
        data = bytes((b - 0x33) & 0xFF for b in frame[10:10 + length])
        if control == 0xD1:
            code = data[0] if data else 0
            raise FrameError(reasons.METER_ERROR, f"meter answered with error status {code:02x}")
        if control not in (0x91, 0xB1):
            raise FrameError(reasons.UNSUPPORTED_DATA, f"control code {control:02x} is not a read-data response")
        if length < 4:
            raise FrameError(reasons.BAD_FRAME, "response without a data identifier")
        di = int.from_bytes(data[:4], "little")
        pairs = parse_values(di, data[4:])
        if not pairs:  # a block identifier with no value bytes: nothing to store, and it must say so
            raise FrameError(reasons.UNSUPPORTED_DATA, f"identifier {di:08X} without values")
        ts = int(ctx.now)
        for name, value in pairs:
            if name in ("energy_forward_total", "energy_combined_total"):
                out.samples.append(Sample(ts, value))
            else:
                out.values.append(MeterValue(ts, name, value))
