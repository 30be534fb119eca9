"""Batches to bytes and back, for the disk spool: JSON, bytes fields as base64, types from the schemas."""

from __future__ import annotations

import base64
import json
from typing import Any

from meterwatch.store.records import RECORD_TYPES, Batch, attr_names

_GROUP_OF = {"reading": "readings", "weighing": "weighings", "meter_value": "values", "alert": "alerts",
             "reject": "rejects", "collector": "metrics", "statistic": "statistics"}
_TYPES = {t.schema.measurement: t for t in RECORD_TYPES}  # type: ignore[attr-defined]


def _bytes_fields(record_type: type) -> set[str]:
    return {n for n, k in record_type.schema.fields if k == "bytes"}  # type: ignore[attr-defined]


def encode_batch(batch: Batch) -> bytes:
    doc: dict[str, list[list[Any]]] = {}
    for record_type, rows in batch.groups():
        names, binary = attr_names(record_type), _bytes_fields(record_type)
        doc[record_type.schema.measurement] = [  # type: ignore[attr-defined]
            [base64.b64encode(getattr(r, n)).decode() if n in binary else getattr(r, n) for n in names] for r in rows]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_batch(data: bytes) -> Batch:
    batch = Batch()
    for measurement, rows in json.loads(data).items():
        record_type = _TYPES[measurement]
        names, binary = attr_names(record_type), _bytes_fields(record_type)
        getattr(batch, _GROUP_OF[measurement]).extend(
            record_type(**{n: base64.b64decode(v) if n in binary else v for n, v in zip(names, row, strict=True)})
            for row in rows)
    return batch
