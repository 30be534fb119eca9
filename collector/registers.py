"""What a register that goes down, or leaps, means: rollover, replacement, bad reading, jump.

Pure functions over a device's recent readings.  The rule of the house:
consumption is never negative and never a spike; when the truth is not
knowable the interval gets no consumption and the reading a flag, so
analytics (``meter_fault``) and officers can see what happened.

- rollover: the previous raw value was in the top tenth of its power-of-ten
  range (a 5-digit counter at 99,98x) and the new one in the bottom tenth:
  consumption wraps around the counter's maximum.
- replacement: a drop to under half, not near a maximum: a new meter (or a
  reset); no consumption for that interval, the new value is the baseline.
- bad_reading: a smaller dip; the reading is kept but never becomes a
  baseline, so the next reading is compared with the last good one.
- jump: a rise far above the device's own recent rate; no consumption for
  that interval.  If the next reading falls back to the old level, the jump
  was a bad reading and is rewritten as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROLLOVER_TOP = 0.9
ROLLOVER_BOTTOM = 0.1
REPLACEMENT_RATIO = 0.5
JUMP_FACTOR = 50.0  # times the device's median rate
JUMP_MIN_HISTORY = 4  # intervals needed before a jump can be judged
JUMP_WINDOW = 96  # the latest intervals whose median rate is the device's normal: a day of quarter-hours
JUMP_REFRESH = 16  # appends between recomputing that median (sorting 96 rates per reading was 25% of ingest)


DECREASE_FLAGS = ("rollover", "replacement", "bad_reading")


def classify_decreases(prev_reg: np.ndarray, reg: np.ndarray, multiplier: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised: (index into DECREASE_FLAGS, consumption or NaN) for registers that went down."""
    raw_prev, raw_new = prev_reg / multiplier, reg / multiplier
    top = 10.0 ** np.maximum(1, np.ceil(np.log10(np.maximum(raw_prev, 1e-9) + 1e-9)))
    rollover = (raw_prev >= ROLLOVER_TOP * top) & (raw_new <= ROLLOVER_BOTTOM * top)
    replacement = ~rollover & (reg < REPLACEMENT_RATIO * prev_reg)
    flag = np.where(rollover, 0, np.where(replacement, 1, 2))
    consumption = np.where(rollover, (top - raw_prev + raw_new) * multiplier, np.nan)
    return flag, consumption


def classify_decrease(prev_reg: float, reg: float, multiplier: float) -> tuple[str, float | None]:
    """(flag, consumption) for a register that went from ``prev_reg`` down to ``reg`` (both scaled)."""
    flag, consumption = classify_decreases(np.array([prev_reg]), np.array([reg]), np.array([multiplier]))
    value = float(consumption[0])
    return DECREASE_FLAGS[int(flag[0])], None if np.isnan(value) else value


def median_rate(ts: Sequence[int] | np.ndarray, register: Sequence[float] | np.ndarray) -> float | None:
    """The device's normal: median rate of rise over its last ``JUMP_WINDOW`` intervals (None: too few).

    ``deltas.extend_all`` computes the same for many windows at once, and is tested against it.
    """
    end = len(ts)
    if end < JUMP_MIN_HISTORY + 1:
        return None
    first = max(0, end - 1 - JUMP_WINDOW)
    times = np.asarray(ts[first:end], dtype=np.int64)
    steps = np.diff(times)
    rising = steps > 0
    rates = np.diff(np.asarray(register[first:end], dtype=np.float64))[rising] / steps[rising]
    return float(np.sort(rates)[len(rates) // 2]) if len(rates) else None


def is_jump(last_ts: int, last_reg: float, new_ts: int, new_reg: float, median: float | None) -> bool:
    """True when the rise from the last reading to ``new_reg`` is far above the device's ``median`` rate."""
    if median is None or median <= 0 or new_ts <= last_ts:
        return False  # a device that never moves has no rate to compare with (frozen: analytics' job)
    return (new_reg - last_reg) / (new_ts - last_ts) > JUMP_FACTOR * median
