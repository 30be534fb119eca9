"""Rows of an office's CSV or xlsx file, each with where it came from (``file:line``, ``file:sheet!row``).

Offices export CSV in UTF-8 or GBK (tried in that order) and xlsx with
title rows and merged cells: a merged cell's value is copied into every
cell it covers, and the header is the first of the top rows that names
the columns of a known table.  A file that cannot be read at all raises
``BadFile`` naming it; everything else is a row for the caller to check.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COLUMNS: dict[str, tuple[str, ...]] = {
    "readings": ("device", "time", "register"),
    "bills": ("institution", "month", "kind", "quantity", "yuan"),
}
HEADER_SEARCH_ROWS = 5  # title rows above the header an xlsx may carry
ENCODINGS = ("utf-8-sig", "gbk")


class BadFile(ValueError):
    """The file (or one sheet) cannot be read as a table: the message names where."""


@dataclass(frozen=True, slots=True)
class Row:
    where: str  # file:line or file:sheet!row
    cells: dict[str, Any]  # column -> cell value (str from CSV; str, number or datetime from xlsx)


@dataclass
class Table:
    kind: str  # readings or bills
    rows: list[Row]
    problems: list[tuple[str, str]]  # rows that are not even rows: (where, problem)


def read_tables(path: Path) -> list[Table]:
    """The tables of a CSV file (one) or an xlsx workbook (one per sheet with a header)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_tables(path)
    return [_csv_table(path)]


def header_kind(header: list[Any], where: str) -> tuple[str, dict[str, int]]:
    """Which table a header row starts, and each column's index; ``BadFile`` saying what was expected."""
    names = [str(h).strip().lower() if h is not None else "" for h in header]
    for kind, columns in COLUMNS.items():
        if set(columns) <= set(names):
            return kind, {c: names.index(c) for c in columns}
    expected = " or ".join(f"{kind} ({', '.join(cols)})" for kind, cols in COLUMNS.items())
    raise BadFile(f"{where}: header {[n for n in names if n]} is not {expected}")


def decode_text(data: bytes, name: str) -> str:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadFile(f"{name}: neither UTF-8 nor GBK text")


def _csv_table(path: Path) -> Table:
    text = decode_text(path.read_bytes(), path.name)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise BadFile(f"{path.name}:1: empty file")
    kind, index = header_kind(header, f"{path.name}:1")
    table = Table(kind, [], [])
    try:
        for cells in reader:
            where = f"{path.name}:{reader.line_num}"
            if not any(c.strip() for c in cells):
                continue
            if len(cells) < len(header):
                table.problems.append((where, f"{len(cells)} cells, the header has {len(header)}"))
                continue
            table.rows.append(Row(where, {c: cells[i] for c, i in index.items()}))
    except csv.Error as exc:
        table.problems.append((f"{path.name}:{reader.line_num}", f"unreadable CSV from here on: {exc}"))
    return table


def _xlsx_tables(path: Path) -> list[Table]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise BadFile(f"{path.name}: not a readable xlsx workbook: {exc}") from None
    tables: list[Table] = []
    refused: list[tuple[str, str]] = []  # (sheet, why it is not a table)
    for sheet in workbook.worksheets:
        grid = _unmerged(sheet)
        try:
            tables.append(_sheet_table(path.name, sheet.title, grid))
        except BadFile as exc:
            merged = ", ".join(str(r) for r in sheet.merged_cells.ranges)
            where, _, why = str(exc).partition(": ")  # BadFile says "file:sheet!row: why"
            refused.append((where, why + (f" (merged cells {merged})" if merged else "")))
    if not tables:
        raise BadFile("; ".join(f"{where}: {why}" for where, why in refused) or f"{path.name}: no sheet")
    tables[0].problems[:0] = refused
    return tables


def _unmerged(sheet: Any) -> list[list[Any]]:
    """The sheet's values, each merged cell's value copied into every cell it covers."""
    grid = [list(row) for row in sheet.iter_rows(values_only=True)]
    for merged in sheet.merged_cells.ranges:
        value = grid[merged.min_row - 1][merged.min_col - 1]
        for r in range(merged.min_row - 1, min(merged.max_row, len(grid))):
            for c in range(merged.min_col - 1, min(merged.max_col, len(grid[r]))):
                grid[r][c] = value
    return grid


def _sheet_table(name: str, title: str, grid: list[list[Any]]) -> Table:
    first_error: BadFile | None = None
    for r, header in enumerate(grid[:HEADER_SEARCH_ROWS]):
        try:
            kind, index = header_kind(header, f"{name}:{title}!{r + 1}")
        except BadFile as exc:
            first_error = first_error or exc
            continue
        table = Table(kind, [], [])
        for n, cells in enumerate(grid[r + 1:], start=r + 2):
            if all(c is None or str(c).strip() == "" for c in cells):
                continue
            table.rows.append(Row(f"{name}:{title}!{n}", {c: cells[i] if i < len(cells) else None
                                                          for c, i in index.items()}))
        return table
    raise first_error or BadFile(f"{name}:{title}!1: empty sheet")
