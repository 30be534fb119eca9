"""One aggregation request, translated by each backend: how analytics pushes work down to the store.

``Aggregate(record_type, {"mnf": ("min", "consumption")}, by=("device",), where={"kind": "water"},
start=..., end=...)`` means "per device, the smallest consumption of water readings in [start, end)".
With ``bucket_s`` the rows are also split into time buckets aligned to local (China) midnight.
With ``closing`` the window is (start, end] and a bucket holds the readings that close an interval in it,
(b, b + bucket_s]: a reading stamped 08:00 with 15 minutes of consumption belongs to 07:00-08:00.
With ``devices`` only those devices' points count: rules ask the costly aggregates (a median, a
percentile, a month of days) only of the few devices a cheap first question left in doubt.
``sparse`` says each group holds few points: InfluxDB then reads the points and groups them itself,
since its cost grows with the groups (a quarter of a million weighing series: 25 s a day grouped,
2.5 s read).
Results come back as columns: numpy arrays for values, lists for group keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    devices: tuple[str, ...] | None = None  # only these devices (None: every device)
    sparse: bool = False  # few points a group (weighings per institution and category): a store may group them


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


COMBINABLE = frozenset({"sum", "count", "min", "max"})  # what parts of a window add up to (not median, p95)


def time_chunks(agg: Aggregate, chunk_s: int, offset_s: int) -> list[Aggregate]:
    """``agg`` split into windows of at most ``chunk_s`` whose edges (but the first and last) fall on local
    midnight (``offset_s``: seconds local time is ahead of UTC), so day and hour buckets never straddle two.
    One window when it is short, or when its values cannot be combined from parts."""
    funcs = {f for f, _ in agg.values.values()}
    splittable = funcs <= COMBINABLE and (not agg.bucket_s or 86_400 % agg.bucket_s == 0)
    if not splittable or agg.end - agg.start <= chunk_s or chunk_s % 86_400:
        return [agg]
    edges = [agg.start]
    edge = ((agg.start + offset_s) // 86_400 + 1) * 86_400 - offset_s  # the next local midnight
    edge += chunk_s - 86_400
    while edge < agg.end:
        edges.append(edge)
        edge += chunk_s
    edges.append(agg.end)
    return [replace(agg, start=a, end=b) for a, b in zip(edges, edges[1:], strict=False)]


def combine(agg: Aggregate, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The results of ``time_chunks`` as one: buckets side by side, ungrouped-by-time values combined per key
    (sums and counts added, min of mins, max of maxes; NaN only where no part had a value)."""
    parts = [p for p in parts if len(p[next(iter(agg.values))])]
    if not parts:
        return empty_result(agg)
    if len(parts) == 1:
        return parts[0]
    keys = list(agg.by) + (["bucket"] if agg.bucket_s else [])
    merged: dict[tuple, list[float]] = {}
    for part in parts:
        rows = zip(*(part[k] for k in keys), *(part[v] for v in agg.values), strict=True) if keys else \
            [tuple(part[v][0] for v in agg.values)]
        for row in rows:
            key, values = tuple(row[:len(keys)]), row[len(keys):]
            if key not in merged:
                merged[key] = [float(v) for v in values]
                continue
            old = merged[key]
            for i, (func, _) in enumerate(agg.values.values()):
                old[i] = merge_value(func, old[i], float(values[i]))
    ordered = sorted(merged) if keys else list(merged)
    out: dict[str, Any] = {}
    for i, name in enumerate(agg.by):
        out[name] = [k[i] for k in ordered]
    if agg.bucket_s:
        out["bucket"] = np.array([k[len(agg.by)] for k in ordered], dtype=np.int64)
    for i, name in enumerate(agg.values):
        out[name] = np.array([merged[k][i] for k in ordered], dtype=np.float64)
    return out


def merge_value(func: str, a: float, b: float) -> float:
    """Two parts' values of ``func`` as one (NaN: no value)."""
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return a + b if func in ("sum", "count") else (min(a, b) if func == "min" else max(a, b))
