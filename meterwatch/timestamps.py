"""Reading times: RFC 3339 with an offset, or Unix seconds; stored as integer Unix seconds."""

from __future__ import annotations

import math
from datetime import datetime

EARLIEST = 946_684_800  # 2000-01-01T00:00:00Z: meters older than this did not speak NB-IoT


def parse_timestamp(raw: object) -> int:
    """Unix seconds of ``raw``, or ``ValueError`` saying what is wrong with it."""
    if isinstance(raw, bool):
        raise ValueError("timestamp must be RFC 3339 text or Unix seconds, not a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("timestamp is not finite")
        return int(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"timestamp {raw[:40]!r} is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {raw[:40]!r} has no UTC offset")
        return int(parsed.timestamp())
    raise ValueError(f"timestamp must be RFC 3339 text or Unix seconds, not {type(raw).__name__}")


def check_range(ts: int, now: float, future_tolerance_s: float) -> int:
    if ts < EARLIEST:
        raise ValueError(f"timestamp {ts} is before 2000-01-01")
    if ts > now + future_tolerance_s:
        raise ValueError(f"timestamp {ts} is {ts - now:.0f}s in the future")
    return ts
