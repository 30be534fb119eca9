"""The report's formats: one writer per format, each taking the model's dict (``reports.model.build``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class FormatUnavailable(RuntimeError):
    """A format cannot be written on this machine (a library or a CJK font is missing)."""


def write_json(report: dict[str, Any], out: Path) -> None:
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


def write_xlsx(report: dict[str, Any], out: Path) -> None:
    from reports.xlsx import write

    write(report, out)


def write_pdf(report: dict[str, Any], out: Path) -> None:
    from reports.pdf import write

    write(report, out)


WRITERS = {"json": write_json, "xlsx": write_xlsx, "pdf": write_pdf}


LIBRARIES = {"xlsx": ("xlsxwriter",), "pdf": ("reportlab", "matplotlib")}


def check(fmt: str) -> None:
    """Raise FormatUnavailable before any work when ``fmt`` cannot be written here."""
    import importlib.util

    missing = [m for m in LIBRARIES.get(fmt, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise FormatUnavailable(f"--format {fmt} needs {', '.join(missing)}: pip install 'meterwatch[reports]'")
    if fmt == "pdf":
        from reports.pdf import cjk_font

        cjk_font()


def write(fmt: str, report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    WRITERS[fmt](report, tmp)
    tmp.replace(out)
