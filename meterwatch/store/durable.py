"""Any store plus a disk spool: ``write`` returns once the batch is durable in one or the other.

The one wrapper that gives every backend the same outage behaviour:
transient failures (down, slow, overloaded) divert batches to the spool,
a replay task drains the spool oldest-first when the store answers again,
and while anything is spooled new batches queue behind it, so the store
receives batches in the order they were made.  Permanent refusals are
raised to the caller, who knows what the data was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

from meterwatch.store.base import Store
from meterwatch.store.errors import PermanentStoreError, TransientStoreError
from meterwatch.store.records import Batch
from meterwatch.store.spool import DiskSpool, SpoolFull

log = logging.getLogger(__name__)


class DurableWriter:
    def __init__(self, store: Store, spool: DiskSpool, *, probe_interval_s: float = 2.0,
                 max_probe_interval_s: float = 15.0) -> None:
        self.store = store
        self.spool = spool
        self.probe_interval_s = probe_interval_s
        self.max_probe_interval_s = max_probe_interval_s
        self.spooled_batches = 0
        self.full_since: float | None = None
        self._changed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return len(self.spool) == 0

    async def write(self, batch: Batch, give_up: asyncio.Event | None = None) -> Literal["store", "spool"]:
        """Make ``batch`` durable; waits (backpressure) while the spool is full.

        Raises ``TransientStoreError`` only if ``give_up`` is set while waiting
        for room, and ``PermanentStoreError`` when the store refuses the data.
        """
        if self.healthy:
            try:
                await self.store.write(batch)
                return "store"
            except TransientStoreError as exc:
                log.warning("store unavailable; spooling to disk", extra={"error": str(exc)[:200]})
        while True:
            try:
                self.spool.append(batch)
                self.spooled_batches += 1
                self.full_since = None
                self._changed.set()
                return "spool"
            except SpoolFull as exc:
                if self.full_since is None or time.monotonic() - self.full_since > 10:
                    log.error("SPOOL FULL: holding back, not acknowledging, not consuming",
                              extra={"error": str(exc), "spool_bytes": self.spool.bytes})
                self.full_since = self.full_since or time.monotonic()
                if give_up is not None and give_up.is_set():
                    raise TransientStoreError(str(exc)) from exc
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=1.0)
                except TimeoutError:
                    pass

    async def replay_forever(self) -> None:
        """Drain the spool into the store, oldest first; runs until cancelled."""
        delay = self.probe_interval_s
        while True:
            item = self.spool.oldest()
            if item is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            path, batch = item
            try:
                await self.store.write(batch)
            except TransientStoreError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_probe_interval_s)
                continue
            except PermanentStoreError as exc:
                self.spool.quarantine(path, str(exc))
            else:
                self.spool.remove(path)
                if not len(self.spool):
                    log.info("spool drained; writing straight to the store again")
            delay = self.probe_interval_s
            self._changed.set()
