"""JSON meter readings on ``.../reading``: one ``{ts, value}`` or ``{"readings": [...]}``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, ItemReject, Sample
from collector.decoders.jsonitems import Text, TimedItem, decode_items
from meterwatch.const import METER_KINDS

Register = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class ReadingItem(TimedItem):
    value: Register
    seq: int | None = None
    unit: Text | None = None


class JsonReadingDecoder:
    suffix = "reading"
    kinds = METER_KINDS

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded:
        def accept(item: ReadingItem, out: Decoded) -> ItemReject | None:
            if item.unit is not None and item.unit != ctx.device.unit:
                return ItemReject(reasons.UNIT_MISMATCH,
                                  f"unit {item.unit!r} but device {ctx.device.id} counts {ctx.device.unit!r}")
            out.samples.append(Sample(item.ts, item.value))
            return None

        return decode_items(payload, ctx, ReadingItem, "readings", accept,
                            {"ts": reasons.BAD_TIMESTAMP, "value": reasons.BAD_VALUE, "unit": reasons.INVALID_PAYLOAD})
