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
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np

from meterwatch.store.records import ReadingColumns, ReadingPoint, Schema

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
    """Measurement and tag set: empty tag values are left out (line protocol has no empty tag).

    Tags in the order of their escaped keys' bytes, the order influxd keeps them in: it sorts the tags
    of every line that comes otherwise (``scanKey`` in influxdb's models/points.go: a new key a line)."""
    tags = sorted((escape_tag(name), tag_value(value)) for name, value in zip(tag_names, values, strict=True) if value)
    return escape_measurement(schema.measurement) + "".join(f",{key}={value}" for key, value in tags)


def _field_keys(schema: Schema, present: Any = None) -> list[tuple[str, str, str]]:
    return [(escape_tag(name), name, kind) for name, kind in schema.fields if present is None or name in present]


def _fields(keys: list[tuple[str, str, str]], value_of: Any) -> str:
    return ",".join(f"{key}={encoded}" for key, name, kind in keys
                    if (encoded := encode_field(value_of(name), kind)) is not None)


def encode_point(schema: Schema, record: Any) -> str:
    return encode_lines(schema, [record])


PREFIXES_KEPT = 200_000  # tag sets remembered across batches (the province's series, and room to spare)
_prefixes: dict[tuple[str, tuple[Any, ...]], str] = {}


def _cached_prefix(schema: Schema, tags: tuple[Any, ...]) -> str:
    """The measurement and tag part of a line, built once per tag set for the process, not once per batch."""
    key = (schema.measurement, tags)
    prefix = _prefixes.get(key)
    if prefix is None:
        if len(_prefixes) >= PREFIXES_KEPT:
            _prefixes.clear()
        prefix = _prefixes[key] = _prefix(schema, schema.tags, tuple(value or "" for value in tags))
    return prefix


def encode_lines(schema: Schema, records: Iterable[Any]) -> str:
    return "\n".join(line_list(schema, records))


def line_list(schema: Schema, records: Iterable[Any]) -> list[str]:
    """Line protocol for records, one line each (the hot path of every write: kept flat)."""
    tags_of = attrgetter(*schema.tags) if schema.tags else (lambda _: ())
    if len(schema.tags) == 1:
        one = tags_of
        tags_of = lambda record: (one(record),)  # noqa: E731
    keys = [(f"{escape_tag(name)}=", kind) for name, kind in schema.fields]
    values_of = attrgetter(*(name for name, _ in schema.fields), schema.time_attr)
    isfinite, measurement = math.isfinite, schema.measurement
    lines = []
    for record in records:
        tags = tags_of(record)
        prefix = _prefixes.get((measurement, tags)) or _cached_prefix(schema, tags)
        *values, ts = values_of(record)
        parts = []
        for (key, kind), value in zip(keys, values):
            if value is None:
                continue
            if kind == "float":
                value = float(value)
                if isfinite(value):
                    parts.append(key + repr(value))
            elif kind == "int":
                parts.append(f"{key}{int(value)}i")
            else:
                parts.append(key + encode_field(value, kind))  # type: ignore[operator]  (not None: value is not)
        lines.append(f"{prefix} {','.join(parts)} {int(ts)}")
    return lines


def reading_text(blocks: Iterable[ReadingColumns]) -> str:
    """Line protocol for readings held as columns, one line a row joined by newlines: what ``line_list``
    makes of the same ``ReadingPoint``s, in the same order.

    All the blocks at once (a flush holds a thousand blocks of four readings),
    and without a string object per line: each row is five pieces of one
    ``join`` (tag part and ``register=``, register, ``,consumption=``,
    consumption, interval and time), the floats written in bulk by ``_reprs``
    and the interval-and-time piece looked up (``_IntervalTimes``: the meters
    of a province read at the same quarter-hours).  A row that is not the
    usual one (a device's first reading, a gap, an interval over 12 days, a
    value ``repr`` writes with an exponent) has its fields written on their own.
    """
    blocks = [block for block in blocks if len(block.ts)]
    if not blocks:
        return ""
    schema = ReadingPoint.schema
    starts = ["\n" + (_prefixes.get((schema.measurement, block.tags)) or _cached_prefix(schema, block.tags))
              + " register=" for block in blocks]
    ts, register, consumption, interval_s = (np.concatenate([getattr(block, name) for block in blocks]) for name in (
        "ts", "register", "consumption", "interval_s"))
    complete = np.isfinite(consumption) & (interval_s >= 0)  # readings with both
    bulk = np.where(complete, consumption, 0.0)
    usual = (complete & (interval_s < _IntervalTimes.INTERVALS) & (ts >= 0) & (ts < _IntervalTimes.TIMES)
             & _plain_decimals(register) & _plain_decimals(bulk))
    n = len(ts)
    pieces = [",consumption="] * (5 * n)
    pieces[0::5] = chain.from_iterable(map(repeat, starts, [len(block.ts) for block in blocks]))
    pieces[1::5] = _reprs(register)
    pieces[3::5] = _reprs(bulk)
    pieces[4::5] = map(_interval_times.__getitem__, _IntervalTimes.keys_of(interval_s, ts, usual))
    for i in np.flatnonzero(~usual).tolist():  # the fields after "register=" on their own
        pieces[5 * i + 1:5 * i + 5] = (_reading_fields(int(ts[i]), float(register[i]), float(consumption[i]),
                                                       int(interval_s[i])), "", "", "")
    pieces[0] = pieces[0][1:]  # no newline before the first line (cheaper than slicing the text)
    return "".join(pieces)


class _IntervalTimes(dict[int, str]):
    """``,interval_s=900i 1790035200``, what follows a usual row's consumption, made once per interval and
    time and looked up in C: the meters of a province report at the same quarter-hours, at a handful of
    intervals.  Keyed by one integer, the time shifted above the interval (under ``INTERVALS``)."""

    KEPT = 1 << 17
    SHIFT = 20
    INTERVALS = 1 << SHIFT  # 12 days: a longer gap's row is written on its own
    TIMES = 1 << (63 - SHIFT)  # and so is a time the key cannot hold (none in seconds since 1970)

    @classmethod
    def keys_of(cls, interval_s: np.ndarray, ts: np.ndarray, usual: np.ndarray) -> list[int]:
        return np.where(usual, (ts << cls.SHIFT) | interval_s, 0).tolist()  # 0: an unusual row, overwritten

    def __missing__(self, key: int) -> str:
        if len(self) >= self.KEPT:
            self.clear()
        piece = self[key] = f",interval_s={key & (self.INTERVALS - 1)}i {key >> self.SHIFT}"
        return piece


_interval_times = _IntervalTimes()


def _reading_fields(ts: int, register: float, consumption: float, interval_s: int) -> str:
    """A row's register value, the fields after it and its time; consumption NaN and interval_s < 0 (none)
    are left out."""
    fields = repr(register)
    if consumption == consumption and math.isfinite(consumption):
        fields += f",consumption={consumption!r}"
    if interval_s >= 0:
        fields += f",interval_s={interval_s}i"
    return f"{fields} {ts}"


_JSON = msgspec.json.Encoder()


def _plain_decimals(values: np.ndarray) -> np.ndarray:
    """Where a value is one that ``repr`` writes without an exponent (0, or 1e-4 <= |x| < 1e16)."""
    magnitude = np.abs(values)
    return (magnitude == 0) | ((magnitude >= 1e-4) & (magnitude < 1e16))


def _reprs(values: np.ndarray) -> list[str]:
    """``repr`` of each number, all at once: msgspec writes the same shortest round-trip digits as ``repr``
    (they differ only in exponents, which ``_plain_decimals`` keeps out) and the same integers, at a
    fraction of the cost."""
    return _JSON.encode(values.tolist())[1:-1].decode().split(",")


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
