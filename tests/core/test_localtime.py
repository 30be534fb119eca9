"""meterwatch.localtime: the province's local time, and the only place that states it."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import numpy as np

from meterwatch.localtime import CHINA, DAY, local_day, local_midnight, midnight_of

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("meterwatch", "meterwatch_cli", "collector", "analytics", "dashboards", "simulators", "scenarios", "benchmarks")
# The day length, the UTC+8 offset, or the offset borrowed from elsewhere than meterwatch.localtime.
RESTATED = re.compile(r"\b86400\b|8 \* 3600|\b28800\b|hours=8\b|^DAY = |^LOCAL_UTC_OFFSET_S\b"
                      r"|from meterwatch\.const import .*LOCAL_UTC_OFFSET_S")
HOME = {"meterwatch/localtime.py"}
ALLOWED = {"dashboards/validate.py": "Grafana's own time units (1d, 7d) in its relative-time parser"}


def test_local_time_has_one_home() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in HOME or name in ALLOWED:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if RESTATED.search(line):
                    found.append(f"{name}:{n}: {line.strip()}")
    assert found == [], "local time restated outside meterwatch/localtime.py:\n" + "\n".join(found)


def test_local_day_and_midnight_at_the_edges() -> None:
    # 2026-01-01 00:00 China time is 2025-12-31 16:00 UTC = 1767196800.
    jan1 = 1_767_196_800
    assert midnight_of(date(2026, 1, 1)) == jan1
    assert local_midnight(jan1) == jan1 and local_midnight(jan1 - 1) == jan1 - DAY
    assert local_midnight(jan1 + DAY - 1) == jan1
    assert local_day(jan1) == (date(2026, 1, 1) - date(1970, 1, 1)).days
    assert list(local_day(np.array([jan1 - 1, jan1, jan1 + DAY]))) == [local_day(jan1) - 1, local_day(jan1),
                                                                       local_day(jan1) + 1]
    assert datetime.fromtimestamp(jan1, CHINA).strftime("%Y-%m-%d %H:%M %z") == "2026-01-01 00:00 +0800"
