"""Hourly use profiles per institution type: the shape of a day, weekday and weekend.

Each profile is 24 relative weights (mean 1 over a weekday), local time.
Hospitals never close; offices and courts are empty at night and on
weekends; schools peak in the morning; venues in the evening.
"""

from __future__ import annotations

import numpy as np

from meterwatch.const import LOCAL_UTC_OFFSET_S

_WORKDAY = np.array([.15, .12, .1, .1, .1, .15, .4, 1.2, 2.0, 2.2, 2.2, 2.0,
                     1.5, 1.8, 2.1, 2.1, 2.0, 1.5, .8, .5, .35, .25, .2, .15])
_SCHOOL = np.array([.1, .1, .1, .1, .1, .2, .8, 2.2, 2.6, 2.4, 2.3, 2.0,
                    1.6, 1.6, 2.0, 2.0, 1.6, 1.0, .6, .5, .4, .3, .2, .1])
_HOSPITAL = np.array([.6, .55, .5, .5, .55, .7, .9, 1.2, 1.4, 1.5, 1.5, 1.4,
                      1.3, 1.3, 1.4, 1.4, 1.3, 1.2, 1.1, 1.0, .9, .8, .7, .65])
_VENUE = np.array([.2, .15, .1, .1, .1, .1, .2, .4, .7, 1.0, 1.2, 1.3,
                   1.3, 1.4, 1.5, 1.6, 1.7, 1.9, 2.2, 2.4, 2.0, 1.2, .6, .3])

WEEKDAY: dict[str, np.ndarray] = {
    "office": _WORKDAY, "justice": _WORKDAY, "education": _SCHOOL, "medical": _HOSPITAL, "venue": _VENUE,
}
WEEKEND_FACTOR = {"office": 0.25, "justice": 0.35, "education": 0.2, "medical": 0.9, "venue": 1.3}

# Mean use per hour: water m3 per occupant, electricity kWh per m2, heat GJ per m2 (heating season).
PER_HOUR = {"water": 0.04 / 24 * 24 / 10, "electricity": 0.012, "heat": 0.00004}


def hourly_factor(inst_type: str, ts: np.ndarray) -> np.ndarray:
    """Relative use at each Unix time ``ts`` for an institution of ``inst_type``."""
    local = ts + LOCAL_UTC_OFFSET_S
    hour = (local // 3600) % 24
    weekday = ((local // 86400) + 3) % 7  # 1970-01-01 was a Thursday (3, Monday = 0)
    factor = WEEKDAY[inst_type][hour]
    return np.where(weekday >= 5, factor * WEEKEND_FACTOR[inst_type], factor)
