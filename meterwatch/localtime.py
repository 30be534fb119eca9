"""The province's local time, in one place: China Standard Time (UTC+8, no daylight saving).

Days, months and years of reports, quotas, tariffs and rollups are local
calendar periods; timestamps are stored as Unix seconds (UTC).  Everything
that turns one into the other lives here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np

DAY = 86400
LOCAL_UTC_OFFSET_S = 8 * 3600
CHINA = timezone(timedelta(seconds=LOCAL_UTC_OFFSET_S), "CST")


def local_day(ts: int | float | np.ndarray) -> int | np.ndarray:
    """Days since 1970-01-01 of the local calendar (vectorised on arrays)."""
    if isinstance(ts, np.ndarray):
        return (ts.astype(np.int64) + LOCAL_UTC_OFFSET_S) // DAY
    return (int(ts) + LOCAL_UTC_OFFSET_S) // DAY


def day_start(day: int) -> int:
    """Unix time of local midnight at the start of local day number ``day`` (see ``local_day``)."""
    return int(day) * DAY - LOCAL_UTC_OFFSET_S


def local_midnight(ts: int | float) -> int:
    """Unix time of the local midnight that starts the day holding ``ts``."""
    return int(local_day(ts)) * DAY - LOCAL_UTC_OFFSET_S


def midnight_of(day: date) -> int:
    """Unix time of local midnight at the start of ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=CHINA).timestamp())


def local_minute(ts: int | float) -> int:
    """Minutes since local midnight (0-1439): where a time falls in a local ``HH:MM-HH:MM`` span."""
    return ((int(ts) + LOCAL_UTC_OFFSET_S) % DAY) // 60


def local_date(ts: int | float) -> date:
    return datetime.fromtimestamp(ts, CHINA).date()


def local_datetime(ts: int | float) -> datetime:
    return datetime.fromtimestamp(ts, CHINA)


def local_text(ts: int | float) -> str:
    """``2026-10-01 08:00``: how officers read a time."""
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%d %H:%M")


def day_to_date(day: int) -> date:
    """The local calendar date of a local day number (see ``local_day``)."""
    return date(1970, 1, 1) + timedelta(days=int(day))


def local_year(at: int) -> tuple[int, int, int]:
    """(year, day of the year 0-based, Unix time of 1 January 00:00) in local time."""
    year = local_date(at).year
    jan1 = midnight_of(date(year, 1, 1))
    return year, (at - jan1) // DAY, jan1


def year_bounds(year: int) -> tuple[int, int]:
    """Unix times of local 1 January 00:00 of ``year`` and of the next year."""
    return midnight_of(date(year, 1, 1)), midnight_of(date(year + 1, 1, 1))


def month_bounds(year: int, month: int) -> tuple[int, int]:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return midnight_of(date(year, month, 1)), midnight_of(nxt)


def utc_text(ts: int | float) -> str:
    """RFC 3339 in UTC, as the store and the JSON outputs speak."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
