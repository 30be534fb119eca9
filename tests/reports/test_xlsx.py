"""The xlsx report read back with openpyxl: a sheet per section, headers with units, figures, frozen headers, charts."""

from __future__ import annotations

import zipfile

import openpyxl
import pytest

from reports.formats import write
from tests.reports.test_model import report_of


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_xlsx_sheets_headers_figures_and_charts(province_store, tmp_path):
    report = await report_of(province_store, "2026-10")
    out = tmp_path / "r.xlsx"
    write("xlsx", report, out)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["封面", "1 总量", "2 单位明细", "3 结构", "4 对比", "5 定额预算", "6 质量控制",
                               "7 告警", "8 垃圾分类"]
    assert "银川" not in book["封面"]["A1"].value and "全省 2026年10月" in book["封面"]["A1"].value
    totals = book["1 总量"]
    assert [c.value for c in totals[4]] == ["指标 (单位)", "本期 2026-10", "上期 2026-09", "环比", "去年同期 2025-10",
                                            "同比"]
    assert totals.freeze_panes == "A5"  # the header row stays in view
    rows = {r[0]: r for r in totals.iter_rows(min_row=5, values_only=True)}
    assert rows["用电量 (kWh)"][1] == 3107.0 + 31 * 50.0 and rows["用电量 (kWh)"][4] == 31 * 130.0
    assert rows["综合能耗 (kgce)"][1] == pytest.approx(report["totals"]["energy_kgce"])
    assert totals["D5"].number_format == "+0.0%;-0.0%;0.0%" and totals["B5"].number_format == "#,##0.0"
    people = book["2 单位明细"]
    header = [c.value for c in people[4]]
    assert "用电量 (kWh)" in header and "单位面积能耗 (kgce/m²)" in header
    a = next(r for r in people.iter_rows(min_row=5, values_only=True) if r[0] == "inst-a")
    assert a[header.index("用电量 (kWh)")] == 3107.0 and a[header.index("城市")] == "银川"
    quality = [r for r in book["6 质量控制"].iter_rows(min_row=5, values_only=True) if r[0]]
    assert ("缺数天", "银川市第1中学", "a-w", 3, "天") in [r[:5] for r in quality]
    with zipfile.ZipFile(out) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        kinds = "".join(z.read(n).decode() for n in charts)
    assert len(charts) >= 6 and "<c:pieChart>" in kinds and "<c:barChart>" in kinds
    assert sum(len(ws._charts) for ws in book.worksheets) == len(charts)  # openpyxl reads them back as charts
