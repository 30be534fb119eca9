"""InfluxDB line protocol, encoded from record schemas.

Escaping follows the InfluxDB 1.x reference: measurement names escape
comma and space; tag keys, tag values and field keys escape comma, equals
sign and space; string field values escape double quote and backslash.
Line protocol cannot carry a newline inside a value, so string fields with
control characters, and byte fields that are not clean UTF-8, are stored as
``b64:`` + base64: lossless, and obvious to a reader.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Any

from meterwatch.store.records import Schema

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})
B64_PREFIX = "b64:"


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_tag(text: str) -> str:
    return text.translate(_TAG)


def _is_clean(text: str) -> bool:
    return text.isprintable() and not text.startswith(B64_PREFIX)


def text_of_bytes(payload: bytes) -> str:
    """A payload as stored text: itself when clean UTF-8, else base64 with a prefix."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _is_clean(text):
        return text
    return B64_PREFIX + base64.b64encode(payload).decode("ascii")


def bytes_of_text(text: str) -> bytes:
    if text.startswith(B64_PREFIX):
        return base64.b64decode(text[len(B64_PREFIX):])
    return text.encode("utf-8")


def _quoted(text: str) -> str:
    return '"' + text.translate(_STRING) + '"'


def encode_field(value: Any, kind: str) -> str | None:
    """One field value in line protocol, or None when it must be left out (missing, NaN)."""
    if value is None:
        return None
    if kind == "float":
        value = float(value)
        if not math.isfinite(value):
            return None
        return repr(value)
    if kind == "int":
        return f"{int(value)}i"
    if kind == "bytes":
        return _quoted(text_of_bytes(value))
    text = str(value)
    return _quoted(text if _is_clean(text) or not text else text_of_bytes(text.encode("utf-8")))


def encode_point(schema: Schema, record: Any) -> str:
    tags = "".join(
        f",{escape_tag(name)}={escape_tag(value)}"
        for name in schema.tags
        if (value := getattr(record, name))
    )
    fields = ",".join(
        f"{escape_tag(name)}={encoded}"
        for name, kind in schema.fields
        if (encoded := encode_field(getattr(record, name), kind)) is not None
    )
    return f"{escape_measurement(schema.measurement)}{tags} {fields} {int(getattr(record, schema.time_attr))}"


def encode_lines(schema: Schema, records: Iterable[Any]) -> str:
    return "\n".join(encode_point(schema, r) for r in records)


def encode_columns(schema: Schema, columns: dict[str, Any]) -> list[str]:
    """Line protocol for columns of equal length (numpy arrays or lists); NaN / None fields left out.

    The tag part is built once per distinct tag set: a backfill writes
    thousands of rows per series.
    """
    n = len(columns[schema.time_attr])
    tag_cols = [(name, columns[name]) for name in schema.tags if name in columns]
    field_cols = [(escape_tag(name), kind, columns[name]) for name, kind in schema.fields if name in columns]
    prefixes: dict[tuple[str, ...], str] = {}
    times = columns[schema.time_attr]
    lines = []
    for i in range(n):
        key = tuple(str(col[i]) for _, col in tag_cols)
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = prefixes[key] = escape_measurement(schema.measurement) + "".join(
                f",{escape_tag(name)}={escape_tag(v)}" for (name, _), v in zip(tag_cols, key, strict=True) if v)
        fields = ",".join(f"{name}={enc}" for name, kind, col in field_cols
                          if (enc := encode_field(_plain(col[i]), kind)) is not None)
        lines.append(f"{prefix} {fields} {int(times[i])}")
    return lines


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return None if value is None else (value.item() if hasattr(value, "item") else value)
