"""``silent``: a device that stopped reporting.

NB-IoT meters read every 15 minutes but may upload only every few hours,
so "late" is measured against the larger of a multiple of the device's own
usual interval and a floor that covers batched uploads.
"""

from __future__ import annotations

import numpy as np


def silent(last_ts: np.ndarray, usual_interval_s: np.ndarray, now: float, *, factor: float,
           min_silence_s: float, default_interval_s: float, window_start: float) -> tuple[np.ndarray, np.ndarray]:
    """Per device: (is_silent, seconds since the last reading).

    ``last_ts`` is NaN for a device with no reading in the window; it counts
    as silent since ``window_start``.  Readings stamped after ``now`` (clock
    skew) count as fresh.
    """
    last = np.where(np.isnan(last_ts), window_start, last_ts)
    interval = np.where(np.isfinite(usual_interval_s) & (usual_interval_s > 0), usual_interval_s, default_interval_s)
    silence = np.maximum(now - last, 0.0)
    threshold = np.maximum(factor * interval, min_silence_s)
    return silence > threshold, silence
