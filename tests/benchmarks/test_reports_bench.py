"""The reports benchmark at a tiny size: it runs, and both stores give the same report (nothing timed)."""

from __future__ import annotations

import asyncio
import json

import pytest

from benchmarks import reports
from benchmarks.servers import ServerUnavailable
from tests.conftest import _unavailable

pytestmark = pytest.mark.servers


def same(a, b) -> bool:
    """Equal, numbers to a relative 1e-6 or the last rounded digit (the backends sum in different orders)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6, abs=2e-3)  # rounded to 3 decimals
    return a == b


def test_reports_bench_quick(tmp_path):
    try:
        results = asyncio.run(reports.measure(12, 2, keep=tmp_path))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    duck, influx = results["duckdb"], results["influxdb"]
    assert duck["readings"] == influx["readings"] > 0
    assert duck["quality"] == influx["quality"]
    both = [json.loads((tmp_path / s / "province-2026-10.json").read_text(encoding="utf-8")) for s in results]
    assert len(both[0]["institutions"]) == 12 and both[0]["totals"]["electricity_kwh"] > 0
    for key in ("totals", "institutions", "structure", "quality", "garbage", "standing"):
        assert same(both[0][key], both[1][key]), key  # the same report from either store
    assert all(duck[f"{fmt}_s"] > 0 for fmt in ("json", "xlsx", "pdf"))
    text = reports.report(results, 12, 2)
    assert "`meterwatch report --format pdf` (model + write), s" in text
