"""Reading times: RFC 3339 with an offset, or Unix seconds; stored as integer Unix seconds.

Total on hostile input: any JSON value gives an ``int`` or a ``ValueError``
(never an ``OverflowError`` from a number of 400 digits), and a detail
short enough to log and store.
"""

from __future__ import annotations

import math
from datetime import datetime

from meterwatch.localtime import CHINA
from meterwatch.text import has_control

EARLIEST = 946_684_800  # 2000-01-01T00:00:00Z: meters older than this did not speak NB-IoT
LIMIT_S = 10**11  # ~ year 5138: beyond this a number is not a time, and is never converted to a float


def _brief(number: int | float) -> str:
    if isinstance(number, int) and abs(number) >= 10**20:
        return f"of about {int(number.bit_length() * math.log10(2)) + 1} digits"  # never str(): it has a limit
    return f"{number!r}"[:40]


def parse_timestamp(raw: object) -> int:
    """Unix seconds of ``raw``, or ``ValueError`` saying what is wrong with it."""
    if isinstance(raw, bool):
        raise ValueError("timestamp must be RFC 3339 text or Unix seconds, not a boolean")
    if isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError("timestamp is not finite")
        if not -LIMIT_S < raw < LIMIT_S:  # int against int: no conversion, no overflow
            raise ValueError(f"timestamp {_brief(raw)} is out of range")
        return int(raw)
    if isinstance(raw, str):
        if has_control(raw):
            raise ValueError(f"timestamp {raw[:40]!r} holds a control character")
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"timestamp {raw[:40]!r} is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {raw[:40]!r} has no UTC offset")
        try:
            return int(parsed.timestamp())
        except (OverflowError, ValueError):
            raise ValueError(f"timestamp {raw[:40]!r} is out of range") from None
    raise ValueError(f"timestamp must be RFC 3339 text or Unix seconds, not {type(raw).__name__}")


def check_range(ts: int, now: float, future_tolerance_s: float) -> int:
    if ts < EARLIEST:
        raise ValueError(f"timestamp {ts} is before 2000-01-01")
    if ts > now + future_tolerance_s:
        raise ValueError(f"timestamp {ts} is {ts - now:.0f}s in the future")
    return ts


_LOCAL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                  "%Y-%m-%d", "%Y/%m/%d")


def parse_local_time(text: str) -> int:
    """Unix seconds of a time as offices write it: RFC 3339, Unix seconds, or ``2026/10/01 08:00``.

    A time without an offset is local (``meterwatch.localtime.CHINA``).
    ``ValueError`` says what is wrong.
    """
    raw = text.strip()
    if raw.isdigit():
        return parse_timestamp(int(raw))
    if has_control(raw):
        raise ValueError(f"time {raw[:40]!r} holds a control character")
    parsed = _local_datetime(raw)
    if parsed is None:
        raise ValueError(f"time {raw[:40]!r} is neither RFC 3339 nor a local date and time such as 2026/10/01 08:00")
    try:
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA)).timestamp())
    except (OverflowError, ValueError):
        raise ValueError(f"time {raw[:40]!r} is out of range") from None


def _local_datetime(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.replace("/", "-"))  # the common case, fast
    except ValueError:
        pass
    for fmt in _LOCAL_FORMATS:  # single-digit months, days and hours: 2026/1/5 8:00
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    return None
