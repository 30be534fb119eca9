"""One aggregation request, translated by each backend: how analytics pushes work down to the store.

``Aggregate(record_type, {"mnf": ("min", "consumption")}, by=("device",), where={"kind": "water"},
start=..., end=...)`` means "per device, the smallest consumption of water readings in [start, end)".
With ``bucket_s`` the rows are also split into time buckets aligned to local (China) midnight.
With ``closing`` the window is (start, end] and a bucket holds the readings that close an interval in it,
(b, b + bucket_s]: a reading stamped 08:00 with 15 minutes of consumption belongs to 07:00-08:00.
Results come back as columns: numpy arrays for values, lists for group keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from meterwatch.store.records import Record

Func = Literal["sum", "min", "max", "count", "median", "p95"]


@dataclass(frozen=True)
class Aggregate:
    record_type: type[Record]
    values: dict[str, tuple[Func, str]]
    start: int
    end: int
    by: tuple[str, ...] = ()
    where: dict[str, str] = field(default_factory=dict)
    bucket_s: int | None = None  # local-midnight-aligned buckets ("bucket" column: bucket start, Unix s)
    closing: bool = False  # (start, end] and (b, b + bucket_s]: readings belong to the interval they close


def empty_result(agg: Aggregate) -> dict[str, Any]:
    out: dict[str, Any] = {name: [] for name in agg.by}
    if agg.bucket_s:
        out["bucket"] = np.array([], dtype=np.int64)
    out.update({name: np.array([], dtype=np.float64) for name in agg.values})
    return out


def columns_from_rows(agg: Aggregate, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Rows ordered as (by..., [bucket], values...) to columns."""
    if not rows:
        return empty_result(agg)
    cols = list(zip(*rows, strict=True))
    out: dict[str, Any] = {}
    k = 0
    for name in agg.by:
        out[name] = ["" if v is None else str(v) for v in cols[k]]
        k += 1
    if agg.bucket_s:
        out["bucket"] = np.array(cols[k], dtype=np.int64)
        k += 1
    for name in agg.values:
        out[name] = np.array([np.nan if v is None else v for v in cols[k]], dtype=np.float64)
        k += 1
    return out


def columns_from_numpy(agg: Aggregate, columns: list[Any]) -> dict[str, Any]:
    """Result columns ordered as (by..., [bucket], values...), as numpy arrays (masked where NULL)."""
    if not columns or len(columns[0]) == 0:
        return empty_result(agg)
    out: dict[str, Any] = {}
    k = 0
    for name in agg.by:
        col = np.ma.filled(columns[k], "") if np.ma.isMaskedArray(columns[k]) else columns[k]
        out[name] = ["" if v is None else str(v) for v in col.tolist()]
        k += 1
    if agg.bucket_s:
        out["bucket"] = np.asarray(columns[k], dtype=np.int64)
        k += 1
    for name in agg.values:
        col = columns[k]
        out[name] = (np.ma.filled(col.astype(np.float64), np.nan) if np.ma.isMaskedArray(col)
                     else np.asarray(col, dtype=np.float64))
        k += 1
    if not agg.by and not agg.bucket_s and all(np.isnan(out[n]).all() for n in agg.values) and \
            list(agg.values.values())[0][0] != "count":
        return empty_result(agg)  # SQL's one row of NULLs over no rows: no result, as InfluxDB says
    return out
