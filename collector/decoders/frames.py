"""Shared mechanism of the binary meter protocols (DL/T 645, CJ/T 188).

Both frame formats start with optional 0xFE wake-up bytes, delimit with
0x68 ... 0x16, protect the frame with an 8-bit sum, carry numbers in
little-endian BCD and addresses as BCD bytes printed in reverse order.
Gateways may send the frame as raw bytes or as hex text, and may forward
several meters' replies in one payload: ``split`` cuts a payload into its
frames and the bytes between them, and ``decode_frames`` decodes each frame
on its own, so that one bad frame (or a stretch of garbage) is rejected
alone and the others are kept.  Each frame is bound to a device by its
address: the topic's device, or another device of the same institution
(a gateway forwarding several meters' replies), never a device elsewhere.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, replace

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, ItemReject

_HEX = set(string.hexdigits.encode() + b" \t\r\n:")
WAKE_UP = 0xFE
MAX_WAKE_UP = 4  # the standards' limit, and all real captures found stay within it
WILDCARD = "A"  # an address digit that only a broadcast (wildcard) address has: no meter is printed with it


class FrameError(ValueError):
    """A frame refused for ``reason`` (a collector reject reason), explained by the message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a protocol's envelope keeps its length and address: ``fixed`` is the frame size without its
    data field, ``length_at`` the index of the length byte, ``address`` the address bytes,
    ``second_start`` the index of a second 0x68 delimiter (DL/T 645) or None."""

    fixed: int
    length_at: int
    address: slice
    second_start: int | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stretch of the payload: a frame (``frame`` from its 68 to its 16, ``wake_up`` FE bytes before
    it) or bytes that are no frame (``frame`` is None)."""

    offset: int  # where it starts in the payload's bytes
    raw: bytes  # the whole stretch, wake-up bytes included
    frame: bytes | None
    wake_up: int = 0


def frame_bytes(payload: bytes) -> tuple[bytes, bool]:
    """The payload as bytes, and whether it came as hex text (any case; spaces, tabs, line breaks and
    colons between digits allowed).  A binary frame is never taken for hex: its 0x68 is ``h``."""
    if payload and all(b in _HEX for b in payload):
        tokens = payload.decode("ascii").replace(":", " ").split()
        odd = next((t for t in tokens if len(t) % 2), None)
        if odd is not None:  # a lost digit would shift every byte after it: refused, not guessed at
            raise FrameError(reasons.BAD_FRAME, f"hex text with an odd number of digits in {odd[:16]!r}")
        return bytes.fromhex("".join(tokens)), True
    return payload, False


def _frame_at(data: bytes, start: int, layout: Layout) -> int:
    """The end of a well-delimited frame starting at ``start`` (its 0x68), or -1."""
    if len(data) - start < layout.fixed:
        return -1
    if layout.second_start is not None and data[start + layout.second_start] != 0x68:
        return -1
    end = start + layout.fixed + data[start + layout.length_at]
    return end if end <= len(data) and data[end - 1] == 0x16 else -1


def split(data: bytes, layout: Layout) -> list[Chunk]:
    """Cut ``data`` into frames and the stretches between them that are no frame.

    A frame is found where a 0x68 begins a well-delimited envelope (length
    inside the data, 0x16 at its end); its checksum is checked later, frame
    by frame.  Wake-up bytes before a frame belong to it; FE bytes at the
    very end (some meters pad their reply) are dropped.
    """
    chunks: list[Chunk] = []
    garbage = -1  # start of the pending stretch that is no frame
    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == WAKE_UP:
            j += 1
        if j == len(data) and garbage < 0:
            break  # trailing padding
        end = _frame_at(data, j, layout) if j < len(data) and data[j] == 0x68 else -1
        if end < 0:
            garbage = i if garbage < 0 else garbage
            i = j + 1
            continue
        if garbage >= 0:
            chunks.append(Chunk(garbage, data[garbage:i], None))
            garbage = -1
        chunks.append(Chunk(i, data[i:end], data[j:end], j - i))
        i = end
    if garbage >= 0:
        chunks.append(Chunk(garbage, data[garbage:], None))
    return chunks


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def check_envelope(frame: bytes, layout: Layout) -> int:
    """Validate start, length, checksum and end of one frame; return its data length."""
    if len(frame) < layout.fixed or frame[0] != 0x68:
        raise FrameError(reasons.BAD_FRAME, f"not a frame: {len(frame)} bytes, starts {frame[:1].hex() or 'empty'}")
    if layout.second_start is not None and frame[layout.second_start] != 0x68:
        raise FrameError(reasons.BAD_FRAME, "second 68 delimiter missing")
    length = frame[layout.length_at]
    if len(frame) != layout.fixed + length:
        raise FrameError(reasons.BAD_FRAME, f"length byte says {length} data bytes, frame has {len(frame) - layout.fixed}")
    if frame[-1] != 0x16:
        raise FrameError(reasons.BAD_FRAME, f"frame ends with {frame[-1]:02x}, not 16")
    expected = checksum(frame[:-2])
    if frame[-2] != expected:
        raise FrameError(reasons.BAD_CHECKSUM, f"checksum {frame[-2]:02x}, computed {expected:02x}")
    return length


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
    """The frame must come from the device's own address: a frame for another meter is refused, and so
    is a reply that kept the wildcard address (some DL/T 645-1997 meters answer with AA...AA)."""
    printed = printed_address(wire)
    if WILDCARD in printed:
        raise FrameError(reasons.ADDRESS_MISMATCH, f"frame from wildcard address {printed}: it names no meter")
    if not expected:
        raise FrameError(reasons.ADDRESS_MISMATCH, f"frame from address {printed} but the device has no address")
    if printed != expected.upper():
        raise FrameError(reasons.ADDRESS_MISMATCH, f"frame from address {printed}, device's address is {expected}")


def _garbage_detail(chunk: Chunk) -> str:
    body = chunk.raw.lstrip(bytes([WAKE_UP]))
    if body[:1] == b"\x68":
        return f"{len(chunk.raw)} bytes that begin a frame but do not end one (truncated or wrong length)"
    return f"{len(chunk.raw)} bytes that are not a frame"


FrameParser = Callable[[bytes, DecodeContext, Decoded], None]


def _bind(frame: bytes, layout: Layout, kinds: frozenset[str], ctx: DecodeContext,
          out: Decoded) -> tuple[DecodeContext, Decoded]:
    """The device a frame is for, as a context to parse it in, and the output it goes to: the topic's
    device, or the peer at the frame's address (its own entry of ``out.forwarded``).  A frame for an
    address no peer of a fitting kind has stays with the topic's device, whose address check refuses it."""
    printed = printed_address(frame[layout.address])
    if printed == ctx.device.address.upper() or printed not in ctx.peers:
        return ctx, out
    peer = ctx.peers[printed]
    if peer is None:
        raise FrameError(reasons.ADDRESS_MISMATCH, f"frame from address {printed}, which several devices of "
                                                   f"institution {ctx.device.institution} share")
    if peer.kind not in kinds:
        return ctx, out
    return replace(ctx, device=peer), out.forwarded.setdefault(peer, Decoded(stamped=True))


def _decode_one(parse: FrameParser, layout: Layout, kinds: frozenset[str], chunk: Chunk, ctx: DecodeContext,
                out: Decoded) -> None:
    if chunk.frame is None:
        raise FrameError(reasons.BAD_FRAME, _garbage_detail(chunk))
    if chunk.wake_up > MAX_WAKE_UP:
        raise FrameError(reasons.BAD_FRAME, f"{chunk.wake_up} wake-up bytes (at most {MAX_WAKE_UP})")
    frame_ctx, into = _bind(chunk.frame, layout, kinds, ctx, out)
    frame = Decoded(stamped=True)
    parse(chunk.frame, frame_ctx, frame)  # into its own output: a frame refused half-way leaves nothing behind
    into.samples += frame.samples
    into.values += frame.values


def decode_frames(parse: FrameParser, layout: Layout, kinds: frozenset[str], payload: bytes,
                  ctx: DecodeContext) -> Decoded:
    """Decode every frame of a payload with ``parse`` (one frame, checked envelope and all) so that
    nothing escapes: a ``FrameError`` is a reject with its reason, any other slip on malformed bytes
    (an index past the end, a bad value) a ``bad_frame`` reject; each bad frame or stretch of garbage
    is rejected alone, with its bytes and where it was, and the good frames are kept.  A frame for
    another device of the institution (of one of ``kinds``) is decoded as that device's, into
    ``Decoded.forwarded``."""
    out = Decoded(stamped=True)  # frames carry no time: their samples are stamped on receipt
    try:
        data, as_text = frame_bytes(payload)
    except FrameError as exc:
        out.add_reject(exc.reason, str(exc))
        return out
    chunks = split(data, layout)
    if not chunks:
        out.add_reject(reasons.BAD_FRAME, "no frame in the payload" if data else "empty payload")
        return out
    if len(chunks) > ctx.max_batch:
        out.add_reject(reasons.OVERSIZED, f"{len(chunks)} frames, limit {ctx.max_batch}")
        return out
    for n, chunk in enumerate(chunks, 1):
        try:
            _decode_one(parse, layout, kinds, chunk, ctx, out)
        except FrameError as exc:
            out.rejects.append(_reject(exc.reason, str(exc), chunk, n, len(chunks), as_text))
        except (IndexError, ValueError) as exc:
            out.rejects.append(_reject(reasons.BAD_FRAME, f"unreadable frame: {exc}", chunk, n, len(chunks), as_text))
    return out


def _reject(reason: str, detail: str, chunk: Chunk, n: int, of: int, as_text: bool) -> ItemReject:
    """A frame's reject: alone in its payload it is the whole message; one of several, it names its place
    and keeps its own bytes (as hex text when the payload was hex text)."""
    if of == 1:
        return ItemReject(reason, detail)
    where = f"part {n} of {of} (byte {chunk.offset}): "
    return ItemReject(reason, where + detail, chunk.raw.hex(" ").upper().encode() if as_text else chunk.raw)
