"""``meterwatch report --period P --scope S --format xlsx|pdf|json --out FILE [--at RFC3339]``.

Exit codes: 0 written, 1 failed (store, font), 2 bad usage (period, scope, format, --at), with one line
saying what is wrong; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

from analytics.rules import RuleSettingsError, configure
from meterwatch.localtime import local_text
from meterwatch.registry import Registry
from meterwatch.runtime import load_checked_registry
from meterwatch.settings import Settings
from meterwatch.store import StoreError, store_for
from meterwatch.timestamps import parse_timestamp
from reports import formats
from reports.model import build
from reports.period import Windows, parse_period, windows
from reports.scope import Scope, parse_scope

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """Bad period, scope, format or time: exit 2."""


def add_parser(sub: Any, func: Any) -> None:
    p = sub.add_parser("report", help="monthly, quarterly or annual statistics report (统计报表): xlsx, pdf, json")
    p.add_argument("--period", help="a month 2026-10, a quarter 2026-Q3 or a year 2026 (local time)")
    p.add_argument("--scope", default="province", help="province, city:ID or institution:ID")
    p.add_argument("--format", choices=sorted(formats.WRITERS), default=None,
                   help="default: from the --out suffix")
    p.add_argument("--out", type=Path, help="file to write")
    p.add_argument("--at", help="as of this RFC 3339 time (default: now); a period not ended covers up to it")
    p.add_argument("--scheduled", action="store_true", help="produce the configured report jobs that are due, once")
    p.set_defaults(func=func)


def resolve(period_text: str, scope_text: str, at_text: str | None, registry: Registry,
            settings: Settings) -> tuple[Windows, Scope, int]:
    try:
        at = parse_timestamp(at_text) if at_text else int(time.time())
    except ValueError as exc:
        raise UsageError(f"bad --at {at_text!r}: {exc}") from exc
    if at > time.time() + 3600:
        raise UsageError(f"--at {local_text(at)} (UTC+8) is in the future")
    try:
        win = windows(parse_period(period_text), at)
        scope = parse_scope(scope_text, registry, settings.cities)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return win, scope, at


def format_of(out: Path, given: str | None) -> str:
    fmt = given or out.suffix.lstrip(".").lower()
    if fmt not in formats.WRITERS:
        raise UsageError(f"cannot tell the format of {out}: give --format {' | '.join(sorted(formats.WRITERS))}")
    return fmt


async def produce(settings: Settings, registry: Registry, win: Windows, scope: Scope) -> dict[str, Any]:
    store = store_for(settings)
    await store.open()
    try:
        return await build(store, registry, scope, win, yoy_threshold=settings.reports.yoy_threshold,
                           target_share=target_share(settings),
                           profile_min_days=settings.analytics.profile_min_days)
    finally:
        await store.close()


def target_share(settings: Settings) -> float:
    """The sorting rule's recyclable target: one home, the rule's settings."""
    return configure(settings.analytics)["sorting"].target_share  # type: ignore[attr-defined]


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.scheduled:
        from reports.schedule import run_scheduled

        return run_scheduled(settings, args.at)
    if not args.period or not args.out:
        print("error: report needs --period and --out (or --scheduled)", file=sys.stderr)
        return 2
    registry = load_checked_registry(settings)
    try:
        fmt = format_of(args.out, args.format)
        win, scope, _ = resolve(args.period, args.scope, args.at, registry, settings)
        formats.check(fmt)
        target_share(settings)
    except (UsageError, RuleSettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except formats.FormatUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(produce(settings, registry, win, scope))
    except StoreError as exc:
        print(f"error: store {exc}", file=sys.stderr)
        return 1
    formats.write(fmt, report, args.out)
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"{args.out}: {scope.name} {win.period.label_cn} ({fmt}), {len(scope.institutions)} institution(s), "
          f"{len(report['quality'])} item(s) to verify", file=sys.stderr)
    return 0
