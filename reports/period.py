"""Report periods: local (UTC+8) calendar months, quarters and years, and the windows compared with them.

``2026-10`` (a month), ``2026-Q3`` (a quarter), ``2026`` (a year).  A period not yet ended at ``at`` covers
[start, at); the previous period and the same period last year are then cut to the same length, so that a
change compares like with like (the cover says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from meterwatch.localtime import local_text, midnight_of, utc_text

KINDS = ("month", "quarter", "year")
_PATTERNS = (("month", re.compile(r"^(\d{4})-(\d{2})$")), ("quarter", re.compile(r"^(\d{4})-[Qq]([1-4])$")),
             ("year", re.compile(r"^(\d{4})$")))


@dataclass(frozen=True)
class Period:
    kind: str  # month, quarter, year
    year: int
    index: int  # month 1-12, quarter 1-4, 1 for a year

    @property
    def label(self) -> str:
        return {"month": f"{self.year}-{self.index:02d}", "quarter": f"{self.year}-Q{self.index}",
                "year": f"{self.year}"}[self.kind]

    @property
    def label_cn(self) -> str:
        return {"month": f"{self.year}年{self.index}月", "quarter": f"{self.year}年第{self.index}季度",
                "year": f"{self.year}年"}[self.kind]

    def _first_month(self) -> int:
        return {"month": self.index, "quarter": 3 * self.index - 2, "year": 1}[self.kind]

    def _months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.kind]

    def bounds(self) -> tuple[int, int]:
        """Unix times of the local midnights that start the period and the next one."""
        first = self._first_month() - 1 + self._months()
        end = date(self.year + first // 12, first % 12 + 1, 1)
        return midnight_of(date(self.year, self._first_month(), 1)), midnight_of(end)

    def previous(self) -> Period:
        if self.kind == "year" or self.index == 1:
            last = {"month": 12, "quarter": 4, "year": 1}[self.kind]
            return Period(self.kind, self.year - 1, last)
        return Period(self.kind, self.year, self.index - 1)

    def last_year(self) -> Period:
        return Period(self.kind, self.year - 1, self.index)


def parse_period(text: str) -> Period:
    """``2026-10``, ``2026-Q3`` or ``2026``; ValueError saying what is expected."""
    for kind, pattern in _PATTERNS:
        m = pattern.match(text.strip())
        if m:
            year, index = int(m.group(1)), int(m.group(2)) if m.lastindex and m.lastindex > 1 else 1
            if kind == "month" and not 1 <= index <= 12:
                break
            return Period(kind, year, index)
    raise ValueError(f"bad --period {text!r}: expected a month 2026-10, a quarter 2026-Q3 or a year 2026")


@dataclass(frozen=True)
class Window:
    """[start, end) in Unix seconds: what a report column sums over."""

    label: str
    start: int
    end: int

    def as_json(self) -> dict[str, str]:
        return {"period": self.label, "start": utc_text(self.start), "end": utc_text(self.end)}


@dataclass(frozen=True)
class Windows:
    period: Period
    this: Window
    previous: Window
    last_year: Window
    ended: bool  # False: the period had not ended at ``at``, and every window is cut to the elapsed length

    @property
    def days(self) -> float:
        return (self.this.end - self.this.start) / 86400


def windows(period: Period, at: int) -> Windows:
    """The period up to ``at`` and its two comparisons; ValueError for a period that has not begun at ``at``."""
    start, end = period.bounds()
    if start >= at:
        raise ValueError(f"period {period.label} begins {local_text(start)} (UTC+8), after {local_text(at)}: "
                         "it is in the future, there is nothing to report yet")
    covered = min(end, at)
    length = covered - start

    def cut(p: Period) -> Window:
        s, e = p.bounds()
        return Window(p.label, s, min(e, s + length) if covered < end else e)

    return Windows(period, Window(period.label, start, covered), cut(period.previous()), cut(period.last_year()),
                   ended=covered >= end)
