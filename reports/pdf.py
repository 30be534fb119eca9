"""The report as a PDF (ReportLab): A4, a cover (scope, period, generation time, "period not ended"),
charts (matplotlib), tables, page numbers, Chinese text in a CJK TrueType font.

Why ReportLab: it draws tables that split across pages with repeated headers, needs no system library
beyond a font (WeasyPrint needs Pango, cairo and HTML/CSS layout), and is the usual choice for generated
tables.  ReportLab embeds TrueType outlines only, so the font is WenQuanYi Micro Hei (Debian
``fonts-wqy-microhei``, installed by scripts/test.sh) or another TrueType CJK font that fontconfig lists;
Noto CJK's OpenType (CFF) files cannot be embedded.  Without one: ``FormatUnavailable`` saying what to install.
Long tables are cut at ``MAX_ROWS`` rows in the PDF (saying so): the xlsx and json hold every row.
"""

from __future__ import annotations

import io
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from reports.formats import FormatUnavailable
from reports.layout import Block, Column, cover_lines, sections

FONT = "MeterwatchCJK"
KNOWN_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
               "/usr/share/fonts/truetype/arphic/uming.ttc")
MAX_ROWS = 300
WEIGHTS = {"text": 2.0, "num": 1.0, "yuan": 1.1, "int": 0.8, "pct": 0.8, "share": 0.8, "ratio": 0.9, "auto": 0.8}
WIDE_TEXT = {"why": 4.5, "name": 3.0, "item": 2.4}


def _candidates() -> list[str]:
    listed: list[str] = []
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False)
        listed = [line.split(":")[0].strip() for line in out.stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    truetype = [p for p in listed if p.endswith((".ttf", ".ttc"))]
    return [p for p in KNOWN_FONTS if Path(p).is_file()] + sorted(set(truetype) - set(KNOWN_FONTS))


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register a CJK TrueType font with ReportLab and return its file; FormatUnavailable without one."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for path in _candidates():
        try:
            pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
            return path
        except Exception:  # noqa: BLE001 - a font ReportLab cannot embed (CFF outlines): try the next one
            continue
    raise FormatUnavailable("no Chinese TrueType font for the PDF: install one, e.g. apt-get install "
                            "fonts-wqy-microhei (scripts/test.sh does)")


def write(report: dict[str, Any], out: Path) -> None:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.platypus import BaseDocTemplate, Frame, NextPageTemplate, PageBreak, PageTemplate

    font_file = cjk_font()
    styles = _styles()
    doc = BaseDocTemplate(str(out), pagesize=A4, title=f"{report['scope_name']} {report['period_cn']} 统计报表",
                          author="meterwatch", leftMargin=36, rightMargin=36, topMargin=40, bottomMargin=40)
    portrait = Frame(doc.leftMargin, doc.bottomMargin, A4[0] - 72, A4[1] - 80, id="cover")
    wide = landscape(A4)
    body = Frame(36, 40, wide[0] - 72, wide[1] - 80, id="body")
    footer = _footer(report)
    doc.addPageTemplates([PageTemplate("cover", [portrait], pagesize=A4, onPage=footer),
                          PageTemplate("body", [body], pagesize=wide, onPage=footer)])
    story: list[Any] = _cover(report, styles) + [NextPageTemplate("body"), PageBreak()]
    for k, section in enumerate(sections(report)):
        if k:
            story.append(PageBreak())
        story.append(_para(section.title, styles["h1"]))
        for block in section.blocks:
            story += _block(block, styles, body.width, font_file)
    doc.build(story, canvasmaker=_numbered_canvas())


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("base", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
    return {"base": base, "title": ParagraphStyle("title", base, fontSize=22, leading=30, spaceAfter=24),
            "h1": ParagraphStyle("h1", base, fontSize=15, leading=20, spaceAfter=8),
            "h2": ParagraphStyle("h2", base, fontSize=11, leading=15, spaceBefore=10, spaceAfter=4),
            "cover": ParagraphStyle("cover", base, fontSize=11, leading=18),
            "warn": ParagraphStyle("warn", base, fontSize=12, leading=18, textColor="#C00000"),
            "note": ParagraphStyle("note", base, fontSize=8, leading=11, textColor="#595959"),
            "cell": ParagraphStyle("cell", base, fontSize=7, leading=8.6),
            "head": ParagraphStyle("head", base, fontSize=7, leading=8.6, textColor="#1F3864")}


def _para(text: str, style: Any) -> Any:
    from reportlab.platypus import Paragraph
    from xml.sax.saxutils import escape

    return Paragraph(escape(text), style)


def _cover(report: dict[str, Any], styles: dict[str, Any]) -> list[Any]:
    from reportlab.platypus import Spacer

    story = [Spacer(1, 120), _para(f"{report['scope_name']}", styles["title"]),
             _para(f"{report['period_cn']} 能源资源消耗统计报表", styles["title"]), Spacer(1, 20)]
    for line in cover_lines(report):
        story.append(_para(line, styles["warn"] if line.startswith("本期尚未结束") else styles["cover"]))
    if report["notes"]:
        story.append(Spacer(1, 20))
        story += [_para(f"说明 note: {n}", styles["note"]) for n in report["notes"]]
    return story


def _cell(value: Any, col: Column, styles: dict[str, Any]) -> Any:
    if value is None:
        return "-"
    if col.fmt == "text" or isinstance(value, str):
        return _para(str(value), styles["cell"])
    if col.fmt == "auto":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return {"num": f"{value:,.1f}", "yuan": f"{value:,.2f}", "int": f"{value:.0f}", "pct": f"{value:+.1%}", "share": f"{value:.1%}",
            "ratio": f"{value:,.3f}"}[col.fmt]


def _block(block: Block, styles: dict[str, Any], width: float, font_file: str) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.platypus import KeepTogether, Table, TableStyle

    head: list[Any] = [_para(block.title, styles["h2"])]  # kept on the page of its chart or first rows
    if block.chart and block.rows:
        head.append(_chart(block, font_file, width))
    if not block.rows:
        return [KeepTogether(head + [_para(block.note or "无数据", styles["note"])])]
    rows = block.rows[:MAX_ROWS]
    weights = [WIDE_TEXT.get(c.key, WEIGHTS[c.fmt]) for c in block.columns]
    widths = [width * w / sum(weights) for w in weights]
    data = [[_para(c.header, styles["head"]) for c in block.columns]]
    data += [[_cell(r.get(c.key), c, styles) for c in block.columns] for r in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 7),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#A6A6A6")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F7F7F7")]),
        ("ALIGN", (0, 1), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]))
    out: list[Any] = [KeepTogether(head + [table])] if len(rows) <= 25 else [KeepTogether(head), table]
    if len(block.rows) > MAX_ROWS:
        out.append(_para(f"（仅列出前 {MAX_ROWS} 行，共 {len(block.rows)} 行；完整列表见 xlsx 或 json）",
                         styles["note"]))
    if block.note:
        out.append(_para(block.note, styles["note"]))
    return out


def _chart(block: Block, font_file: str, width: float) -> Any:
    """A matplotlib chart of the block as a PNG image."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt
    from matplotlib.ticker import StrMethodFormatter
    from reportlab.platypus import Image

    font_manager.fontManager.addfont(font_file)
    name = font_manager.FontProperties(fname=font_file).get_name()
    chart = block.chart
    assert chart is not None
    rows = block.rows[:chart.max_rows]
    labels = [str(r.get(chart.category) or "")[:14] for r in rows]
    headers = {c.key: c.header for c in block.columns}
    with plt.rc_context({"font.family": name, "font.size": 8, "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(7.5, 2.5), dpi=150)
        if chart.kind == "pie":
            values = [max(float(r.get(chart.values[0]) or 0.0), 0.0) for r in rows]
            if sum(values) > 0:
                wedges, _, _ = ax.pie(values, autopct=lambda p: f"{p:.1f}%" if p >= 3 else "", startangle=90,
                                      counterclock=False, pctdistance=0.7, textprops={"fontsize": 7})
                ax.legend(wedges, [f"{lab} {v / sum(values):.1%}" for lab, v in zip(labels, values, strict=True)],
                          loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
            ax.axis("equal")
        elif chart.kind == "bar":
            values = [float(r.get(chart.values[0]) or 0.0) for r in rows]
            ax.barh(range(len(rows)), values, color="#4472C4")
            ax.set_yticks(range(len(rows)), labels)
            ax.invert_yaxis()
            ax.set_xlabel(headers[chart.values[0]])
            ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.2f}"))
        else:
            n = len(chart.values)
            for j, key in enumerate(chart.values):
                ax.bar([i + (j - (n - 1) / 2) * 0.8 / n for i in range(len(rows))],
                       [float(r.get(key) or 0.0) for r in rows], width=0.8 / n, label=headers[key])
            ax.set_xticks(range(len(rows)), labels)
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
            ax.legend(fontsize=7)
        ax.set_title(chart.title, fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
    buf.seek(0)
    w = min(width, 500)
    return Image(buf, width=w, height=w * 2.5 / 7.5)


def _footer(report: dict[str, Any]) -> Any:
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColorRGB(0.45, 0.45, 0.45)
        canvas.drawString(36, 20, f"meterwatch · {report['scope_name']} · {report['period_cn']} · "
                                  f"生成于 {report['generated_local']}")
        canvas.restoreState()
    return draw


def _numbered_canvas() -> Any:
    """A canvas that writes "第 n 页 / 共 N 页" once the number of pages is known."""
    from reportlab.pdfgen import canvas

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - ReportLab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                width = self._pagesize[0]
                self.setFont(FONT, 8)
                self.drawRightString(width - 36, 20, f"第 {self._pageNumber} 页 / 共 {total} 页")
                super().showPage()
            super().save()

    return NumberedCanvas
