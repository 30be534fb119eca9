"""DuckDB backend: the embedded default, one file, no server.

Tables are derived from the record schemas with the schema key as primary
key.  Batches are upserted from an Arrow table with InfluxDB's semantics:
a field written again overwrites, a field left out (NULL) keeps what was
stored.  So a repeat of a reading without its consumption cannot erase it.
DuckDB calls block, so they run in a worker thread behind one lock.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa

from meterwatch.localtime import LOCAL_UTC_OFFSET_S
from meterwatch.store.aggregate import Aggregate, columns_from_numpy, empty_result
from meterwatch.store.base import DeviceActivity, activity_from_rows
from meterwatch.store.changes import column_mark, marked
from meterwatch.store.errors import PermanentStoreError, TransientStoreError
from meterwatch.store.records import (
    RECORD_TYPES,
    Batch,
    ChangeMark,
    ReadingColumns,
    ReadingPoint,
    Record,
    attr_names,
)

R = TypeVar("R", bound=Record)
SQL_TYPES = {"str": "VARCHAR", "float": "DOUBLE", "int": "BIGINT", "bytes": "BLOB"}
ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "bytes": pa.binary()}


def _column_types(record_type: type[Record]) -> dict[str, str]:
    schema = record_type.schema
    kinds = dict(schema.fields)
    kinds[schema.time_attr] = "int"
    return {name: kinds.get(name, "str") for name in attr_names(record_type)}


def create_table_sql(record_type: type[Record]) -> str:
    schema = record_type.schema
    cols = ", ".join(f'"{n}" {SQL_TYPES[k]}' for n, k in _column_types(record_type).items())
    key = ", ".join(f'"{k}"' for k in schema.key)
    return f'CREATE TABLE IF NOT EXISTS "{schema.measurement}" ({cols}, PRIMARY KEY ({key}))'


def add_columns_sql(record_type: type[Record]) -> list[str]:
    """Statements that give an existing table the columns added to its record since it was created."""
    schema = record_type.schema
    return [f'ALTER TABLE "{schema.measurement}" ADD COLUMN IF NOT EXISTS "{n}" {SQL_TYPES[k]}'
            for n, k in _column_types(record_type).items() if n not in schema.key]


def upsert_sql(record_type: type[Record], source: str) -> str:
    schema = record_type.schema
    key = ", ".join(f'"{k}"' for k in schema.key)
    updates = ", ".join(f'"{n}" = COALESCE(EXCLUDED."{n}", "{n}")'
                        for n in attr_names(record_type) if n not in schema.key)
    return (f'INSERT INTO "{schema.measurement}" BY NAME SELECT * FROM {source} '
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}")


def to_arrow(record_type: type[Record], rows: list[Any]) -> pa.Table:
    """Rows to an Arrow table, keeping the last row of each key (DuckDB refuses two in one statement)."""
    schema = record_type.schema
    unique = list({tuple(getattr(r, k) for k in schema.key): r for r in rows}.values())
    types = _column_types(record_type)
    return pa.table({n: pa.array([getattr(r, n) for r in unique], type=ARROW_TYPES[k]) for n, k in types.items()})


def columns_to_arrow(blocks: list[ReadingColumns]) -> pa.Table:
    """Readings held as columns to the ``reading`` table's Arrow table (NaN consumption and -1 interval: NULL).

    Each device's times are strictly increasing across a batch's blocks, so no key repeats.
    """
    sizes = [len(block) for block in blocks]
    concat = lambda name: np.concatenate([getattr(block, name) for block in blocks])  # noqa: E731
    consumption, interval_s = concat("consumption"), concat("interval_s")
    tags = {name: pa.array(np.repeat(np.array([getattr(block, name) for block in blocks], dtype=object), sizes),
                           type=pa.string())
            for name in ("device", "institution", "city", "type", "kind")}
    n = sum(sizes)
    return pa.table({**tags, "ts": pa.array(concat("ts"), type=pa.int64()),
                     "register": pa.array(concat("register"), type=pa.float64()),
                     "consumption": pa.array(consumption, type=pa.float64(), mask=np.isnan(consumption)),
                     "interval_s": pa.array(interval_s, type=pa.int64(), mask=interval_s < 0),
                     "flag": pa.nulls(n, type=pa.string()), "source": pa.nulls(n, type=pa.string())})


def _upsert(con: duckdb.DuckDBPyConnection, record_type: type[Record], table: pa.Table) -> None:
    con.register("_incoming", table)
    try:
        con.execute(upsert_sql(record_type, "_incoming"))
    finally:
        con.unregister("_incoming")


class DuckStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url.removeprefix("duckdb://") or ":memory:"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def _run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            if self._con is None:
                raise TransientStoreError("store not open")
            try:
                return fn(self._con, *args)
            except duckdb.IOException as exc:
                raise TransientStoreError(f"DuckDB I/O error: {exc}") from exc
            except duckdb.Error as exc:
                raise PermanentStoreError(f"DuckDB refused: {exc}") from exc

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(self._run, fn, *args)

    async def open(self) -> None:
        def _open() -> None:
            with self._lock:
                if self._con is None:
                    if self.path != ":memory:":
                        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                    self._con = duckdb.connect(self.path)
                    self._con.execute("SET enable_progress_bar = false")
                for record_type in RECORD_TYPES:
                    self._con.execute(create_table_sql(record_type))
                    for statement in add_columns_sql(record_type):  # a table from before a field was added
                        self._con.execute(statement)
        await asyncio.to_thread(_open)

    async def close(self) -> None:
        def _close() -> None:
            with self._lock:
                if self._con is not None:
                    self._con.close()
                    self._con = None
        await asyncio.to_thread(_close)

    async def write(self, batch: Batch) -> None:
        batch = marked(batch)  # its marks, in the same transaction as the points
        tables = [(t, to_arrow(t, rows)) for t, rows in batch.row_groups()]
        if batch.reading_columns:  # first: a rewrite among the rows must come after the point it rewrites
            tables.insert(0, (ReadingPoint, columns_to_arrow(batch.reading_columns)))

        def _write(con: duckdb.DuckDBPyConnection) -> None:
            con.begin()
            try:
                for record_type, table in tables:
                    _upsert(con, record_type, table)
                con.commit()
            except Exception:
                con.rollback()
                raise
        await self._call(_write)

    async def write_columns(self, record_type: type[Record], columns: dict[str, Any]) -> None:
        types = _column_types(record_type)
        n = len(next(iter(columns.values())))
        table = pa.table({name: pa.array(columns[name], type=ARROW_TYPES[kind], from_pandas=True)
                          if name in columns else pa.nulls(n, type=ARROW_TYPES[kind]) for name, kind in types.items()})
        await self._call(_upsert, record_type, table)
        if (mark := column_mark(record_type, columns)) is not None:
            await self._call(_upsert, ChangeMark, to_arrow(ChangeMark, [mark]))

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return await self._call(lambda con: con.execute(query, params or []).fetchall())

    async def fetch(self, record_type: type[R], *, start: int | None = None, end: int | None = None,
                    **equals: str) -> list[R]:
        schema = record_type.schema
        names = attr_names(record_type)
        where, params = ["TRUE"], list[Any]()
        if start is not None:
            where.append(f'"{schema.time_attr}" >= ?')
            params.append(start * (1 if schema.time_unit == "s" else 1_000_000_000))
        if end is not None:
            where.append(f'"{schema.time_attr}" <= ?')
            params.append(end * (1 if schema.time_unit == "s" else 1_000_000_000))
        for k, v in equals.items():
            where.append(f'"{k}" = ?')
            params.append(v)
        cols = ", ".join(f'"{n}"' for n in names)
        rows = await self.sql(f'SELECT {cols} FROM "{schema.measurement}" WHERE {" AND ".join(where)} '
                              f'ORDER BY "{schema.time_attr}"', params)
        return [record_type(**dict(zip(names, row, strict=True))) for row in rows]

    async def aggregate(self, agg: Aggregate) -> dict[str, Any]:
        if agg.devices is not None and not agg.devices:
            return empty_result(agg)
        schema = agg.record_type.schema
        sql_func = {"sum": "sum({})", "min": "min({})", "max": "max({})", "count": "count({})",
                    "median": "median({})", "p95": "quantile_cont({}, 0.95)"}
        keys = [f'"{k}"' for k in agg.by]
        shift = 1 if agg.closing else 0  # (b, b + bucket]: shift by a second, as whole seconds allow
        scale = 1 if schema.time_unit == "s" else 1_000_000_000  # rejects are kept in nanoseconds
        seconds = f'"{schema.time_attr}"' if scale == 1 else f'("{schema.time_attr}" // {scale})'
        if agg.bucket_s:
            keys.append(f"(({seconds} + {LOCAL_UTC_OFFSET_S - shift}) // {agg.bucket_s}) * {agg.bucket_s} "
                        f"- {LOCAL_UTC_OFFSET_S}")
        selects = keys + [sql_func[f].format(f'"{col}"') for f, col in agg.values.values()]
        where = [f'"{schema.time_attr}" >= ?', f'"{schema.time_attr}" < ?']
        params: list[Any] = [(agg.start + shift) * scale, (agg.end + shift) * scale]
        for k, v in agg.where.items():
            where.append(f'"{k}" = ?')
            params.append(v)
        if agg.devices is not None:
            where.append('list_contains(?, "device")')
            params.append(list(agg.devices))
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))} ORDER BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
        query = f'SELECT {", ".join(selects)} FROM "{schema.measurement}" WHERE {" AND ".join(where)}{group}'
        columns = await self._call(lambda con: con.execute(query, params).fetchnumpy())  # columns, not tuples
        return columns_from_numpy(agg, list(columns.values()))

    async def count(self, record_type: type[Record]) -> int:
        rows = await self.sql(f'SELECT count(*) FROM "{record_type.schema.measurement}"')
        return int(rows[0][0])

    async def count_by(self, record_type: type[Record], tag: str, since: int) -> dict[str, int]:
        schema = record_type.schema
        scale = 1 if schema.time_unit == "s" else 1_000_000_000
        rows = await self.sql(f'SELECT "{tag}", count(*) FROM "{schema.measurement}" '
                              f'WHERE "{schema.time_attr}" >= ? GROUP BY 1', [since * scale])
        return {str(k): int(n) for k, n in rows}

    async def latest_readings(self, since: int, devices: list[str] | None = None,
                              until: int | None = None) -> dict[str, tuple[int, float]]:
        if devices is not None and not devices:
            return {}
        where, params = ["ts >= ?"], [since]
        if until is not None:
            where.append("ts <= ?")
            params.append(until)
        if devices is not None:
            where.append("list_contains(?, device)")
            params.append(devices)
        rows = await self.sql(f'SELECT device, max(ts), arg_max(register, ts) FROM reading WHERE {" AND ".join(where)} '
                              'GROUP BY device', params)
        return {d: (int(ts), float(reg)) for d, ts, reg in rows}

    async def neighbours(self, device: str, ts: int) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
        before = await self.sql("SELECT ts, register FROM reading WHERE device = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
                                [device, ts])
        after = await self.sql("SELECT ts, register FROM reading WHERE device = ? AND ts > ? ORDER BY ts LIMIT 1",
                               [device, ts])
        return _point(before), _point(after)

    async def device_activity(self, start: int, end: int, devices: list[str] | None = None) -> DeviceActivity:
        if devices is not None and not devices:
            return activity_from_rows([])
        only, params = ("", [start, end]) if devices is None else ("AND list_contains(?, device) ", [start, end, devices])
        rows = await self.sql('SELECT device, max(ts), median(interval_s), count(*) FROM reading '
                              f'WHERE ts BETWEEN ? AND ? {only}GROUP BY device ORDER BY device', params)
        return activity_from_rows(rows)


def _point(rows: list[tuple[Any, ...]]) -> tuple[int, float] | None:
    """(ts, register) of the first row, if any."""
    return (int(rows[0][0]), float(rows[0][1])) if rows else None
