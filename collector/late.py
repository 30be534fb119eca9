"""The derive stage's second half: readings older than a device's history, placed from the store.

``Ingestor.derive`` leaves a reading older than what this process holds in
``Message.late``.  Its neighbours are in the store: the reading gets its
interval from the stored reading before it, and the stored reading after
it gets the rest of what used to be one interval, by the same arithmetic as
in memory (``collector.deltas.placed``).  A late reading already stored
with the same register is a duplicate of the message; with another, last
write wins.  The store being down keeps it without consumption rather than
guessed; any other failure does the same and is logged.
"""

from __future__ import annotations

from collector.deltas import placed, same_register
from collector.ingest import Ingestor
from collector.message import Message
from meterwatch.store import ReadingPoint, Store, TransientStoreError


async def place_late(ingestor: Ingestor, store: Store, messages: list[Message]) -> None:
    """Turn every message's late readings into points (or duplicates)."""
    for m in messages:
        late, m.late = m.late, []
        for reading in late:
            try:
                m.out.readings += await _placed(ingestor, store, m, reading)
            except Exception as exc:  # noqa: BLE001  (one reading must not stop ingestion)
                ingestor.log_summary.error("late readings kept without consumption: placing them failed",
                                           exc, reading.device)
                m.out.readings.append(reading)


async def _placed(ingestor: Ingestor, store: Store, m: Message, late: ReadingPoint) -> list[ReadingPoint]:
    try:
        before, after = await store.neighbours(late.device, late.ts)
    except TransientStoreError:
        return [late]  # store down: kept without consumption rather than guessed
    if before is not None and before[0] == late.ts:  # already stored: a retry older than our window
        if same_register(before[1], late.register):
            m.duplicates += 1
            return []
        ingestor.log_summary.note("late readings differing from the stored one; last write wins",
                                  late.device, f"{late.device} at {late.ts}: {before[1]} -> {late.register}")
        before, _ = await store.neighbours(late.device, late.ts - 1)
    device = ingestor.registry.devices[late.device]
    return [ingestor.point(device, p) for p in placed(before, late.ts, late.register, after, device.multiplier)]
