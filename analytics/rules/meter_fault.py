"""``meter_fault``: a meter that cannot be right.

- frozen: its register has not moved for days while it usually moves every
  day and the institution's other meters are moving (so the building is in use);
- backwards: readings below earlier ones that are not a rollover or a
  replacement (the collector flags them ``bad_reading``);
- jump: a rise no building can consume (the collector flags it ``jump``).
"""

from __future__ import annotations

import numpy as np

FROZEN, BACKWARDS, JUMP = 1, 2, 3
KINDS = {FROZEN: "frozen", BACKWARDS: "backwards", JUMP: "jump"}


def meter_fault(recent_use: np.ndarray, recent_count: np.ndarray, usual_daily_use: np.ndarray,
                neighbours_moving: np.ndarray, bad_readings: np.ndarray, jumps: np.ndarray, *,
                min_backwards: int, min_count: float) -> np.ndarray:
    """Per device: 0 (fine) or FROZEN / BACKWARDS / JUMP (the first that applies, worst first).

    A frozen register keeps reporting: a meter with few readings in the
    window has gone silent, which is the silent rule's business.
    """
    frozen = ((recent_count >= max(min_count, 1)) & (np.nan_to_num(recent_use) <= 0) & (usual_daily_use > 0)
              & neighbours_moving)
    code = np.zeros(len(recent_use), dtype=np.int64)
    code = np.where(frozen, FROZEN, code)
    code = np.where(bad_readings >= min_backwards, BACKWARDS, code)
    return np.where(jumps >= 1, JUMP, code)
