"""How much each kind of institution uses, hour by hour and day by day.

Each hourly shape has mean 1 over a working day (local time).  Hospitals
never close; offices and courts are nearly empty at night, on weekends and
holidays; schools empty in their vacations; venues peak in the evening.
Heat is used only in the heating season.  Water is drawn intermittently
(taps open and close), so a healthy building's quietest quarter-hours at
night read zero: that is what makes a leak visible.
"""

from __future__ import annotations

import numpy as np

from meterwatch.localtime import LOCAL_UTC_OFFSET_S
from simulators.calendar import in_heating_season, is_holiday, is_school_vacation, is_weekend, water_season

_WORKDAY = np.array([.15, .12, .1, .1, .1, .15, .4, 1.2, 2.0, 2.2, 2.2, 2.0,
                     1.5, 1.8, 2.1, 2.1, 2.0, 1.5, .8, .5, .35, .25, .2, .15])
_SCHOOL = np.array([.1, .1, .1, .1, .1, .2, .8, 2.2, 2.6, 2.4, 2.3, 2.0,
                    1.6, 1.6, 2.0, 2.0, 1.6, 1.0, .6, .5, .4, .3, .2, .1])
_HOSPITAL = np.array([.6, .55, .5, .5, .55, .7, .9, 1.2, 1.4, 1.5, 1.5, 1.4,
                      1.3, 1.3, 1.4, 1.4, 1.3, 1.2, 1.1, 1.0, .9, .8, .7, .65])
_VENUE = np.array([.2, .15, .1, .1, .1, .1, .2, .4, .7, 1.0, 1.2, 1.3,
                   1.3, 1.4, 1.5, 1.6, 1.7, 1.9, 2.2, 2.4, 2.0, 1.2, .6, .3])
_HEATING = np.array([1.2, 1.2, 1.25, 1.3, 1.3, 1.3, 1.25, 1.1, 1.0, .9, .85, .8,
                     .75, .75, .75, .8, .85, .9, 1.0, 1.05, 1.1, 1.15, 1.15, 1.2])  # colder at night

HOURLY: dict[str, np.ndarray] = {
    "office": _WORKDAY, "justice": _WORKDAY, "education": _SCHOOL, "medical": _HOSPITAL, "venue": _VENUE,
}
OFF_DAY_FACTOR = {"office": 0.2, "justice": 0.35, "education": 0.2, "medical": 0.9, "venue": 1.3}
VACATION_FACTOR = {"education": 0.15}

# Mean use per hour on a working day: water m3 per occupant, electricity kWh per m2, heat GJ per m2.
PER_HOUR = {"water": 0.0045, "electricity": 0.012, "heat": 0.00012}


def day_factor(inst_type: str, ts: np.ndarray) -> np.ndarray:
    off = is_weekend(ts) | is_holiday(ts)
    factor = np.where(off, OFF_DAY_FACTOR[inst_type], 1.0)
    if inst_type in VACATION_FACTOR:
        factor = np.where(is_school_vacation(ts), factor * VACATION_FACTOR[inst_type], factor)
    return factor


def use_factor(inst_type: str, kind: str, ts: np.ndarray) -> np.ndarray:
    """Relative use (mean ~1 on a working day) at each Unix time ``ts``."""
    hour = ((np.asarray(ts, dtype=np.int64) + LOCAL_UTC_OFFSET_S) // 3600) % 24
    if kind == "heat":
        return _HEATING[hour] * in_heating_season(ts) * np.where(is_weekend(ts) | is_holiday(ts), 0.8, 1.0)
    factor = HOURLY[inst_type][hour] * day_factor(inst_type, ts)
    if kind == "water":
        factor = factor * water_season(ts)
    else:  # electricity: a base load (servers, standby, security lighting) never switches off
        factor = 0.25 + 0.75 * factor
    return factor
