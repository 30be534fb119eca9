"""JSON weighings on ``.../weighing``: one ``{ts, card, weight_kg}`` or ``{"weighings": [...]}``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, ItemReject, RawWeighing
from collector.decoders.jsonitems import Text, TimedItem, decode_items
from meterwatch.ids import ID_PATTERN

MAX_WEIGHT_KG = 5000.0  # a loaded 1,100 l bin is well under a tonne; beyond this is a fault


class WeighingItem(TimedItem):
    card: Annotated[Text, Field(pattern=f"^{ID_PATTERN.pattern}$")]
    weight_kg: Annotated[float, Field(strict=True, gt=0, le=MAX_WEIGHT_KG, allow_inf_nan=False)]


class JsonWeighingDecoder:
    suffix = "weighing"
    kinds = frozenset({"scale"})

    def decode(self, payload: bytes, ctx: DecodeContext) -> Decoded:
        def accept(item: WeighingItem, out: Decoded) -> ItemReject | None:
            out.weighings.append(RawWeighing(item.ts, item.card, item.weight_kg))
            return None

        return decode_items(payload, ctx, WeighingItem, "weighings", accept,
                            {"ts": reasons.BAD_TIMESTAMP, "weight_kg": reasons.BAD_VALUE, "card": reasons.INVALID_PAYLOAD})
