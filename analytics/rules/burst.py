"""``burst``: flow far above the device's own normal, sustained (a pipe burst, a tap left open).

Compared with the device's own 95th-percentile flow over the lookback, so
a school's lunchtime peak is normal for the school.  "Sustained" means the
*smallest* flow of the recent window is that high, not one spike.
"""

from __future__ import annotations

import numpy as np


def burst(recent_min_flow: np.ndarray, normal_p95_flow: np.ndarray, *, factor: float,
          floor_m3h: float) -> tuple[np.ndarray, np.ndarray]:
    """Per device: (bursting, how many times its normal peak the recent flow is)."""
    normal = np.where(np.isfinite(normal_p95_flow), np.maximum(normal_p95_flow, floor_m3h / factor), np.nan)
    with np.errstate(all="ignore"):
        ratio = recent_min_flow / normal
    return (ratio > factor) & (recent_min_flow > floor_m3h), ratio


def latest_hour(hourly_min_flow: np.ndarray, hourly_count: np.ndarray, *, min_readings: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per device (rows = devices, columns = hours, oldest first): the minimum flow of its latest hour
    with enough readings, and that hour's column (-1 if none).  NB-IoT meters deliver hours late, so
    "the latest hour the device has told us about" is the honest "now"."""
    full = hourly_count >= min_readings
    has = full.any(axis=1)
    last = np.where(has, full.shape[1] - 1 - np.argmax(full[:, ::-1], axis=1), -1)
    flow = np.where(has, hourly_min_flow[np.arange(len(last)), np.maximum(last, 0)], np.nan)
    return flow, last
