"""The province's calendar: public holidays, school vacations, the heating season.

Holidays follow the State Council's published schedules (国务院办公厅关于
部分节假日安排的通知) for 2025 and 2026; make-up working days (调休) are
ignored.  School vacations and the heating season (Ningxia: 1 Nov - 31 Mar)
are typical dates, not any one school's or city's decree.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from meterwatch.localtime import local_day


def _span(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


HOLIDAYS: frozenset[date] = frozenset(
    d for first, last in [
        ("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
        ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08"),
        ("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
        ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
        ("2026-10-01", "2026-10-07"),
    ] for d in _span(first, last))
_HOLIDAY_DAYS = np.array(sorted((d - date(1970, 1, 1)).days for d in HOLIDAYS), dtype=np.int64)


def local_days(ts: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 in China Standard Time."""
    return local_day(np.asarray(ts, dtype=np.int64))


def is_holiday(ts: np.ndarray) -> np.ndarray:
    return np.isin(local_days(ts), _HOLIDAY_DAYS)


def is_weekend(ts: np.ndarray) -> np.ndarray:
    return (local_days(ts) + 3) % 7 >= 5  # 1970-01-01 was a Thursday


def _month_day(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = local_days(ts).astype("datetime64[D]")
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return month, day


def is_school_vacation(ts: np.ndarray) -> np.ndarray:
    """Winter 15 Jan - 25 Feb, summer 10 Jul - 31 Aug."""
    month, day = _month_day(ts)
    winter = ((month == 1) & (day >= 15)) | ((month == 2) & (day <= 25))
    summer = ((month == 7) & (day >= 10)) | (month == 8)
    return winter | summer


def in_heating_season(ts: np.ndarray) -> np.ndarray:
    """Ningxia's heating season: 1 November to 31 March."""
    month, _ = _month_day(ts)
    return (month >= 11) | (month <= 3)


def water_season(ts: np.ndarray) -> np.ndarray:
    """More water in the hot months, less in winter."""
    month, _ = _month_day(ts)
    return np.select([np.isin(month, (6, 7, 8)), np.isin(month, (12, 1, 2))], [1.3, 0.85], 1.0)
