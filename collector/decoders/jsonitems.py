"""Shared mechanism of the JSON decoders: safe parsing, batch splitting, per-item validation.

Each JSON decoder only declares its pydantic item model, the key of its
batch list and how a valid item becomes a sample or weighing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError, ValidationInfo, field_validator

from collector import reasons
from collector.decoders.base import DecodeContext, Decoded, ItemReject
from meterwatch.text import has_control
from meterwatch.timestamps import check_range, parse_timestamp

M = TypeVar("M", bound=BaseModel)

Timestamp = Annotated[int, BeforeValidator(parse_timestamp)]


def _no_control(text: str) -> str:
    if has_control(text):
        raise ValueError(f"{text[:40]!r} holds a control character")
    return text


Text = Annotated[str, AfterValidator(_no_control)]  # every string field of an item: no control characters


class TimedItem(BaseModel):
    """Base of JSON items: a timestamp checked against the decode context's clock."""

    model_config = {"extra": "ignore", "frozen": True}
    ts: Timestamp

    @field_validator("ts")
    @classmethod
    def _in_range(cls, ts: int, info: ValidationInfo) -> int:
        ctx: DecodeContext = info.context["ctx"]
        return check_range(ts, ctx.now, ctx.future_tolerance_s)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def load_json(payload: bytes) -> tuple[Any, ItemReject | None]:
    try:
        return json.loads(payload, parse_constant=_refuse_constant), None
    except RecursionError:
        return None, ItemReject(reasons.MALFORMED_JSON, "JSON nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        return None, ItemReject(reasons.MALFORMED_JSON, f"not valid JSON: {str(exc)[:200]}")


def _reason_of(error: ValidationError, field_reasons: dict[str, str]) -> tuple[str, str]:
    first = error.errors(include_url=False)[0]
    loc = first["loc"][0] if first["loc"] else ""
    detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}"
                       for e in error.errors(include_url=False))
    return field_reasons.get(str(loc), reasons.INVALID_PAYLOAD), detail[:500]


def decode_items(
    payload: bytes,
    ctx: DecodeContext,
    model: type[M],
    batch_key: str,
    accept: Callable[[M, Decoded], ItemReject | None],
    field_reasons: dict[str, str],
) -> Decoded:
    """Parse a single item or ``{batch_key: [items]}`` and validate every item on its own."""
    out = Decoded()
    data, error = load_json(payload)
    if error:
        out.rejects.append(error)
        return out
    if isinstance(data, dict) and batch_key in data:
        items = data[batch_key]
        if not isinstance(items, list) or not items:
            out.rejects.append(ItemReject(reasons.INVALID_PAYLOAD, f"{batch_key!r} must be a non-empty list"))
            return out
        if len(items) > ctx.max_batch:
            out.rejects.append(ItemReject(reasons.OVERSIZED, f"{len(items)} items, limit {ctx.max_batch}"))
            return out
        whole = False
    else:
        items, whole = [data], True
    for index, item in enumerate(items):
        where = "" if whole else f"{batch_key}[{index}]: "
        try:
            valid = model.model_validate(item, context={"ctx": ctx})
        except ValidationError as exc:
            reason, detail = _reason_of(exc, field_reasons)
            out.rejects.append(ItemReject(reason, where + detail, _item_bytes(item, whole)))
            continue
        refused = accept(valid, out)
        if refused:
            out.rejects.append(ItemReject(refused.reason, where + refused.detail, _item_bytes(item, whole)))
    return out


def _item_bytes(item: Any, whole: bool) -> bytes | None:
    """The refused item of a batch as its own payload (encoded only when refused: the common case is not)."""
    return None if whole else json.dumps(item, ensure_ascii=False).encode("utf-8")
