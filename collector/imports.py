"""``meterwatch import``: last year's readings and bills from an office's CSV or xlsx file.

Readings go through the collector's own stages (``collector.ingest``): the
registry (device, kind), the JSON reading decoder's checks (time range,
value, unit) and the device's history, so an imported reading gets its
consumption and register flags exactly as a live one.  The history is the
store's: per device, the stored reading before the file's first, those
within the file's span and the one after its last, so the reading after an
imported one is rewritten by the same arithmetic (``collector.deltas``).
A reading already stored for that second is a duplicate: importing a file
twice stores it once.  Imported readings carry ``source`` = the file name.

Bills (institution, month, kind, quantity, yuan) become ``bill`` points,
identified by institution, kind and month.  Every refused row is reported
as ``where: reason: detail``; the valid rows are stored all the same.
"""

from __future__ import annotations

import json
import math
import time
from array import array
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from collector import reasons
from collector.deltas import DeviceHistory
from collector.ingest import Ingestor
from collector.late import place_late
from collector.message import Message
from collector.tables import Row, Table, read_tables
from meterwatch.const import METER_KINDS, UP_PREFIX
from meterwatch.localtime import CHINA, midnight_of
from meterwatch.registry import Device, Registry
from meterwatch.settings import Settings
from meterwatch.store import Batch, BillPoint, ReadingPoint, RejectRecord, Store
from meterwatch.timestamps import parse_local_time, parse_timestamp

WRITE_CHUNK = 20_000  # points per store write
UNKNOWN_INSTITUTION = "unknown_institution"


@dataclass
class ImportReport:
    rows: int = 0
    stored: int = 0  # readings or bills of the file written
    rewritten: int = 0  # stored readings after an imported one whose consumption was recomputed
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)  # "where: reason: detail", one per refused row
    rejects: list[RejectRecord] = field(default_factory=list)  # the same rows, kept in the store's ``reject``
    _last_ns: int = field(default=0, repr=False)  # rejects are keyed by their nanosecond: unique, increasing

    def refuse(self, where: str, reason: str, detail: str, cells: dict[str, Any] | None = None,
               device: Device | None = None) -> None:
        """A refused row: reported as ``where: reason: detail`` and kept as a reject (the row's cells as
        JSON, no topic: ``meterwatch rejects replay`` leaves it; importing the corrected file retries it)."""
        self.problems.append(f"{where}: {reason}: {detail}")
        payload = json.dumps({k: cell_text(v) for k, v in (cells or {}).items()}, ensure_ascii=False).encode()
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        self.rejects.append(RejectRecord(self._last_ns, reason, "", payload, f"{where}: {detail}"[:500],
                                         device.institution if device else "", device.id if device else ""))

    def summary(self, name: str, dry_run: bool) -> str:
        verb = "would store" if dry_run else "stored"
        return (f"{name}: {self.rows} rows, {verb} {self.stored}, {self.rewritten} following readings recomputed, "
                f"{self.duplicates} already stored, {len(self.problems)} refused")


class RowError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


async def import_file(path: Path, registry: Registry, settings: Settings, store: Store,
                      dry_run: bool = False) -> ImportReport:
    """Check and store every valid row of ``path`` (``BadFile`` when it cannot be read as a table)."""
    report = ImportReport()
    for table in read_tables(path):
        for where, problem in table.problems:
            report.refuse(where, reasons.INVALID_PAYLOAD, problem)
        report.rows += len(table.rows) + len(table.problems)
        if table.kind == "readings":
            batch = await _readings(table, path.name, registry, settings, store, report)
        else:
            batch = _bills(table, path.name, registry, report)
        if not dry_run:
            await _write(store, batch)
    if not dry_run:
        await _write(store, Batch(rejects=report.rejects))
    return report


async def _write(store: Store, batch: Batch) -> None:
    for name in ("readings", "bills", "rejects"):
        rows = getattr(batch, name)
        for start in range(0, len(rows), WRITE_CHUNK):
            await store.write(Batch(**{name: rows[start:start + WRITE_CHUNK]}))


# -- cells ----------------------------------------------------------------------------------------

def cell_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def cell_time(value: Any) -> int:
    """Unix seconds of a time cell: a spreadsheet datetime (local when naive), Unix seconds or text."""
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=CHINA)).timestamp())
    if isinstance(value, date):
        return midnight_of(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_timestamp(value)
    return parse_local_time(cell_text(value))


def cell_number(value: Any, what: str, reason: str, optional: bool = False) -> float | None:
    """A finite, non-negative number (``None`` for an empty optional cell)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = cell_text(value).replace(",", "")
        if not text and optional:
            return None
        try:
            number = float(text)
        except ValueError:
            raise RowError(reason, f"{what} {text[:40]!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise RowError(reason, f"{what} {number!r} is not a finite number >= 0")
    return number


def cell_month(value: Any) -> int:
    """Local midnight starting the month of ``2025-10``, ``2025/10``, ``2025年10月`` or a date."""
    if isinstance(value, datetime | date):
        return midnight_of(date(value.year, value.month, 1))
    text = cell_text(value).replace("年", "-").replace("月", "").replace("/", "-")
    parts = text.split("-")
    try:
        year, month = int(parts[0]), int(parts[1])
        return midnight_of(date(year, month, 1))
    except (ValueError, IndexError):
        raise RowError(reasons.BAD_TIMESTAMP, f"month {cell_text(value)[:40]!r} is not a month such as 2025-10") from None


# -- readings -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Reading:
    ts: int
    value: float
    where: str


def _parse_reading(row: Row, registry: Registry) -> tuple[Device, _Reading]:
    device_id = cell_text(row.cells["device"])
    device = registry.devices.get(device_id)
    if device is None:
        raise RowError(reasons.UNKNOWN_DEVICE, f"device {device_id[:40]!r} is not in the registry")
    try:
        ts = cell_time(row.cells["time"])
    except ValueError as exc:
        raise RowError(reasons.BAD_TIMESTAMP, str(exc)) from None
    value = cell_number(row.cells["register"], "register", reasons.BAD_VALUE)
    assert value is not None
    return device, _Reading(ts, value, row.where)


async def stored_history(store: Store, device: Device, first: int, last: int, room: int) -> DeviceHistory:
    """The device's stored readings around [first, last] as a history that the import continues."""
    before, _ = await store.neighbours(device.id, first - 1)
    _, after = await store.neighbours(device.id, last)
    inside = await store.fetch(ReadingPoint, start=first, end=last, device=device.id)
    good = [(r.ts, r.register) for r in inside if r.flag != "bad_reading"]
    known = ([before] if before else []) + good + ([after] if after else [])
    return DeviceHistory(len(known) + room + 1, array("q", [t for t, _ in known]), array("d", [r for _, r in known]),
                         known_from=before[0] if before else float("-inf"), multiplier=device.multiplier,
                         _bad={r.ts for r in inside if r.flag == "bad_reading"})


async def _readings(table: Table, source: str, registry: Registry, settings: Settings, store: Store,
                    report: ImportReport) -> Batch:
    by_device: dict[str, list[_Reading]] = defaultdict(list)
    cells: dict[str, dict[str, Any]] = {}  # where -> the row, for the rejects
    for row in table.rows:
        try:
            device, reading = _parse_reading(row, registry)
        except RowError as exc:
            report.refuse(row.where, exc.reason, str(exc), row.cells)
            continue
        by_device[device.id].append(reading)
        cells[row.where] = row.cells
    ingestor = Ingestor(registry, settings.collector)
    out = Batch()
    for device_id, readings in by_device.items():
        device = registry.devices[device_id]
        readings.sort(key=lambda r: r.ts)
        ingestor.histories[device_id] = await stored_history(store, device, readings[0].ts, readings[-1].ts,
                                                             len(readings))
        topic = f"{UP_PREFIX}/{device.institution}/{device.id}/reading"
        messages = [Message(topic, json.dumps({"ts": r.ts, "value": r.value}).encode()) for r in readings]
        ingestor.process(messages)
        await place_late(ingestor, store, messages)
        following: dict[int, ReadingPoint] = {}  # stored readings recomputed: the last computation is right
        for m, r in zip(messages, readings, strict=True):
            for bad in m.out.rejects:
                report.refuse(r.where, bad.reason, bad.detail, cells[r.where], device)
            report.duplicates += m.duplicates
            for p in m.out.readings:
                if p.ts == r.ts:
                    out.readings.append(replace(p, source=source))
                    report.stored += 1
                else:
                    following[p.ts] = p
        out.readings += following.values()
        report.rewritten += len(following)
    return out


# -- bills ----------------------------------------------------------------------------------------

def _parse_bill(row: Row, source: str, registry: Registry) -> BillPoint:
    inst_id = cell_text(row.cells["institution"])
    inst = registry.institutions.get(inst_id)
    if inst is None:
        raise RowError(UNKNOWN_INSTITUTION, f"institution {inst_id[:40]!r} is not in the registry")
    kind = cell_text(row.cells["kind"]).lower()
    if kind not in METER_KINDS:
        raise RowError(reasons.INVALID_PAYLOAD, f"kind {kind[:40]!r} is not one of {', '.join(sorted(METER_KINDS))}")
    month = cell_month(row.cells["month"])
    quantity = cell_number(row.cells["quantity"], "quantity", reasons.BAD_VALUE)
    assert quantity is not None
    yuan = cell_number(row.cells["yuan"], "yuan", reasons.BAD_VALUE, optional=True)
    return BillPoint(inst.id, inst.city, inst.type, kind, month, quantity, yuan, source)


def _bills(table: Table, source: str, registry: Registry, report: ImportReport) -> Batch:
    seen: dict[tuple[str, str, int], tuple[str, BillPoint]] = {}
    for row in table.rows:
        try:
            bill = _parse_bill(row, source, registry)
        except RowError as exc:
            report.refuse(row.where, exc.reason, str(exc), row.cells)
            continue
        key = (bill.institution, bill.kind, bill.ts)
        if key in seen and seen[key][1] != bill:
            report.refuse(row.where, reasons.CONFLICTING_READING,
                          f"another bill for {bill.institution} {bill.kind} that month at {seen[key][0]}", row.cells)
            continue
        seen.setdefault(key, (row.where, bill))
    report.stored += len(seen)
    return Batch(bills=[bill for _, bill in seen.values()])
