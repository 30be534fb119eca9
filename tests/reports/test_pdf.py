"""The pdf report turned into pictures (pdftoppm) and text (pdftotext): cover, Chinese headings, page numbers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from reports.formats import FormatUnavailable, write
from tests.conftest import IN_CI
from tests.reports.test_model import report_of

HEADINGS = ["一、总量分析", "二、单位明细", "三、结构分析", "四、横纵对比", "五、定额与预算执行", "六、统计质量控制",
            "七、告警", "八、垃圾分类"]


def _poppler() -> None:
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        reason = "poppler-utils (pdftoppm, pdftotext) not installed: scripts/test.sh installs it"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_pdf_pages_text_and_pictures(province_store, tmp_path):
    _poppler()
    report = await report_of(province_store, "2026-11", at=local_nov_3())
    out = tmp_path / "r.pdf"
    write("pdf", report, out)
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")[:-1]
    assert "全省" in pages[0] and "2026年11月 能源资源消耗统计报表" in pages[0]
    assert "本期尚未结束" in pages[0] and "生成时间 Generated：2026-11-03 00:00" in pages[0]
    for heading in HEADINGS:
        assert heading in text, heading
    assert all(f"第 {k} 页 / 共 {len(pages)} 页" in page for k, page in enumerate(pages, 1))
    assert "读数跳变" not in text  # the jump was in October
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    assert "595.276 x 841.89 pts (A4)" in info  # the cover; the tables are A4 landscape
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True)
    pictures = sorted(tmp_path.glob("page-*.png"))
    assert len(pictures) == len(pages) and all(p.stat().st_size > 2000 for p in pictures)


def local_nov_3() -> int:
    from tests.reports.conftest import local

    return local(2026, 11, 3)


def test_no_cjk_font_is_a_clear_error(monkeypatch):
    from reports import pdf

    pdf.cjk_font.cache_clear()
    monkeypatch.setattr(pdf, "_candidates", lambda: [])
    try:
        with pytest.raises(FormatUnavailable, match="apt-get install fonts-wqy-microhei"):
            pdf.cjk_font()
    finally:
        pdf.cjk_font.cache_clear()
