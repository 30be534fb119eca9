"""Rule inputs gathered from the store, aligned with the registry's devices (the only I/O of analytics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meterwatch.const import METER_KINDS
from meterwatch.registry import Device, Registry
from meterwatch.store import Store


@dataclass(frozen=True)
class MeterActivity:
    devices: list[Device]
    last_ts: np.ndarray
    usual_interval_s: np.ndarray


async def meter_activity(store: Store, registry: Registry, start: int, end: int) -> MeterActivity:
    """Every registry meter, with NaN where the store has no reading in [start, end]."""
    activity = await store.device_activity(start, end)
    index = {d: i for i, d in enumerate(activity.device)}
    devices = sorted((d for d in registry.devices.values() if d.kind in METER_KINDS), key=lambda d: d.id)
    pick = np.array([index.get(d.id, -1) for d in devices], dtype=np.int64)
    found = pick >= 0
    last = np.full(len(devices), np.nan)
    interval = np.full(len(devices), np.nan)
    last[found] = activity.last_ts[pick[found]]
    interval[found] = activity.usual_interval_s[pick[found]]
    return MeterActivity(devices, last, interval)
