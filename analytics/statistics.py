"""Statistics officers check before trusting the figures: rankings, change on last year, implausible values.

Pure: arrays in, arrays out.  Intensities are per capita (occupants) and
per m2 (floor area) of each institution's year-to-date use; ranks are 1 =
lowest use (the best) within the institution's type, and within type and
city; an institution whose intensity is far from its type's median, or
whose registry gives no occupants or area, is flagged as implausible: a
registry or meter error is the likely cause, not a saint or a sinner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAR = 5.0  # times the type median (or 1/FAR of it)


@dataclass(frozen=True)
class Intensities:
    per_capita: np.ndarray
    per_m2: np.ndarray
    rank_type: np.ndarray  # by per m2 within the type (1 = lowest)
    rank_type_city: np.ndarray
    rank_type_capita: np.ndarray  # by per capita within the type
    rank_type_city_capita: np.ndarray
    yoy: np.ndarray  # change against the same period last year (0.1 = +10%), NaN without last year
    flag: np.ndarray  # "" or why the figure is implausible


def rank_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """1 = the lowest value within each group; NaN where the value is not finite."""
    ranks = np.full(len(values), np.nan)
    for g in np.unique(groups):
        idx = np.flatnonzero((groups == g) & np.isfinite(values))
        ranks[idx[np.argsort(values[idx], kind="stable")]] = np.arange(1, len(idx) + 1)
    return ranks


def intensities(use: np.ndarray, last_year: np.ndarray, occupants: np.ndarray, area: np.ndarray,
                types: np.ndarray, cities: np.ndarray, reporting: np.ndarray) -> Intensities:
    with np.errstate(all="ignore"):
        per_capita = np.where(occupants > 0, use / occupants, np.nan)
        per_m2 = np.where(area > 0, use / area, np.nan)
        yoy = np.where(last_year > 0, use / last_year - 1.0, np.nan)
    flag = np.full(len(use), "", dtype=object)
    for t in np.unique(types):
        idx = np.flatnonzero(types == t)
        median = np.nanmedian(per_m2[idx]) if np.isfinite(per_m2[idx]).any() else np.nan
        if np.isfinite(median) and median > 0:
            far = idx[(per_m2[idx] > FAR * median) | (per_m2[idx] < median / FAR)]
            flag[far] = "far from the type's median"
    flag[(use <= 0) & reporting] = "no use although meters report"
    flag[(occupants <= 0) | (area <= 0)] = "registry gives no occupants or floor area"
    type_city = np.char.add(types.astype(str), "|" + cities.astype(str))
    return Intensities(per_capita, per_m2, rank_within(per_m2, types), rank_within(per_m2, type_city),
                       rank_within(per_capita, types), rank_within(per_capita, type_city), yoy, flag)
