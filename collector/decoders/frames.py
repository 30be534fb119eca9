"""Shared mechanism of the binary meter protocols (DL/T 645, CJ/T 188).

Both frame formats start with optional 0xFE wake-up bytes, delimit with
0x68 ... 0x16, protect the frame with an 8-bit sum, carry numbers in
little-endian BCD and addresses as BCD bytes printed in reverse order.
Gateways may send the frame as raw bytes or as hex text.
"""

from __future__ import annotations

import string
from collections.abc import Callable

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded

_HEX = set(string.hexdigits.encode() + b" \t\r\n:")


class FrameError(ValueError):
    """A frame refused for ``reason`` (a collector reject reason), explained by the message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def frame_bytes(payload: bytes) -> bytes:
    """The frame as bytes, whether sent raw or as hex text (spaces and colons allowed)."""
    if payload and all(b in _HEX for b in payload):
        text = payload.decode("ascii").replace(":", "")
        try:
            return bytes.fromhex("".join(text.split()))
        except ValueError:
            raise FrameError(reasons.BAD_FRAME, "hex text with an odd number of digits") from None
    return payload


def strip_preamble(frame: bytes) -> bytes:
    start = 0
    while start < len(frame) and frame[start] == 0xFE:
        start += 1
    if start > 4:
        raise FrameError(reasons.BAD_FRAME, f"{start} wake-up bytes (at most 4)")
    return frame[start:]


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def check_envelope(frame: bytes, fixed: int, length_at: int) -> tuple[bytes, int]:
    """Validate start, length, checksum and end; return (frame, data length).

    ``fixed`` is the frame size without its data field; ``length_at`` the
    index of the length byte.
    """
    if len(frame) < fixed or frame[0] != 0x68:
        raise FrameError(reasons.BAD_FRAME, f"not a frame: {len(frame)} bytes, starts {frame[:1].hex() or 'empty'}")
    length = frame[length_at]
    if len(frame) != fixed + length:
        raise FrameError(reasons.BAD_FRAME, f"length byte says {length} data bytes, frame has {len(frame) - fixed}")
    if frame[-1] != 0x16:
        raise FrameError(reasons.BAD_FRAME, f"frame ends with {frame[-1]:02x}, not 16")
    expected = checksum(frame[:-2])
    if frame[-2] != expected:
        raise FrameError(reasons.BAD_CHECKSUM, f"checksum {frame[-2]:02x}, computed {expected:02x}")
    return frame, length


def bcd(data: bytes, decimals: int = 0, *, signed: bool = False) -> float:
    """Little-endian packed BCD; with ``signed``, the top bit of the last byte is the sign."""
    raw = bytearray(data)
    negative = False
    if signed and raw:
        negative = bool(raw[-1] & 0x80)
        raw[-1] &= 0x7F
    value = 0
    for byte in reversed(raw):
        hi, lo = byte >> 4, byte & 0x0F
        if hi > 9 or lo > 9:
            raise FrameError(reasons.BAD_FRAME, f"byte {byte:02x} is not BCD")
        value = value * 100 + hi * 10 + lo
    result = value / (10 ** decimals)
    return -result if negative else result


def printed_address(wire: bytes) -> str:
    """The address as printed on the meter: wire bytes reversed, each as two digits."""
    return "".join(f"{b:02x}" for b in reversed(wire)).upper()


def check_address(wire: bytes, expected: str) -> None:
    printed = printed_address(wire)
    if not expected:
        raise FrameError(reasons.ADDRESS_MISMATCH, f"frame from address {printed} but the device has no address")
    if printed != expected.upper():
        raise FrameError(reasons.ADDRESS_MISMATCH, f"frame from address {printed}, device's address is {expected}")


def guarded(parse: Callable[[bytes, DecodeContext, Decoded], None], payload: bytes, ctx: DecodeContext) -> Decoded:
    """Run a frame parser so that nothing escapes: a ``FrameError`` is a reject with its reason, and any
    other slip on malformed bytes (an index past the end, a bad value) is a ``bad_frame`` reject."""
    out = Decoded(stamped=True)  # frames carry no time: their samples are stamped on receipt
    try:
        parse(payload, ctx, out)
    except FrameError as exc:
        out.add_reject(exc.reason, str(exc))
    except (IndexError, ValueError) as exc:
        out.add_reject(reasons.BAD_FRAME, f"unreadable frame: {exc}")
    return out
