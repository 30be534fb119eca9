"""The collector's own counters, as written to the ``collector`` measurement."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from meterwatch.store import CollectorSample


@dataclass
class CollectorMetrics:
    instance: str
    clock: Callable[[], float] = field(default=time.time, repr=False)  # the collector's clock
    received: int = 0
    acknowledged: int = 0  # messages acknowledged to the broker (after their batch was durable)
    stored: int = 0  # readings and weighings durable in the store
    rejected: int = 0
    duplicates: int = 0
    spooled: int = 0  # readings and weighings that went through the disk spool
    spool_bytes: int = 0  # what the spool holds now
    quarantined: int = 0  # records the store refused even one by one, kept on disk with the error
    unknown_cards: int = 0
    lag: float = 0.0  # seconds between the newest reading of the last batch and the write
    write_ms: float = 0.0  # duration of the last successful write
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    # Per message, what became of it: stored (some data kept), duplicate, rejected.  Every received
    # message lands in exactly one: received == acknowledged == sum(messages_by_outcome) when idle.
    messages_by_outcome: Counter[str] = field(default_factory=Counter)
    register_flags: Counter[str] = field(default_factory=Counter)  # rollover, replacement, bad_reading, jump
    last_message_at: float = 0.0  # the clock's time at start, then at each message
    connected: bool = False

    def __post_init__(self) -> None:
        self.last_message_at = self.clock()

    def idle_s(self, now: float) -> float:
        return max(0.0, now - self.last_message_at)

    def sample(self, now: float) -> CollectorSample:
        return CollectorSample(self.instance, int(now), self.received, self.stored, self.rejected,
                               self.duplicates, self.spooled, self.spool_bytes, self.lag, self.write_ms,
                               round(self.idle_s(now), 1), int(self.connected))

    def summary(self) -> dict[str, object]:
        return {"received": self.received, "acknowledged": self.acknowledged,
                "messages_by_outcome": dict(self.messages_by_outcome), "stored": self.stored, "rejected": self.rejected,
                "duplicates": self.duplicates, "spooled": self.spooled, "spool_bytes": self.spool_bytes,
                "quarantined": self.quarantined,
                "register_flags": dict(self.register_flags), "unknown_cards": self.unknown_cards,
                "lag_s": round(self.lag, 1), "write_ms": round(self.write_ms, 1),
                "idle_s": round(self.idle_s(self.clock()), 1), "connected": self.connected,
                "rejected_by_reason": dict(self.rejected_by_reason)}
