"""InfluxDB line protocol, encoded from record schemas.

Rules, from the InfluxDB 1.x line protocol reference ("Special characters"
and "Quoting", https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):

- measurement names escape comma and space with a backslash;
- tag keys, tag values and field keys escape comma, equals sign and space;
- string field values are double-quoted and escape double quote and backslash;
- line protocol does not support the newline character in tag or field values
  (a newline ends the point: whatever follows would be parsed as a new point,
  in any measurement it names);
- a tag value cannot end with a backslash: influxd 1.x reads it as escaping the
  separator after it and refuses the whole request ("invalid tag format").
  Other backslashes in tag values are kept literally (influxd only unescapes
  ``\\,``, ``\\=`` and ``\\ ``), which the property test in
  tests/store/test_lineprotocol.py checks against a real influxd.

Values line protocol cannot carry as they are (any non-printable character,
including newline, tab and NUL; a tag value ending with a backslash; text
that itself starts with ``b64:``) are stored as ``b64:`` + base64 of their
UTF-8, in tags and string fields alike: deterministic, lossless (``fetch``
decodes them), and obvious to a reader.  So one bad value never breaks a
batch or writes outside its own point.  ``meterwatch registry check``
refuses such values in the registry before they get here.
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


def tag_value(text: str) -> str:
    """A tag value as line protocol: escaped, or ``b64:`` text when line protocol cannot carry it."""
    if not _is_clean(text) or text.endswith("\\"):
        text = _b64(text.encode("utf-8", "replace"))
    return escape_tag(text)


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
    return _b64(payload)


def _b64(payload: bytes) -> str:
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
    return _quoted(text if _is_clean(text) or not text else _b64(text.encode("utf-8", "replace")))


def _prefix(schema: Schema, tag_names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """Measurement and tag set: empty tag values are left out (line protocol has no empty tag)."""
    return escape_measurement(schema.measurement) + "".join(
        f",{escape_tag(name)}={tag_value(value)}" for name, value in zip(tag_names, values, strict=True) if value)


def _field_keys(schema: Schema, present: Any = None) -> list[tuple[str, str, str]]:
    return [(escape_tag(name), name, kind) for name, kind in schema.fields if present is None or name in present]


def _fields(keys: list[tuple[str, str, str]], value_of: Any) -> str:
    return ",".join(f"{key}={encoded}" for key, name, kind in keys
                    if (encoded := encode_field(value_of(name), kind)) is not None)


def encode_point(schema: Schema, record: Any) -> str:
    return encode_lines(schema, [record])


def encode_lines(schema: Schema, records: Iterable[Any]) -> str:
    """Line protocol for records; the tag part is built once per distinct tag set (a batch repeats them)."""
    keys = _field_keys(schema)
    prefixes: dict[tuple[str, ...], str] = {}
    lines = []
    for record in records:
        tags = tuple(getattr(record, name) or "" for name in schema.tags)
        prefix = prefixes.get(tags)
        if prefix is None:
            prefix = prefixes[tags] = _prefix(schema, schema.tags, tags)
        fields = _fields(keys, lambda name: getattr(record, name))  # noqa: B023 - used at once
        lines.append(f"{prefix} {fields} {int(getattr(record, schema.time_attr))}")
    return "\n".join(lines)


def encode_columns(schema: Schema, columns: dict[str, Any]) -> list[str]:
    """Line protocol for columns of equal length (numpy arrays or lists); NaN / None fields left out.

    The tag part is built once per distinct tag set: a backfill writes
    thousands of rows per series.
    """
    n = len(columns[schema.time_attr])
    tag_names = tuple(name for name in schema.tags if name in columns)
    tag_cols = [columns[name] for name in tag_names]
    keys = _field_keys(schema, columns)
    prefixes: dict[tuple[str, ...], str] = {}
    times = columns[schema.time_attr]
    lines = []
    for i in range(n):
        tags = tuple(str(col[i]) for col in tag_cols)
        prefix = prefixes.get(tags)
        if prefix is None:
            prefix = prefixes[tags] = _prefix(schema, tag_names, tags)
        fields = _fields(keys, lambda name: _plain(columns[name][i]))  # noqa: B023 - used at once
        lines.append(f"{prefix} {fields} {int(times[i])}")
    return lines


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return None if value is None else (value.item() if hasattr(value, "item") else value)
