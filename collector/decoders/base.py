"""The decoder role: payload bytes in, samples and rejects out, never an exception.

Contract: ``decode`` is pure (no I/O, no clock other than ``ctx.now``) and
total: any byte string yields samples, weighings or rejects with a reason.
A bad item inside a batch rejects that item only; the valid ones are kept.
Values are in the device's registry unit, before the multiplier.  A
payload without a time (a binary frame) stamps its samples with ``ctx.now``
and says so (``Decoded.stamped``), so that a redelivery can be recognised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from meterwatch.registry import Device


@dataclass(frozen=True, slots=True)
class DecodeContext:
    device: Device
    now: float
    future_tolerance_s: float
    max_batch: int
    # The devices of the topic's institution by protocol address (None: an address several share), to
    # which a frame decoder binds the frames a gateway forwarded for other meters (``Decoded.forwarded``).
    peers: Mapping[str, Device | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """One meter register value at one time, as the meter said it."""

    ts: int
    value: float


@dataclass(frozen=True, slots=True)
class RawWeighing:
    ts: int
    card: str
    weight_kg: float


@dataclass(frozen=True, slots=True)
class MeterValue:
    """A non-register quantity a frame carried (voltage, tariff register, valve state...)."""

    ts: int
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class ItemReject:
    reason: str
    detail: str
    payload: bytes | None = None  # the offending item; None means the whole message


@dataclass(frozen=True, slots=True)
class SampleColumns:
    """A batch of samples as columns, every one already valid (``collector.decoders.columnar``).

    In payload order: sorting, duplicates and consumption are the derive
    stage's (``DeviceHistory.extend``).
    """

    ts: np.ndarray  # int64 Unix seconds
    value: np.ndarray  # float64, in the device's unit, before the multiplier

    def samples(self) -> list[Sample]:
        return [Sample(t, v) for t, v in zip(self.ts.tolist(), self.value.tolist(), strict=True)]


@dataclass
class Decoded:
    samples: list[Sample] = field(default_factory=list)
    columns: SampleColumns | None = None  # a batch decoded as columns: its samples, when ``samples`` is empty
    weighings: list[RawWeighing] = field(default_factory=list)
    values: list[MeterValue] = field(default_factory=list)
    rejects: list[ItemReject] = field(default_factory=list)
    stamped: bool = False  # the payload carries no time: samples are stamped with ``ctx.now`` (binary frames)
    # What frames for other devices of the institution (``DecodeContext.peers``) carried, by device
    forwarded: dict[Device, Decoded] = field(default_factory=dict)

    def all_samples(self) -> list[Sample]:
        """Every sample, whether decoded one by one or as columns."""
        return self.samples + (self.columns.samples() if self.columns is not None else [])

    def add_reject(self, reason: str, detail: str) -> None:
        self.rejects.append(ItemReject(reason, detail))


class Decoder(Protocol):
    """One payload format on one topic suffix (``reading``, ``weighing``, ``frame/dlt645``...)."""

    suffix: str
    kinds: frozenset[str]  # device kinds this decoder accepts

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded: ...
