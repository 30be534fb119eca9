"""InfluxDB 1.x backend over its HTTP API: ``/write`` line protocol and InfluxQL ``/query``.

Only the v1 endpoints are used, which InfluxDB 1.x, 2.x (with a DBRP
mapping) and 3.x all serve; the v2 client library cannot write to 1.x.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import numpy as np

from meterwatch.localtime import DAY, LOCAL_UTC_OFFSET_S
from meterwatch.store.aggregate import (
    COMBINABLE,
    Aggregate,
    columns_from_rows,
    combine,
    empty_result,
    merge_value,
    time_chunks,
)
from meterwatch.store.base import DeviceActivity, activity_from_rows
from meterwatch.store.changes import column_mark, marked
from meterwatch.store.errors import PermanentStoreError, TransientStoreError
from meterwatch.store.lineprotocol import bytes_of_text, encode_columns, line_list, reading_text
from meterwatch.store.records import Batch, ChangeMark, ReadingColumns, ReadingPoint, Record, Schema, attr_names

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Record)
LINES_PER_REQUEST = 10_000  # influxd takes bodies this big best (the ingest benchmark's store ceiling)
WRITES_IN_FLIGHT = 3  # requests of new readings at once: influxd works on one while the next is built and sent
# influxd refuses a request body over its [http] max-body-size (25,000,000 bytes by default) with HTTP 413.
MAX_BODY_BYTES = 10_000_000
DEVICES_PER_QUERY = 200  # an aggregate over named devices asks for this many in one query
AGGREGATE_CHUNK_S = 7 * 86_400  # the longest window one aggregate query reads (see InfluxStore.aggregate)


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_clause(start: int | None, end: int | None, unit: str = "s") -> list[str]:
    scale = 1 if unit == "s" else 1_000_000_000
    out = []
    if start is not None:
        out.append(f"time >= {int(start) * scale}{'s' if unit == 's' else ''}")
    if end is not None:
        out.append(f"time <= {int(end) * scale}{'s' if unit == 's' else ''}")
    return out


class InfluxStore:
    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 timeout_s: float = 30.0, max_body_bytes: int = MAX_BODY_BYTES,
                 writes_in_flight: int = WRITES_IN_FLIGHT) -> None:
        parts = urlsplit(url)
        scheme = "https" if parts.scheme in ("influxdbs", "influxdb+https") else "http"
        self.url = url
        self.base = f"{scheme}://{parts.hostname}:{parts.port or 8086}"
        self.database = parts.path.strip("/") or "meterwatch"
        user = user or parts.username
        password = password or parts.password
        self._headers = {"Authorization": aiohttp.encode_basic_auth(user, password or "")} if user else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_body_bytes = max_body_bytes
        self.writes_in_flight = writes_in_flight
        self.chunk_s = AGGREGATE_CHUNK_S
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the database if missing.  A writer that is not an admin (``GRANT ALL`` on the database, as
        docs/dashboards.md creates it) may not create databases: it checks that it reaches the admin's."""
        try:
            await self.query(f"CREATE DATABASE {quote_ident(self.database)}", method="POST", database=False)
        except PermanentStoreError as exc:
            if "not authorized" not in str(exc):
                raise
            await self.query("SHOW MEASUREMENTS LIMIT 1")  # raises if the database is missing or out of reach

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def _request(self, method: str, path: str, params: dict[str, str], data: bytes | None = None) -> Any:
        try:
            async with self._client().request(method, self.base + path, params=params, data=data) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TransientStoreError(f"InfluxDB unreachable at {self.base}: {exc!r}") from exc
        if status == 204:
            return None
        text = body.decode("utf-8", "replace")[:500]
        if status >= 500 or status == 429:
            raise TransientStoreError(f"InfluxDB {status}: {text}")
        if status >= 400:
            raise PermanentStoreError(f"InfluxDB {status}: {text}")
        return await asyncio.to_thread(_json, body) if body else None

    async def _write_lines(self, body: str, precision: str) -> None:
        params = {"db": self.database, "precision": precision}
        try:
            await self._request("POST", "/write", params, body.encode("utf-8"))
        except PermanentStoreError as exc:
            if "database not found" not in str(exc):
                raise
            await self.open()
            await self._request("POST", "/write", params, body.encode("utf-8"))

    async def write(self, batch: Batch) -> None:
        batch = marked(batch)  # its marks are the last rows group: written after the points
        if batch.reading_columns:  # first: a rewrite among the rows must come after the point it rewrites
            await self.write_new_readings(batch.reading_columns)
        for record_type, rows in batch.row_groups():
            schema = record_type.schema
            await self._write_all(line_list(schema, rows), schema.time_unit)

    async def write_new_readings(self, blocks: list[ReadingColumns]) -> None:
        """Readings held as columns, ``writes_in_flight`` requests at a time: each is a new point of its
        device (``ReadingColumns``), so no two requests hold the same point and their order does not matter.
        Each body's lines are built while the requests before it are in flight."""
        await self._write_at_once(reading_bodies(blocks, self.max_body_bytes), ReadingPoint.schema.time_unit)

    async def write_columns(self, record_type: type[Record], columns: dict[str, Any]) -> None:
        schema = record_type.schema
        await self._write_all(await asyncio.to_thread(encode_columns, schema, columns), schema.time_unit)
        if (mark := column_mark(record_type, columns)) is not None:
            await self._write_all(line_list(ChangeMark.schema, [mark]), ChangeMark.schema.time_unit)

    async def _write_all(self, lines: list[str], precision: str) -> None:
        for body in request_bodies(lines, self.max_body_bytes):
            await self._write_lines(body, precision)

    async def _write_at_once(self, bodies: Iterator[str], precision: str) -> None:
        """Bodies whose order does not matter, at most ``writes_in_flight`` in flight.  After a failure no
        body is started; the requests in flight are awaited, and a transient failure wins over a refusal
        (the caller spools the whole batch rather than bisecting it)."""
        in_flight: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []
        try:
            for body in bodies:
                in_flight.add(asyncio.create_task(self._write_lines(body, precision)))
                if len(in_flight) >= self.writes_in_flight:
                    done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    failures += [e for task in done if (e := task.exception()) is not None]
                    if failures:
                        break
            outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
            in_flight = set()
        finally:
            for task in in_flight:  # cancelled (shutdown): no request outlives the write
                task.cancel()
        failures += [e for e in outcomes if isinstance(e, BaseException)]
        if failures:
            raise next((e for e in failures if isinstance(e, TransientStoreError)), failures[0])

    async def query(self, q: str, *, method: str = "GET", database: bool = True,
                    epoch: str = "s") -> list[dict[str, Any]]:
        """Run InfluxQL; return the series of the first statement (raising on its error)."""
        params = {"q": q, "epoch": epoch}
        if database:
            params["db"] = self.database
        data = await self._request(method, "/query", params)
        result = (data or {}).get("results", [{}])[0]
        if "error" in result:
            raise PermanentStoreError(f"InfluxQL error: {result['error']} in: {q}")
        return result.get("series", [])

    async def fetch(self, record_type: type[R], *, start: int | None = None, end: int | None = None,
                    **equals: str) -> list[R]:
        schema = record_type.schema
        where = time_clause(start, end, schema.time_unit)
        where += [f"{quote_ident(k)} = {quote_string(v)}" for k, v in equals.items()]
        q = f"SELECT * FROM {quote_ident(schema.measurement)}"
        if where:
            q += " WHERE " + " AND ".join(where)
        series = await self.query(q, epoch=schema.time_unit)
        return [r for s in series for r in _records(record_type, schema, s)]

    async def aggregate(self, agg: Aggregate) -> dict[str, Any]:
        """Over a long window, a query per week (sums, counts, minima and maxima add up from parts): influxd
        holds a whole window's series in memory, and a year of a 240,000-device province would not fit."""
        if agg.devices is not None and not agg.devices:
            return empty_result(agg)
        if agg.sparse and agg.devices is None and not agg.bucket_s and \
                {f for f, _ in agg.values.values()} <= COMBINABLE:
            return await self._aggregate_points(agg)
        chunks = time_chunks(agg, self.chunk_s, LOCAL_UTC_OFFSET_S)
        if len(chunks) == 1:
            return await self._aggregate(agg)
        return combine(agg, [await self._aggregate(part) for part in chunks])

    async def _aggregate_points(self, agg: Aggregate) -> dict[str, Any]:
        """A sparse aggregate grouped here from its points' tags and fields, a local day at a time."""
        schema = agg.record_type.schema
        funcs = list(agg.values.values())
        columns = ", ".join(quote_ident(c) for c in dict.fromkeys([*agg.by, *(col for _, col in funcs)]))
        where = [f"{quote_ident(k)} = {quote_string(v)}" for k, v in agg.where.items()]
        shift = 1 if agg.closing else 0
        groups: dict[tuple, list[float]] = {}
        for part in time_chunks(agg, DAY, LOCAL_UTC_OFFSET_S):
            clauses = [f"time >= {part.start + shift}s", f"time < {part.end + shift}s", *where]
            q = f"SELECT {columns} FROM {quote_ident(schema.measurement)} WHERE {' AND '.join(clauses)}"
            for series in await self.query(q):
                at = {name: i for i, name in enumerate(series["columns"])}
                for values in series["values"]:
                    acc = groups.setdefault(tuple(values[at[k]] or "" for k in agg.by), [np.nan] * len(funcs))
                    for i, (func, col) in enumerate(funcs):
                        if (v := values[at[col]]) is not None:
                            acc[i] = merge_value(func, acc[i], 1.0 if func == "count" else float(v))
        return columns_from_rows(agg, [(*key, *acc) for key, acc in sorted(groups.items())])

    async def _aggregate(self, agg: Aggregate) -> dict[str, Any]:
        rows = []  # named devices: a few hundred a query (a query's length stays modest)
        for only in _device_filters(None if agg.devices is None else list(agg.devices)):
            rows += await self._aggregate_rows(agg, only)
        rows.sort(key=lambda r: tuple(r[:len(agg.by) + (1 if agg.bucket_s else 0)]))
        return columns_from_rows(agg, rows)

    async def _aggregate_rows(self, agg: Aggregate, only: list[str]) -> list[tuple[Any, ...]]:
        """Rows (by..., [bucket], values...) of one InfluxQL query; ``only``: conditions naming devices."""
        schema = agg.record_type.schema
        ql_func = {"sum": "sum({})", "min": "min({})", "max": "max({})", "count": "count({})",
                   "median": "median({})", "p95": "percentile({}, 95)"}
        selects = [ql_func[f].format(quote_ident(col)) + f" AS {quote_ident(alias)}"
                   for alias, (f, col) in agg.values.items()]
        shift = 1 if agg.closing else 0  # (b, b + bucket] is [b + 1 s, b + bucket + 1 s) on whole seconds
        where = [f"time >= {int(agg.start) + shift}s", f"time < {int(agg.end) + shift}s"]
        where += [f"{quote_ident(k)} = {quote_string(v)}" for k, v in agg.where.items()] + only
        group = [quote_ident(k) for k in agg.by]
        if agg.bucket_s:
            offset = (agg.bucket_s - LOCAL_UTC_OFFSET_S + shift) % agg.bucket_s
            group.insert(0, f"time({agg.bucket_s}s, {offset}s)")
        q = f"SELECT {', '.join(selects)} FROM {quote_ident(schema.measurement)} WHERE {' AND '.join(where)}"
        if group:
            q += " GROUP BY " + ", ".join(group)
        if agg.bucket_s:
            q += " fill(none)"
        rows = []
        for series in await self.query(q):
            tags = series.get("tags", {})
            for values in series["values"]:
                row = [tags.get(k, "") for k in agg.by]
                if agg.bucket_s:
                    row.append(values[0] - shift)
                rows.append((*row, *values[1:]))
        return rows

    async def count(self, record_type: type[Record]) -> int:
        schema = record_type.schema
        series = await self.query(f"SELECT count({quote_ident(schema.count_field)}) FROM {quote_ident(schema.measurement)}")
        return int(series[0]["values"][0][1]) if series else 0

    async def count_by(self, record_type: type[Record], tag: str, since: int) -> dict[str, int]:
        schema = record_type.schema
        where = " AND ".join(time_clause(since, None, schema.time_unit))
        series = await self.query(f"SELECT count({quote_ident(schema.count_field)}) FROM "
                                  f"{quote_ident(schema.measurement)} WHERE {where} GROUP BY {quote_ident(tag)}")
        return {s["tags"][tag]: int(s["values"][0][1]) for s in series}

    async def latest_readings(self, since: int, devices: list[str] | None = None,
                              until: int | None = None) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for only in _device_filters(devices):
            series = await self.query(f'SELECT last("register") FROM "reading" WHERE '
                                      f'{" AND ".join(time_clause(since, until) + only)} GROUP BY "device"')
            out.update({s["tags"]["device"]: (int(s["values"][0][0]), float(s["values"][0][1])) for s in series})
        return out

    async def neighbours(self, device: str, ts: int) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
        found = []
        for fn, op in (("last", "<="), ("first", ">")):
            series = await self.query(f'SELECT {fn}("register") FROM "reading" WHERE "device" = '
                                      f"{quote_string(device)} AND time {op} {int(ts)}s")
            found.append((int(series[0]["values"][0][0]), float(series[0]["values"][0][1])) if series else None)
        return found[0], found[1]

    async def device_activity(self, start: int, end: int, devices: list[str] | None = None) -> DeviceActivity:
        rows = []
        for only in _device_filters(devices):
            where = " AND ".join(time_clause(start, end) + only)
            last = await self.query(f'SELECT last("register") FROM "reading" WHERE {where} GROUP BY "device"')
            stats = await self.query(
                f'SELECT median("interval_s"), count("register") FROM "reading" WHERE {where} GROUP BY "device"')
            by_device = {s["tags"]["device"]: s["values"][0] for s in stats}
            rows += [(s["tags"]["device"], s["values"][0][0], by_device.get(s["tags"]["device"], [0, None, 0])[1],
                      by_device.get(s["tags"]["device"], [0, None, 0])[2]) for s in last]
        return activity_from_rows(sorted(rows))


def _device_filters(devices: list[str] | None) -> list[list[str]]:
    """WHERE conditions naming ``devices`` a few hundred at a time ([[]]: every device; []: none)."""
    if devices is None:
        return [[]]
    names = sorted(set(devices))
    return [["(" + " OR ".join(f'"device" = {quote_string(d)}' for d in names[i:i + DEVICES_PER_QUERY]) + ")"]
            for i in range(0, len(names), DEVICES_PER_QUERY)]


def request_bodies(lines: list[str], max_bytes: int, max_lines: int = LINES_PER_REQUEST) -> Iterator[str]:
    """Lines joined into request bodies of at most ``max_lines`` lines and ``max_bytes`` UTF-8 bytes.

    A line longer than ``max_bytes`` alone goes in a body of its own (the
    server will refuse it, and the caller's bisection isolates it).  A run of
    ``max_lines`` ASCII lines that fits is joined and checked once (the
    usual case); otherwise lines are counted one by one.
    """
    start = 0
    while start < len(lines):
        body = "\n".join(lines[start:start + max_lines])
        if len(body) < max_bytes and body.isascii():  # + 1: each line counts its newline
            yield body
            start += max_lines
            continue
        taken = _fitting(lines, start, max_bytes, max_lines)
        yield "\n".join(lines[start:start + taken])
        start += taken


def _fitting(lines: list[str], start: int, max_bytes: int, max_lines: int) -> int:
    """How many lines from ``start`` fit in one body (at least one)."""
    size = 0
    for taken, line in enumerate(lines[start:start + max_lines]):
        size += (len(line) if line.isascii() else len(line.encode("utf-8"))) + 1
        if taken and size > max_bytes:
            return taken
    return min(max_lines, len(lines) - start)


def reading_bodies(blocks: list[ReadingColumns], max_bytes: int, max_lines: int = LINES_PER_REQUEST
                   ) -> Iterator[str]:
    """Bodies of readings held as columns, built a body's worth of blocks at a time (lazily): the
    ``reading_text`` of at most ``max_lines`` rows is the body when it fits in ``max_bytes`` (the usual
    case), else its lines go through ``request_bodies``."""
    group: list[ReadingColumns] = []
    count = 0
    for block in blocks:
        if group and count + len(block) > max_lines:
            yield from _bodies_of(reading_text(group), count, max_bytes, max_lines)
            group, count = [], 0
        group.append(block)
        count += len(block)
    if group:
        yield from _bodies_of(reading_text(group), count, max_bytes, max_lines)


def _bodies_of(text: str, lines: int, max_bytes: int, max_lines: int) -> Iterator[str]:
    if not text:  # blocks without a row
        return
    if lines <= max_lines and len(text) < max_bytes and text.isascii():
        yield text
    else:
        yield from request_bodies(text.split("\n"), max_bytes, max_lines)


def _json(body: bytes) -> Any:
    return json.loads(body)


def _records(record_type: type[R], schema: Schema, series: dict[str, Any]) -> list[R]:
    columns = series["columns"]
    kinds: dict[str, str] = dict(schema.fields)
    kinds[schema.time_attr] = "int"
    names = attr_names(record_type)
    out = []
    for values in series["values"]:
        row = dict(zip(columns, values, strict=True))
        row[schema.time_attr] = row.pop("time")
        kwargs = {}
        for name in names:
            value = row.get(name)
            kind = kinds.get(name, "str")
            if kind == "bytes":
                value = bytes_of_text(value or "")
            elif name in schema.tags or (kind == "str" and value is not None):
                value = bytes_of_text(value).decode("utf-8") if value else ""
            elif kind == "int" and value is not None:
                value = int(value)
            elif kind == "float" and value is not None:
                value = float(value)
            kwargs[name] = value
        out.append(record_type(**kwargs))
    return out

