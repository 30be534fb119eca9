"""The one record that flows through the collector: an MQTT message and what became of it.

Each stage fills in its part and none copies it: ``route`` the parsed topic,
device and decoder; ``decode`` the decoder's output; ``derive`` (and
``collector.late``) the points, duplicates and register flags; ``batch``
gathers the points of many messages into one store ``Batch``; after
``write``, ``acknowledge`` calls each message's ``ack``.  A message rejected
whole is ``settled``: later stages pass it by.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from collector.decoders import Decoded, Decoder
from collector.topics import UpTopic
from meterwatch.mqtt import Ack
from meterwatch.registry import Device
from meterwatch.store import Batch, ReadingPoint


def _no_ack() -> None:
    """Messages made outside an MQTT session (tests, benchmarks) have nothing to acknowledge."""


@dataclass(slots=True, eq=False)
class Message:
    topic: str
    payload: bytes
    ack: Ack = _no_ack
    arrived: float = 0.0  # the collector's clock when it arrived
    # route: the topic parsed once, the registry's device, the decoder of the topic's suffix
    up: UpTopic | None = None
    device: Device | None = None
    decoder: Decoder | None = None
    # decode
    decoded: Decoded | None = None
    # derive: what the store will receive, and what it will not
    out: Batch = field(default_factory=Batch)
    late: list[ReadingPoint] = field(default_factory=list)  # older than the window: placed from the store
    duplicates: int = 0  # the one count of duplicates: readings, weighings and frames already received
    flags: Counter[str] = field(default_factory=Counter)  # register anomalies of its readings
    unknown_cards: int = 0
    settled: bool = False  # rejected whole: nothing more to do until it is written and acknowledged

    @property
    def verdict(self) -> str:
        """What became of the message: ``stored`` (some data kept), ``duplicate``, ``rejected``, or ``""``."""
        out = self.out
        if out.readings or out.reading_columns or out.weighings or out.values or self.late:
            return "stored"
        return "duplicate" if self.duplicates else "rejected" if out.rejects else ""

    def start_over(self) -> None:
        """Forget whatever the stages made of it (before it is rejected whole)."""
        self.out, self.late, self.duplicates, self.flags, self.unknown_cards = Batch(), [], 0, Counter(), 0


def batch(messages: list[Message]) -> Batch:
    """The batch stage: the points and rejects of every message, in arrival order, as one write."""
    out = Batch()
    for m in messages:
        out.readings += m.out.readings
        out.reading_columns += m.out.reading_columns
        out.weighings += m.out.weighings
        out.values += m.out.values
        out.rejects += m.out.rejects
    return out
