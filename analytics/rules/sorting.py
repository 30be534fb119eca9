"""``sorting``: garbage sorting below target, or weighings with cards nobody issued."""

from __future__ import annotations

import numpy as np


def wilson_upper(successes: np.ndarray, trials: np.ndarray, z: float = 1.96) -> np.ndarray:
    """Upper bound of the Wilson score interval for a proportion (NaN without trials)."""
    with np.errstate(all="ignore"):
        p = successes / trials
        centre = p + z * z / (2 * trials)
        spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
        return np.where(trials > 0, (centre + spread) / (1 + z * z / trials), np.nan)


def low_recycling(recyclable_kg: np.ndarray, total_kg: np.ndarray, recyclable_weighings: np.ndarray,
                  weighings: np.ndarray, *, target_share: float, min_total_kg: float, min_weighings: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per institution: (below target, recyclable share of the weight).

    Below target means the weight share is, and so is the 95% upper bound
    of the share of recyclable bins: a fortnight of bad luck in a healthy
    institution (an hourly evaluation sees many fortnights) is not an
    alert; an institution that weighs no recyclables for 40 bins is.
    """
    with np.errstate(all="ignore"):
        share = np.where(total_kg > 0, recyclable_kg / total_kg, np.nan)
    enough = (total_kg >= min_total_kg) & (weighings >= min_weighings)
    sure = wilson_upper(recyclable_weighings, weighings) < target_share
    return enough & (share < target_share) & sure, share


def unknown_cards(unknown_count: np.ndarray, *, min_count: int) -> np.ndarray:
    return unknown_count >= min_count
