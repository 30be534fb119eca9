"""The report as an Excel workbook (XlsxWriter): one sheet per section, Chinese headers with units, the header
row frozen, number formats, native Excel charts.  XlsxWriter writes the OOXML that Excel and WPS open; it
is maintained, pure Python and needs nothing of the system.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from reports.layout import Block, Section, cover_lines, sections

NUMBER_FORMATS = {"num": "#,##0.0", "yuan": "#,##0.00", "int": "0", "pct": "+0.0%;-0.0%;0.0%", "share": "0.0%", "ratio": "0.000", "text": "@", "auto": "General"}
WIDTHS = {"text": 18, "num": 14, "yuan": 14, "int": 10, "pct": 10, "share": 10, "ratio": 12, "auto": 10}


def write(report: dict[str, Any], out: Path) -> None:
    book = xlsxwriter.Workbook(str(out), {"nan_inf_to_errors": True})
    try:
        styles = {fmt: book.add_format({"num_format": spec}) for fmt, spec in NUMBER_FORMATS.items()}
        styles["header"] = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                            "valign": "vcenter"})
        styles["title"] = book.add_format({"bold": True, "font_size": 14})
        styles["block"] = book.add_format({"bold": True, "font_size": 11})
        styles["note"] = book.add_format({"italic": True, "font_color": "#7F7F7F"})
        _cover(book, report, styles)
        for section in sections(report):
            _sheet(book, section, styles)
    finally:
        book.close()


def _cover(book: xlsxwriter.Workbook, report: dict[str, Any], styles: dict[str, Any]) -> None:
    sheet = book.add_worksheet("封面")
    sheet.set_column(0, 0, 100)
    sheet.write(0, 0, f"{report['scope_name']} {report['period_cn']} 能源资源消耗统计报表", styles["title"])
    for k, line in enumerate(cover_lines(report)):
        sheet.write(2 + k, 0, line)
    for k, note in enumerate(report["notes"]):
        sheet.write(9 + len(cover_lines(report)) + k, 0, f"说明 note: {note}", styles["note"])


def _sheet(book: xlsxwriter.Workbook, section: Section, styles: dict[str, Any]) -> None:
    sheet = book.add_worksheet(section.sheet)
    sheet.write(0, 0, section.title, styles["title"])
    row, frozen = 2, False
    widths: dict[int, int] = {}
    for block in section.blocks:
        sheet.write(row, 0, block.title, styles["block"])
        header = row + 1
        for c, col in enumerate(block.columns):
            sheet.write(header, c, col.header, styles["header"])
            widths[c] = max(widths.get(c, 0), WIDTHS[col.fmt], min(40, len(col.header) * 2))
        if not frozen:
            sheet.freeze_panes(header + 1, 0)  # the first table's header stays in view
            frozen = True
        for r, values in enumerate(block.rows):
            for c, col in enumerate(block.columns):
                _cell(sheet, header + 1 + r, c, values.get(col.key), col.fmt, styles)
        end = header + len(block.rows)
        if block.note:
            end += 1
            sheet.write(end, 0, block.note, styles["note"])
        if block.chart and block.rows:
            _chart(book, sheet, section, block, header, max(end, header + 16))
            end = max(end, header + 16)
        row = end + 3
    for c, w in widths.items():
        sheet.set_column(c, c, w)


def _cell(sheet: Any, r: int, c: int, value: Any, fmt: str, styles: dict[str, Any]) -> None:
    if value is None:
        sheet.write_blank(r, c, None, styles[fmt])
    elif fmt == "text" or isinstance(value, str):
        sheet.write_string(r, c, str(value))
    else:
        sheet.write_number(r, c, float(value), styles[fmt])


def _chart(book: xlsxwriter.Workbook, sheet: Any, section: Section, block: Block, header: int, _end: int) -> None:
    chart = block.chart
    assert chart is not None
    keys = [c.key for c in block.columns]
    n = min(len(block.rows), chart.max_rows)
    xl = book.add_chart({"type": chart.kind})
    cat = keys.index(chart.category)
    for key in chart.values:
        v = keys.index(key)
        xl.add_series({"name": [section.sheet, header, v],
                       "categories": [section.sheet, header + 1, cat, header + n, cat],
                       "values": [section.sheet, header + 1, v, header + n, v],
                       **({"data_labels": {"percentage": True}} if chart.kind == "pie" else {})})
    xl.set_title({"name": chart.title, "name_font": {"size": 11}})
    if chart.kind == "bar":
        xl.set_y_axis({"reverse": True})
    if chart.kind != "pie" and len(chart.values) == 1:
        xl.set_legend({"none": True})
    xl.set_size({"width": 560, "height": 300})
    sheet.insert_chart(xl_rowcol_to_cell(header, len(block.columns) + 1), xl)
