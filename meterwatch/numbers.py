"""Numbers as the JSON outputs carry them (reports, budget, statistics)."""

from __future__ import annotations

import math


def finite_or_none(value: float | None, digits: int) -> float | None:
    """``value`` rounded to ``digits``; None when missing or not finite, as JSON has no NaN."""
    return None if value is None or not math.isfinite(value) else round(float(value), digits)
