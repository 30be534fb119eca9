"""``meterwatch budget --year Y [--at T] [--institution ID] [--json]``: budget execution as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import unicodedata
from typing import Any

import numpy as np

from analytics.budget import KINDS, Execution, execution
from analytics.costs import price_through
from meterwatch.localtime import local_text, utc_text, year_bounds
from meterwatch.numbers import finite_or_none
from meterwatch.registry import Registry
from meterwatch.runtime import load_checked_registry
from meterwatch.settings import Settings
from meterwatch.store import store_for
from meterwatch.timestamps import parse_timestamp

STATUS_CN = {"guide": "优于引导值", "between": "引导值与预算之间", "over": "预计超预算", "": "无预算"}


def _as_of(year: int, at_text: str | None) -> int:
    start, end = year_bounds(year)
    if start > time.time():
        raise ValueError(f"{year} has not begun: there is nothing to execute yet, and it is in the future")
    at = parse_timestamp(at_text) if at_text else min(int(time.time()), end)
    if not start < at <= end:
        raise ValueError(f"--at {local_text(at)} is not in {year} (local time)")
    if at > time.time() + 3600:
        raise ValueError(f"--at {local_text(at)} is in the future")
    return at


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        at = _as_of(args.year, args.at)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    registry = load_checked_registry(settings)
    if args.institution and args.institution not in registry.institutions:
        print(f"error: unknown institution {args.institution!r}", file=sys.stderr)
        return 2
    if not registry.tariffs:
        print(f"error: no tariffs: {settings.registry / 'tariffs.toml'} is missing or empty "
              "(see examples/registry/tariffs.toml)", file=sys.stderr)
        return 1
    ex = asyncio.run(_execution(settings, registry, at))
    rows = [k for k, i in enumerate(ex.institutions) if not args.institution or i.id == args.institution]
    if args.json:
        print(json.dumps(as_json(ex, rows), ensure_ascii=False, indent=1))
    else:
        print(as_table(ex, rows))
    return 0


async def _execution(settings: Settings, registry: Registry, at: int) -> Execution:
    store = store_for(settings)
    try:
        await store.open()
        await price_through(store, registry, at - 1)  # last year's too: the standard's own electricity price
        return await execution(store, registry, at, profile_min_days=settings.analytics.profile_min_days)
    finally:
        await store.close()


def _num(value: float | None, digits: int = 2) -> float | None:
    return finite_or_none(value, digits)


def as_json(ex: Execution, rows: list[int]) -> dict[str, Any]:
    institutions = []
    for k in rows:
        inst = ex.institutions[k]
        crossing = ex.crossing_date(k)
        institutions.append({
            "institution": inst.id, "name": inst.name, "city": inst.city, "type": inst.type,
            "cost_yuan": {kind: _num(ex.cost[kind][k]) for kind in (*KINDS, "total")},
            "kgco2e": _num(ex.kgco2e["total"][k]),
            "budget_yuan": _num(ex.budget["total"][k]), "budget_source": ex.budget_source[k],
            "budget_by_kind_yuan": {kind: _num(ex.budget[kind][k]) for kind in KINDS},
            "prorated_yuan": _num(ex.prorated[k]),
            "projected_yuan": _num(ex.projected["total"][k]),
            "projected_by_kind_yuan": {kind: _num(ex.projected[kind][k]) for kind in KINDS},
            "status": ex.status[k] or None,
            "crossing": crossing.isoformat() if crossing else None,
            "overrun_yuan": _num(ex.overrun()[k]),
            "overrun_against_constraint_yuan": _num(ex.overrun("constraint")[k]),
            "guide_saving_yuan": _num(max(ex.overrun("guide")[k], 0.0)),
            "standard_yuan": {"constraint": {kind: _num(ex.standard.constraint[kind][k]) for kind in KINDS},
                              "guide": {kind: _num(ex.standard.guide[kind][k]) for kind in KINDS}},
            "monthly_yuan": [{kind: round(float(ex.monthly[k, m, j]), 2) for j, kind in enumerate(KINDS)}
                             for m in range(12)],
        })
    return {"year": ex.year, "at": utc_text(ex.at), "institutions": institutions,
            "groups": _groups(ex, rows), "notes": ex.notes}


def _groups(ex: Execution, rows: list[int]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Sums per city, per type and for the province (institutions with a budget only, for budget figures)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {"province": {}, "city": {}, "type": {}}
    keys = {"province": lambda i: "province", "city": lambda i: i.city, "type": lambda i: i.type}
    for level, key in keys.items():
        members: dict[str, list[int]] = {}
        for k in rows:
            members.setdefault(key(ex.institutions[k]), []).append(k)
        for name, ks in sorted(members.items()):
            idx = np.array(ks)
            has = idx[np.isfinite(ex.budget["total"][idx])]
            out[level][name] = {
                "institutions": len(ks), "with_budget": len(has),
                "cost_yuan": _num(float(np.sum(ex.cost["total"][idx]))),
                "budget_yuan": _num(float(np.sum(ex.budget["total"][has]))) if len(has) else None,
                "projected_yuan": _num(float(np.nansum(ex.projected["total"][has]))) if len(has) else None,
                "overrun_yuan": _num(float(np.nansum(ex.overrun()[has]))) if len(has) else None,
                "over": int(np.sum(ex.status[idx] == "over")),
            }
    return out


def _cell(text: str, width: int, left: bool = False) -> str:
    """Pad to a display width: Chinese characters take two columns in a terminal."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    pad = " " * max(0, width - shown)
    return text + pad if left else pad + text


def as_table(ex: Execution, rows: list[int]) -> str:
    """The officers' view: the province and cities first, then institutions by projected overrun."""
    def yuan(x: float | None) -> str:
        return "-" if x is None or not np.isfinite(x) else f"{x:,.0f}"

    groups = _groups(ex, rows)
    lines = [f"{ex.year} 年能耗预算执行 budget execution, as of {local_text(ex.at)} (UTC+8)", ""]
    head = [("范围 scope", 24, True), ("已用 cost", 14, False), ("预算 budget", 14, False),
            ("预计全年 projected", 20, False), ("超支+/节约-", 16, False), ("超预算单位 over", 18, False)]
    lines.append("".join(_cell(t, w, left) for t, w, left in head))
    for level in ("province", "city"):
        for name, g in groups[level].items():
            cells = [name, yuan(g["cost_yuan"]), yuan(g["budget_yuan"]), yuan(g["projected_yuan"]),
                     yuan(g["overrun_yuan"]), str(g["over"])]
            lines.append("".join(_cell(c, w, left) for c, (_, w, left) in zip(cells, head, strict=True)))
    cols = [("单位 institution", 34, True), ("已用", 12, False), ("进度预算", 12, False), ("预算", 12, False),
            ("预计全年", 12, False), ("超支/节约", 12, False), ("  预计超预算日期", 18, True), ("状态 status", 0, True)]
    lines += ["", "".join(_cell(t, w, left) for t, w, left in cols)]
    overrun = ex.overrun()
    order = sorted(rows, key=lambda k: -overrun[k] if np.isfinite(overrun[k]) else np.inf)
    for k in order:
        inst = ex.institutions[k]
        crossing = ex.crossing_date(k)
        cells = [f"{inst.name} ({inst.id})", yuan(ex.cost["total"][k]), yuan(ex.prorated[k]),
                 yuan(ex.budget["total"][k]), yuan(ex.projected["total"][k]), yuan(overrun[k]),
                 "  " + (crossing.isoformat() if crossing else "-"), STATUS_CN[ex.status[k]]]
        lines.append("".join(_cell(c, w, left) for c, (_, w, left) in zip(cells, cols, strict=True)))
    lines += [f"note: {n}" for n in ex.notes]
    return "\n".join(lines)
