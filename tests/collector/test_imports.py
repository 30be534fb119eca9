"""`meterwatch import`: the real command on real stores (DuckDB and influxd), with files as offices write them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from meterwatch.localtime import CHINA
from meterwatch.store import Batch, BillPoint, ReadingPoint, RejectRecord, open_store
from tests.helpers import fetch_all, tiny_registry

pytestmark = pytest.mark.servers


def local(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=CHINA).timestamp())


def run_import(tmp_path: Path, store_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "METERWATCH_STORE": store_url, "METERWATCH_REGISTRY": str(tmp_path / "registry")}
    return subprocess.run([sys.executable, "-m", "meterwatch_cli.main", "import", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)



async def write(store_url: str, batch: Batch) -> None:
    store = open_store(store_url)
    try:
        await store.open()
        await store.write(batch)
    finally:
        await store.close()


READINGS_CSV = """device,time,register
a-w1,2025/10/01 08:00,100.0
a-w1,2025/10/01 09:00,101.5
a-w1,2025/13/01 08:00,102.0
a-w1,2025/10/01 10:00,abc
zz-9,2025/10/01 08:00,5
a-e1,2025-10-01T00:00:00+08:00,10.0
a-e1,2025-10-01 01:00,10.5
a-w1,2025/10/01 10:00,103.0
"""


async def test_readings_get_consumption_from_stored_history_and_a_second_import_stores_nothing(
        tmp_path: Path, store_url: str) -> None:
    tiny_registry(tmp_path / "registry")
    # Live readings already stored: one before the file's span and one after it.
    live = [ReadingPoint("a-w1", "inst-a", "yinchuan", "education", "water", local("2025-10-01 07:00"), 99.0),
            ReadingPoint("a-w1", "inst-a", "yinchuan", "education", "water", local("2025-10-01 11:00"), 105.0)]
    await write(store_url, Batch(readings=live))
    (tmp_path / "history.csv").write_text(READINGS_CSV, encoding="utf-8")

    done = run_import(tmp_path, store_url, "history.csv")

    assert done.returncode == 1, done.stderr  # some rows were refused; the valid ones are stored all the same
    assert done.stdout.splitlines() == [
        "history.csv:4: bad_timestamp: time '2025/13/01 08:00' is neither RFC 3339 nor a local date and time "
        "such as 2026/10/01 08:00",
        "history.csv:5: bad_value: register 'abc' is not a number",
        "history.csv:6: unknown_device: device 'zz-9' is not in the registry",
    ]
    rows = {(r.device, r.ts): r for r in await fetch_all(store_url, ReadingPoint)}
    assert len(rows) == 7  # 2 live + 5 imported
    w = [rows[("a-w1", local(f"2025-10-01 {h:02d}:00"))] for h in (7, 8, 9, 10, 11)]
    assert [r.consumption for r in w] == [None, 1.0, 1.5, 1.5, 2.0]  # by hand: 100-99, 101.5-100, 103-101.5, 105-103
    assert [r.interval_s for r in w] == [None, 3600, 3600, 3600, 3600]
    assert [r.source for r in w] == [None, "history.csv", "history.csv", "history.csv", None]
    e = [rows[("a-e1", local(f"2025-10-01 {h:02d}:00"))] for h in (0, 1)]
    assert [r.register for r in e] == [400.0, 420.0]  # multiplier 40
    assert [r.consumption for r in e] == [None, 20.0]
    assert "stored 5, 1 following readings recomputed, 0 already stored, 3 refused" in done.stderr
    # the refused rows are kept in ``reject`` as well, with where they were and the row as JSON
    rejects = await fetch_all(store_url, RejectRecord)
    assert [(r.reason, r.detail.split(": ")[0], r.topic) for r in rejects] == [
        ("bad_timestamp", "history.csv:4", ""), ("bad_value", "history.csv:5", ""), ("unknown_device", "history.csv:6", "")]
    assert json.loads(rejects[1].payload) == {"device": "a-w1", "time": "2025/10/01 10:00", "register": "abc"}

    again = run_import(tmp_path, store_url, "history.csv")

    assert "stored 0, 0 following readings recomputed, 5 already stored, 3 refused" in again.stderr
    assert len(await fetch_all(store_url, ReadingPoint)) == 7


BILLS = [("institution", "month", "kind", "quantity", "yuan"),
         ("inst-a", "2025/10", "water", "300", "1200.5"),
         ("inst-b", "2025年11月", "electricity", "\"5,000\"", "3500"),  # a thousands separator, quoted
         ("inst-a", "2025-10", "燃气", "10", "30"),
         ("inst-x", "2025-10", "water", "1", "1"),
         ("inst-a", "2025-12", "heat", "-3", "1")]


async def test_gbk_bills_are_stored_once_per_institution_kind_and_month(tmp_path: Path, store_url: str) -> None:
    tiny_registry(tmp_path / "registry")
    text = "\n".join(",".join(row) for row in BILLS) + "\n"
    (tmp_path / "账单.csv").write_bytes(text.encode("gbk"))

    done = run_import(tmp_path, store_url, "账单.csv")
    run_import(tmp_path, store_url, "账单.csv")

    assert done.stdout.splitlines() == [
        "账单.csv:4: invalid_payload: kind '燃气' is not one of electricity, heat, water",
        "账单.csv:5: unknown_institution: institution 'inst-x' is not in the registry",
        "账单.csv:6: bad_value: quantity -3.0 is not a finite number >= 0",
    ]
    bills = sorted(await fetch_all(store_url, BillPoint), key=lambda b: b.ts)
    assert [(b.institution, b.kind, b.ts, b.quantity, b.yuan, b.source) for b in bills] == [
        ("inst-a", "water", local("2025-10-01 00:00"), 300.0, 1200.5, "账单.csv"),
        ("inst-b", "electricity", local("2025-11-01 00:00"), 5000.0, 3500.0, "账单.csv")]
    assert bills[1].city == "wuzhong" and bills[1].type == "office"


async def test_a_wrong_header_stores_nothing_and_says_where(tmp_path: Path, duck_url: str) -> None:
    tiny_registry(tmp_path / "registry")
    (tmp_path / "bad.csv").write_text("meter,when,value\na-w1,2025/10/01 08:00,1\n", encoding="utf-8")
    (tmp_path / "latin.csv").write_bytes("device,time,register\n\xff\xfe\x80,1,2\n".encode("latin-1"))

    done = run_import(tmp_path, duck_url, "bad.csv")
    latin = run_import(tmp_path, duck_url, "latin.csv")

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: bad.csv:1: header ['meter', 'when', 'value'] is not readings (device, time, register)" in done.stderr
    assert latin.returncode == 1 and "error: latin.csv: neither UTF-8 nor GBK text" in latin.stderr
    assert await fetch_all(duck_url, ReadingPoint) == []


async def test_xlsx_with_a_merged_title_and_merged_device_cells(tmp_path: Path, store_url: str) -> None:
    tiny_registry(tmp_path / "registry")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "抄表"
    sheet.append(["2025年10月 抄表记录", None, None])
    sheet.merge_cells("A1:C1")
    sheet.append(["Device", "Time", "Register"])
    sheet.append(["a-w1", datetime(2025, 10, 1, 8, 0), 10.0])  # a spreadsheet date: local time
    sheet.append([None, "2025/10/01 09:00", 12.5])  # device merged over rows 3-5
    sheet.append([None, "yesterday", 13.0])
    sheet.merge_cells("A3:A5")
    broken = book.create_sheet("merged")
    broken.append(["device and time", None, "register"])
    broken.merge_cells("A1:B1")
    broken.append(["a-w1", "2025/10/01 10:00", 14.0])
    book.save(tmp_path / "meters.xlsx")

    dry = run_import(tmp_path, store_url, "meters.xlsx", "--dry-run")
    assert await fetch_all(store_url, ReadingPoint) == []
    done = run_import(tmp_path, store_url, "meters.xlsx")

    for result in (dry, done):
        lines = result.stdout.splitlines()
        assert lines[0].startswith("meters.xlsx:merged!1: invalid_payload: header ['device and time', 'device and time', "
                                   "'register'] is not readings") and "merged cells A1:B1" in lines[0]
        assert lines[1].startswith("meters.xlsx:抄表!5: bad_timestamp: time 'yesterday'")
        assert len(lines) == 2 and "Traceback" not in result.stderr
    assert "would store 2" in dry.stderr
    rows = sorted(await fetch_all(store_url, ReadingPoint), key=lambda r: r.ts)
    assert [(r.ts, r.register, r.consumption, r.source) for r in rows] == [
        (local("2025-10-01 08:00"), 10.0, None, "meters.xlsx"),
        (local("2025-10-01 09:00"), 12.5, 2.5, "meters.xlsx")]
