"""``sorting``: garbage sorting below target, or weighings with cards nobody issued."""

from __future__ import annotations

import numpy as np


def low_recycling(recyclable_kg: np.ndarray, total_kg: np.ndarray, *, target_share: float,
                  min_total_kg: float) -> tuple[np.ndarray, np.ndarray]:
    """Per institution: (below target, recyclable share of the weight); too little weighed = no verdict."""
    with np.errstate(all="ignore"):
        share = np.where(total_kg > 0, recyclable_kg / total_kg, np.nan)
    return (total_kg >= min_total_kg) & (share < target_share), share


def unknown_cards(unknown_count: np.ndarray, *, min_count: int) -> np.ndarray:
    return unknown_count >= min_count
