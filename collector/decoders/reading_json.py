"""JSON meter readings on ``.../reading``: one ``{ts, value}`` or ``{"readings": [...]}``.

Two paths, one contract.  A batch is first decoded as columns: msgspec
into typed structs, then the checks of ``ReadingItem`` (time within
bounds, value finite and not negative, unit the device's) as bounds
over the whole batch.  Only a batch that passes all of them
whole comes out as ``SampleColumns``; anything else (a single reading, a
bad item, a time as text, a ``seq`` as a string, JSON msgspec refuses) is
decoded again item by item with pydantic, which says for each bad item
why, exactly as it always has.  So the fast path decides nothing the
per-item path would decide differently: it only skips it when it would
find nothing to refuse.
"""

from __future__ import annotations

from math import isfinite
from typing import Annotated

import msgspec
import numpy as np
from pydantic import Field

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, ItemReject, Sample, SampleColumns
from collector.decoders.jsonitems import Text, TimedItem, decode_items
from meterwatch.const import METER_KINDS
from meterwatch.timestamps import EARLIEST

Register = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class ReadingItem(TimedItem):
    value: Register
    seq: int | None = None
    unit: Text | None = None


class _Bare(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """The usual item, a time (Unix seconds, int64) and a value and nothing else: it names no unit to check."""

    ts: int
    value: float


class _Item(msgspec.Struct, gc=False):
    """``ReadingItem`` as msgspec types, for items that carry more than ``_Bare``; anything else goes item by item."""

    ts: int
    value: float
    seq: int | None = None
    unit: str | None = None


class _BareBatch(msgspec.Struct, gc=False):
    readings: list[_Bare]


class _Batch(msgspec.Struct, gc=False):
    readings: list[_Item]


_BARE, _BATCH = msgspec.json.Decoder(_BareBatch), msgspec.json.Decoder(_Batch)


def _items(payload: bytes) -> tuple[list[_Bare] | list[_Item], bool] | None:
    """The batch's items, and whether they may name a unit; None when msgspec does not take the batch.

    Bare items first: a batch whose items carry anything more (a seq, a unit, its key spelled with
    escapes too, which msgspec reads as the key) fails that at its first item and is decoded again
    with those fields."""
    for decoder, may_name_units in ((_BARE, False), (_BATCH, True)):
        try:
            return decoder.decode(payload).readings, may_name_units
        except (msgspec.DecodeError, RecursionError):
            continue
    return None


def decode_columns(payload: bytes, ctx: DecodeContext) -> SampleColumns | None:
    """The batch as columns when every item of it is valid; None when it needs the per-item path."""
    if (decoded := _items(payload)) is None:
        return None  # not a batch msgspec takes: the per-item path says why, item by item
    items, may_name_units = decoded
    if not items or len(items) > ctx.max_batch:
        return None
    if may_name_units and any(item.unit not in (None, ctx.device.unit) for item in items):  # type: ignore[union-attr]
        return None
    ts, value = [item.ts for item in items], [item.value for item in items]
    # Bounds over the batch (a few numpy calls cost more than this for the usual four items).  The sum is
    # NaN or infinite if any value is: such a batch goes item by item, as does one whose sum alone overflows.
    if min(ts) < EARLIEST or max(ts) > ctx.now + ctx.future_tolerance_s or min(value) < 0 or not isfinite(sum(value)):
        return None
    return SampleColumns(np.array(ts, dtype=np.int64), np.array(value, dtype=np.float64))


class JsonReadingDecoder:
    suffix = "reading"
    kinds = METER_KINDS

    def __init__(self, columnar: bool = True) -> None:
        self.columnar = columnar  # False: every batch item by item (the reference the columnar path is tested against)

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded:
        if self.columnar and (columns := decode_columns(payload, ctx)) is not None:
            return Decoded(columns=columns)

        def accept(item: ReadingItem, out: Decoded) -> ItemReject | None:
            if item.unit is not None and item.unit != ctx.device.unit:
                return ItemReject(reasons.UNIT_MISMATCH,
                                  f"unit {item.unit!r} but device {ctx.device.id} counts {ctx.device.unit!r}")
            out.samples.append(Sample(item.ts, item.value))
            return None

        return decode_items(payload, ctx, ReadingItem, "readings", accept,
                            {"ts": reasons.BAD_TIMESTAMP, "value": reasons.BAD_VALUE, "unit": reasons.INVALID_PAYLOAD})
