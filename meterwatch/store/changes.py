"""Writes that reach back into days gone by leave a mark (``ChangeMark``), whoever makes them.

Both stores call ``marked`` on every batch they write and ``column_mark``
on every block of columns, and write the marks after the points: a mark a
reader can see means its points are there.  Readings older than
``CHANGE_MARK_AGE_S`` when written count; what arrives on time (nearly
every reading) leaves none.  (Bills are few: analytics counts them.)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from meterwatch.store.records import Batch, ChangeMark, ReadingPoint, Record

CHANGE_MARK_AGE_S = 86_400  # a point older than this when written leaves a mark
MARKED: dict[type[Record], str] = {ReadingPoint: "reading"}


def marked(batch: Batch, now_ns: int | None = None) -> Batch:
    """``batch`` with a ``ChangeMark`` for its readings older than a day (``batch`` itself when none is)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    horizon = _horizon(now_ns)
    old = [p.ts for p in batch.readings if p.ts < horizon]
    blocks = [block.ts for block in batch.reading_columns if len(block.ts) and block.ts[0] < horizon]  # sorted
    if not (old or blocks):
        return batch  # the usual batch: nothing old, nothing to gather
    mark = _mark(ReadingPoint, np.concatenate([np.asarray(old, dtype=np.int64), *blocks]), now_ns)
    return dataclasses.replace(batch, changes=[*batch.changes, mark]) if mark else batch


def column_mark(record_type: type[Record], columns: dict[str, Any], now_ns: int | None = None) -> ChangeMark | None:
    """The mark a write of ``columns`` of ``record_type`` leaves, if any (``Store.write_columns``)."""
    if record_type not in MARKED:
        return None
    return _mark(record_type, np.asarray(columns[record_type.schema.time_attr], dtype=np.int64),
                 time.time_ns() if now_ns is None else now_ns)


def _horizon(now_ns: int) -> int:
    """Points before this (Unix seconds) are old when written at ``now_ns``."""
    return now_ns // 1_000_000_000 - CHANGE_MARK_AGE_S


def _mark(record_type: type[Record], ts: np.ndarray, now_ns: int) -> ChangeMark | None:
    """The mark of a write of points at ``ts`` (Unix seconds), if some are old."""
    old = ts[ts < _horizon(now_ns)]
    return ChangeMark(MARKED[record_type], now_ns, int(old.min()), len(old)) if len(old) else None
