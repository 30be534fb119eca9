"""The store interface every backend implements, and what callers may rely on.

Contract (checked by tests/store/test_contract.py against every backend):

- ``open`` creates the database / tables when missing; calling it again is harmless.
- ``close`` is safe without ``open`` and safe twice.
- ``write`` is idempotent: a point is identified by its schema key (a
  reading by device and second), so writing it again leaves one point, the
  last written.  It raises ``TransientStoreError`` when retrying may help
  and ``PermanentStoreError`` when the data itself was refused.
- Query methods read only; times are Unix seconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from meterwatch.store.aggregate import Aggregate
from meterwatch.store.records import Batch, Record

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class DeviceActivity:
    """Per-device reporting facts over a window: the silent rule's input."""

    device: list[str]
    last_ts: np.ndarray  # float64, Unix seconds of the latest reading
    usual_interval_s: np.ndarray  # float64, median interval between readings (NaN if unknown)
    count: np.ndarray  # int64, readings in the window


class Store(Protocol):
    url: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # A store may set ``writes_in_flight`` > 1 (InfluxStore: 3): it takes concurrent writes, and the durable
    # writer then sends a batch's new readings while the batch before it is in flight.  Without it: one at a time.
    async def write(self, batch: Batch) -> None: ...

    async def write_columns(self, record_type: type[Record], columns: dict[str, Any]) -> None:
        """Bulk write of one record type as columns (numpy arrays or lists; NaN / None = no value).

        Same semantics as ``write``; for backfills of millions of rows.
        """
        ...

    async def fetch(self, record_type: type[R], *, start: int | None = None, end: int | None = None,
                    **equals: str) -> list[R]:
        """Records of one type, oldest first, optionally within [start, end] and matching tags."""
        ...

    async def count(self, record_type: type[Record]) -> int: ...

    async def aggregate(self, agg: Aggregate) -> dict[str, Any]:
        """Grouped aggregates over [start, end), as columns (see ``meterwatch.store.aggregate``)."""
        ...

    async def count_by(self, record_type: type[Record], tag: str, since: int) -> dict[str, int]:
        """Points since ``since`` per value of ``tag`` (e.g. rejects by reason)."""
        ...

    async def latest_readings(self, since: int, devices: list[str] | None = None,
                              until: int | None = None) -> dict[str, tuple[int, float]]:
        """device -> (ts, register) of its newest reading in [since, until] (of ``devices`` if given):
        the collector's baseline, and the silent rule's first question."""
        ...

    async def neighbours(self, device: str, ts: int) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
        """(ts, register) of the device's stored reading at or just before ``ts``, and just after it."""
        ...

    async def device_activity(self, start: int, end: int, devices: list[str] | None = None) -> DeviceActivity:
        """Per device (of ``devices`` if given) with readings in [start, end]: newest time, median interval,
        count; ordered by device."""
        ...


def activity_from_rows(rows: list[tuple[str, Any, Any, Any]]) -> DeviceActivity:
    """Shared shaping of (device, last_ts, median_interval, count) rows into arrays."""
    return DeviceActivity(
        device=[r[0] for r in rows],
        last_ts=np.array([r[1] for r in rows], dtype=np.float64),
        usual_interval_s=np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
        count=np.array([r[3] or 0 for r in rows], dtype=np.int64),
    )
