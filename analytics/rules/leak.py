"""``leak``: water that never stops at night.

A healthy building has quarter-hours of zero flow between 02:00 and 04:00;
a leaking one does not.  The minimum night flow (m3/h) must exceed a
threshold that grows with the building (a hospital of 2,000 people is not
a kindergarten) on ``nights`` consecutive nights, so one late cleaner or a
night of filling a tank raises nothing.
"""

from __future__ import annotations

import numpy as np


def leak_threshold(occupants: np.ndarray, *, floor_m3h: float, per_person_m3h: float,
                   type_factor: np.ndarray) -> np.ndarray:
    return np.maximum(floor_m3h, per_person_m3h * occupants) * type_factor


def leak(night_flow: np.ndarray, threshold: np.ndarray, nights: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device: (leaking, smallest night flow of the streak in m3/h, nights in the streak).

    ``night_flow`` is devices x nights (oldest first; NaN = no data that night).  A night without
    data neither proves nor disproves a leak: it breaks the streak.
    """
    above = night_flow > threshold[:, None]  # NaN compares False
    streak = np.zeros(len(night_flow), dtype=np.int64)
    for k in range(night_flow.shape[1]):  # consecutive nights ending with the latest
        streak = np.where(above[:, k], streak + 1, 0)
    recent = night_flow[:, -nights:] if nights else night_flow[:, :0]
    with np.errstate(all="ignore"):
        value = np.where(streak >= nights, np.nanmin(np.where(np.isnan(recent), np.inf, recent), axis=1), np.nan)
    return streak >= nights, value, streak
