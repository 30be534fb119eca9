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


class _Item(msgspec.Struct, gc=False):
    """``ReadingItem`` as msgspec types: a time as Unix seconds (int64), anything else goes item by item."""

    ts: int
    value: float
    seq: int | None = None
    unit: str | None = None


class _Batch(msgspec.Struct, gc=False):
    readings: list[_Item]


_BATCH = msgspec.json.Decoder(_Batch)


def decode_columns(payload: bytes, ctx: DecodeContext) -> SampleColumns | None:
    """The batch as columns when every item of it is valid; None when it needs the per-item path."""
    try:
        items = _BATCH.decode(payload).readings
    except (msgspec.DecodeError, RecursionError):
        return None  # not a batch msgspec takes: the per-item path says why, item by item
    if not items or len(items) > ctx.max_batch:
        return None
    unit = ctx.device.unit
    # A payload that does not spell the key, plainly or with an escape, names no unit: the usual case skips the look.
    if (b"unit" in payload or b"\\u" in payload) and any(item.unit not in (None, unit) for item in items):
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
