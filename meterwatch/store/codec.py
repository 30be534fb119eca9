"""Batches to bytes and back, for the disk spool: JSON, bytes fields as base64, types from the schemas."""

from __future__ import annotations

import base64
import json
from typing import Any

from meterwatch.store.records import RECORD_TYPES, Batch, Record, attr_names

_TYPES = {t.schema.measurement: t for t in RECORD_TYPES}


def _bytes_fields(record_type: type[Record]) -> set[str]:
    return {n for n, k in record_type.schema.fields if k == "bytes"}


def encode_batch(batch: Batch) -> bytes:
    doc: dict[str, list[list[Any]]] = {}
    for record_type, rows in batch.groups():
        names, binary = attr_names(record_type), _bytes_fields(record_type)
        doc[record_type.schema.measurement] = [
            [base64.b64encode(getattr(r, n)).decode() if n in binary else getattr(r, n) for n in names] for r in rows]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_batch(data: bytes) -> Batch:
    batch = Batch()
    for measurement, rows in json.loads(data).items():
        record_type = _TYPES[measurement]
        names, binary = attr_names(record_type), _bytes_fields(record_type)
        batch.rows_of(record_type).extend(
            record_type(**{n: base64.b64decode(v) if n in binary else v for n, v in zip(names, row, strict=True)})
            for row in rows)
    return batch
