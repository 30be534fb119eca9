"""Any store plus a disk spool: ``write`` returns once the batch is durable, whatever the store says.

The one wrapper that gives every backend the same outage behaviour:
transient failures (down, slow, overloaded) divert batches to the spool,
a replay task drains the spool oldest-first when the store answers again,
and while anything is spooled new batches queue behind it, so the store
receives batches in the order they were made.  A batch written while the
one before it is in flight (``write(..., after=)``) sends only its new
readings ahead (a store with ``writes_in_flight`` > 1); the rest waits for
that batch, and goes to the spool whole if that batch did.

A batch the store refuses is retried in halves (bisection) until each
refused record stands alone, so the good records are stored.  Refused data
records become dead letters (the caller says how, ``dead_letters``); what
the store refuses even then (a dead letter, a reject, a metric) goes to the
quarantine on disk with the store's error.  A disk without room (spool
bound or ENOSPC) is backpressure: ``write`` waits, says so every few
seconds, and carries on when room returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from meterwatch.aio import wait_set
from meterwatch.store.base import Store
from meterwatch.store.errors import PermanentStoreError, TransientStoreError
from meterwatch.store.records import Batch, RejectRecord
from meterwatch.store.spool import DiskSpool, Quarantine, SpoolFull

log = logging.getLogger(__name__)
SAY_AGAIN_S = 5.0  # backpressure is logged at most this often
DeadLetters = Callable[[Batch, str], list[RejectRecord]]
Refusal = tuple[Batch, str]  # records the store refused one by one, and its error


@dataclass
class Written:
    """Where a batch went: ``refused`` data records became ``dead_letters``; ``quarantined`` counts records on disk."""

    where: Literal["store", "spool"]
    refused: Batch = field(default_factory=Batch)
    dead_letters: list[RejectRecord] = field(default_factory=list)
    quarantined: int = 0


def halves(batch: Batch) -> tuple[Batch, Batch]:
    """A batch of two or more records in two, record types kept apart where they can be."""
    batch = batch.expanded()
    flat = [(rows, r) for _, rows in batch.groups() for r in rows]
    names = {id(rows): name for name, rows in vars(batch).items()}
    parts = (Batch(), Batch())
    for i, (rows, record) in enumerate(flat):
        getattr(parts[i >= len(flat) // 2], names[id(rows)]).append(record)
    return parts


def measured_data(batch: Batch) -> Batch:
    """The records that can be dead-lettered: measured data (readings, weighings, meter values)."""
    return Batch(readings=batch.readings, weighings=batch.weighings, values=batch.values,
                 reading_columns=batch.reading_columns)


def _merge(into: Batch, other: Batch) -> None:
    for name, rows in vars(other).items():
        getattr(into, name).extend(rows)


class DurableWriter:
    def __init__(self, store: Store, spool: DiskSpool, quarantine: Quarantine, *,
                 dead_letters: DeadLetters | None = None, probe_interval_s: float = 2.0,
                 max_probe_interval_s: float = 15.0) -> None:
        self.store = store
        self.spool = spool
        self.quarantine = quarantine
        self.dead_letters = dead_letters or (lambda refused, error: [])
        self.probe_interval_s = min(probe_interval_s, max_probe_interval_s)
        self.max_probe_interval_s = max_probe_interval_s
        self.quarantined = 0  # records
        self.full_since: float | None = None
        self._said_at = 0.0
        self._changed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return len(self.spool) == 0

    async def write(self, batch: Batch, give_up: asyncio.Event | None = None,
                    after: asyncio.Future | None = None) -> Written:
        """Make ``batch`` durable; waits (backpressure) while the disk has no room for the spool.

        While nothing is spooled the store is tried first, and again after each wait for room: a
        batch larger than the spool may ever hold is stored once the store is back.  Raises
        ``TransientStoreError`` only if ``give_up`` is set while waiting for room.

        ``after``: the previous batch's write, still in flight; this one returns only after it.
        Meanwhile only the batch's new readings (``ahead``) go to the store; the rest once it is done.
        """
        rest = batch if after is None else await self._ahead(batch, after)
        said = False
        while True:
            if self.healthy:
                try:
                    refusals = await self._bisect(rest)
                except TransientStoreError as exc:
                    if not said:
                        log.warning("store unavailable; spooling to disk", extra={"error": str(exc)[:200]})
                        said = True
                else:
                    if self.full_since is not None:
                        log.warning("store back: the batch the spool had no room for is stored",
                                    extra={"held_back_s": round(time.monotonic() - self.full_since, 1)})
                        self.full_since = None
                    written = Written("store")
                    await self._settle(refusals, written, give_up)
                    return written
            try:
                self.spool.append(batch)
            except SpoolFull as exc:
                await self._wait_for_room(exc, give_up)
                continue
            self._room_again()
            self._changed.set()
            return Written("spool")

    async def _ahead(self, batch: Batch, after: asyncio.Future) -> Batch:
        """Write the batch's readings held as columns while the previous batch is in flight, then wait for it;
        what is left to write.

        Those readings are new points of their devices (newer than any point of theirs before), so no
        record in flight can rewrite them nor be rewritten by them.  The rows (rewrites among them) must
        follow the previous batch, so they wait for it.  If this early write fails, or the previous
        batch went to the spool, the whole batch takes the ordinary path (writing a stored point again
        is harmless: same point, same value), so the spool keeps the order in which batches were made.
        """
        early = self.healthy and bool(batch.reading_columns) and getattr(self.store, "writes_in_flight", 1) > 1
        if early:
            try:
                await self.store.write(Batch(reading_columns=batch.reading_columns))
            except (TransientStoreError, PermanentStoreError):
                early = False
        await asyncio.wait({after})  # its outcome (and failure) is its own writer's to report
        return replace(batch, reading_columns=[]) if early and self.healthy else batch

    async def _bisect(self, batch: Batch) -> list[Refusal]:
        """Write ``batch``; what the store refuses is retried in halves down to single records."""
        try:
            await self.store.write(batch)
            return []
        except PermanentStoreError as exc:
            if len(batch) <= 1:
                return [(batch.expanded(), str(exc))]
        first, second = halves(batch)
        return await self._bisect(first) + await self._bisect(second)

    async def _settle(self, refusals: list[Refusal], written: Written, give_up: asyncio.Event | None) -> None:
        """Refused data becomes dead letters; what cannot be stored even so is quarantined with the error."""
        if not refusals:
            return
        for refused, error in refusals:
            data = measured_data(refused)
            letters = self.dead_letters(data, error) if data else []
            if letters:
                _merge(written.refused, data)
                written.dead_letters += letters
            else:
                await self._quarantine(refused, error, written, give_up)
        if written.dead_letters:
            letters_batch = Batch(rejects=list(written.dead_letters))
            try:
                again = await self._bisect(letters_batch)
            except TransientStoreError as exc:
                again = [(letters_batch, f"store unavailable for dead letters: {exc}")]
            for refused, error in again:
                await self._quarantine(refused, error, written, give_up)
        log.error("store refused records: the rest of the batch is stored, refused data dead-lettered",
                  extra={"refused": len(refusals), "dead_letters": len(written.dead_letters),
                         "quarantined": written.quarantined, "error": refusals[0][1][:300]})

    async def _quarantine(self, batch: Batch, error: str, written: Written, give_up: asyncio.Event | None) -> None:
        await self._with_room(lambda: self.quarantine.put(batch, error), give_up)
        written.quarantined += len(batch)
        self.quarantined += len(batch)

    async def _with_room(self, put: Callable[[], object], give_up: asyncio.Event | None) -> None:
        """Run ``put`` (a disk write) until the disk takes it: backpressure, never a drop."""
        while True:
            try:
                put()
            except SpoolFull as exc:
                await self._wait_for_room(exc, give_up)
            else:
                self._room_again()
                return

    async def _wait_for_room(self, exc: SpoolFull, give_up: asyncio.Event | None) -> None:
        """One wait (at most a second, less if the spool changes) for the disk to have room."""
        self._holding_back(exc)
        if give_up is not None and give_up.is_set():
            raise TransientStoreError(str(exc)) from exc
        self._changed.clear()
        await wait_set(self._changed, 1.0)

    def _room_again(self) -> None:
        if self.full_since is not None:
            log.warning("disk accepts again; acknowledging and consuming",
                        extra={"held_back_s": round(time.monotonic() - self.full_since, 1)})
        self.full_since = None

    def _holding_back(self, exc: SpoolFull) -> None:
        now = time.monotonic()
        self.full_since = self.full_since or now
        if now - self._said_at >= SAY_AGAIN_S:
            self._said_at = now
            log.error("disk cannot take the spool: holding back, not acknowledging, not consuming",
                      extra={"error": str(exc), "spool_bytes": self.spool.bytes,
                             "held_back_s": round(now - self.full_since, 1)})

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
                refusals = await self._bisect(batch)
            except TransientStoreError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_probe_interval_s)
                continue
            await self._settle(refusals, Written("store"), None)
            self.spool.remove(path)
            if not len(self.spool):
                log.info("spool drained; writing straight to the store again")
            delay = self.probe_interval_s
            self._changed.set()
