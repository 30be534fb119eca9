"""Utility bills where the meters have nothing yet: a new deployment's first year.

``meterwatch import`` stores last year's bills (``bill``: institution, kind,
local month, quantity, yuan).  Bills stand in for the meters, never on top
of them:

- **cost so far** (``analytics.budget``): an institution's month of a kind,
  ended by ``at``, with no priced meter cost gets the bill's yuan;
- **own electricity price**: yuan per kWh of last year's electricity bills,
  for an institution with no priced use last year;
- **seasonal profile** (``analytics.inputs.type_profiles``): a type and kind
  without ``profile_min_days`` of last year's readings takes the monthly
  quantities billed to its institutions, each month spread evenly over its
  days.

Where both cover a month the meters win: a difference between the bill and
the meters is for the officer to verify, not to add up.
"""

from __future__ import annotations

from collections import defaultdict
import numpy as np

from meterwatch.localtime import DAY, local_date, month_bounds
from meterwatch.store import BillPoint, Store


async def fetch_bills(store: Store, start: int, end: int) -> list[BillPoint]:
    """Bills of the months starting in [start, end)."""
    if end <= start:
        return []
    return [b for b in await store.fetch(BillPoint, start=start, end=end - 1) if start <= b.ts < end]


def stand_in_yuan(bills: list[BillPoint], ids: list[str], kinds: tuple[str, ...], at: int,
                  metered: dict[tuple[str, str, int], float]) -> dict[str, np.ndarray]:
    """Per kind, each institution's billed yuan for the months ended by ``at`` that the meters left unpriced.

    ``metered`` maps (institution, kind, month start) to the priced meter cost of that month.
    """
    index = {i: k for k, i in enumerate(ids)}
    out = {kind: np.zeros(len(ids)) for kind in kinds}
    for b in bills:
        if (b.yuan is None or b.kind not in out or b.institution not in index or month_end(b.ts) > at
                or metered.get((b.institution, b.kind, b.ts), 0.0) > 0):
            continue
        out[b.kind][index[b.institution]] += b.yuan
    return out


def electricity_price(bills: list[BillPoint], ids: list[str]) -> np.ndarray:
    """Each institution's billed yuan per kWh (NaN without an electricity bill carrying both)."""
    index = {i: k for k, i in enumerate(ids)}
    yuan, kwh = np.zeros(len(ids)), np.zeros(len(ids))
    for b in bills:
        if b.kind == "electricity" and b.yuan is not None and b.institution in index and b.quantity > 0:
            yuan[index[b.institution]] += b.yuan
            kwh[index[b.institution]] += b.quantity
    with np.errstate(all="ignore"):
        return np.where(kwh > 0, yuan / kwh, np.nan)


def daily_profiles(bills: list[BillPoint], start: int, min_days: int) -> dict[tuple[str, str], np.ndarray]:
    """(type, kind) -> 365 daily quantities from the bills of the year starting at ``start``, where the
    billed months cover at least ``min_days`` days; a month's quantity spread evenly over its days."""
    monthly: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for b in bills:
        monthly[(b.type, b.kind)][b.ts] += b.quantity
    out: dict[tuple[str, str], np.ndarray] = {}
    for key, months in monthly.items():
        series = np.full(365, np.nan)
        for first, quantity in months.items():
            end = month_end(first)
            lo, hi = max(0, (first - start) // DAY), min(365, (end - start) // DAY)
            if hi > lo:
                series[lo:hi] = quantity / ((end - first) // DAY)
        if np.isfinite(series).sum() >= min_days:
            out[key] = np.where(np.isfinite(series), series, np.nanmean(series))
    return out


def month_end(first: int) -> int:
    """Local midnight ending the month that starts at ``first``."""
    day = local_date(first)
    return month_bounds(day.year, day.month)[1]
