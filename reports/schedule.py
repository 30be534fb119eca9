"""Scheduled reports: ``[[reports.jobs]]`` produced once when due, written to ``reports.out_dir`` and, with
``reports.smtp`` and recipients, e-mailed as attachments.

A job (scope, period kind, day of the month) is due for the last period of its kind whose due date has
passed: day ``day`` of the month after the period ends (local time).  ``meterwatch report --scheduled``
(run it daily from cron or a timer) produces every due job that is not done yet; a job is done when its
files are written and, if it has recipients, the mail was accepted: then a ``.done`` marker is written
beside the files, so a failed delivery is retried at the next run and a delivered one never repeated.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from meterwatch.localtime import local_date, local_text, utc_text
from meterwatch.mail import deliver, message
from meterwatch.registry import Registry
from meterwatch.runtime import load_checked_registry
from meterwatch.settings import ReportJob, Settings, SmtpSettings
from meterwatch.timestamps import parse_timestamp
from reports import formats
from reports.cli import UsageError, produce, resolve
from reports.period import KINDS, Period

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    job: ReportJob
    period: Period
    files: list[Path]
    done: Path  # marker written once the job is complete


def last_due_period(kind: str, day: int, today: date) -> Period:
    """The latest period of ``kind`` whose due date (day ``day`` of the month after it ends) is on or before
    ``today``."""
    months = today.year * 12 + today.month - 1 - (1 if today.day < day else 0)  # months whose due date passed
    ended = months - 1  # the month before: the last whose due month has come
    year, month = divmod(ended, 12)
    month += 1
    if kind == "month":
        return Period("month", year, month)
    if kind == "quarter":
        q = (month - 1) // 3 + 1
        return Period("quarter", year, q) if month % 3 == 0 else _prev_quarter(year, q)
    return Period("year", year, 1) if month == 12 else Period("year", year - 1, 1)


def _prev_quarter(year: int, q: int) -> Period:
    return Period("quarter", year, q - 1) if q > 1 else Period("quarter", year - 1, 4)


def due_jobs(settings: Settings, at: int) -> list[Due]:
    out = []
    for job in settings.reports.jobs:
        if job.period not in KINDS:
            raise UsageError(f"reports.jobs: period {job.period!r} is not one of {', '.join(KINDS)}")
        bad = [f for f in job.formats if f not in formats.WRITERS]
        if bad:
            raise UsageError(f"reports.jobs: format {bad[0]!r} is not one of {', '.join(sorted(formats.WRITERS))}")
        period = last_due_period(job.period, job.day, local_date(at))
        base = settings.reports.out_dir / f"{job.scope.replace(':', '-')}_{period.label}"
        done = base.with_name(base.name + ".done")
        if not done.exists():
            out.append(Due(job, period, [base.with_name(f"{base.name}.{f}") for f in job.formats], done))
    return out


def run_scheduled(settings: Settings, at_text: str | None) -> int:
    """Produce every due job once; 0 when all are done, 1 if any failed (retried next run), 2 bad settings."""
    try:
        at = parse_timestamp(at_text) if at_text else int(time.time())
        due = due_jobs(settings, at)
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if any(d.job.to for d in due) and (settings.reports.smtp is None or settings.reports.smtp.host is None):
        print("error: reports.jobs have recipients but reports.smtp is not configured", file=sys.stderr)
        return 2
    registry = load_checked_registry(settings) if due else None
    failed = 0
    for d in due:
        try:
            _produce(settings, registry, d, at)
        except (UsageError, formats.FormatUnavailable, OSError, smtplib.SMTPException) as exc:
            failed += 1
            log.error("scheduled report failed", extra={"scope": d.job.scope, "period": d.period.label,
                                                        "error": f"{type(exc).__name__}: {exc}"})
            print(f"error: {d.job.scope} {d.period.label}: {exc}", file=sys.stderr)
    print(f"{len(due) - failed} scheduled report(s) produced, {failed} failed, "
          f"{len(settings.reports.jobs) - len(due)} already done", file=sys.stderr)
    return 1 if failed else 0


def _produce(settings: Settings, registry: Registry | None, d: Due, at: int) -> None:
    assert registry is not None
    win, scope, _ = resolve(d.period.label, d.job.scope, None, registry, settings)
    if not win.ended:  # cannot happen for a due period; a clock set back must not send half a period
        raise UsageError(f"{d.period.label} has not ended at {local_text(at)}")
    for fmt in d.job.formats:
        formats.check(fmt)
    report = asyncio.run(produce(settings, registry, win, scope))
    for path, fmt in zip(d.files, d.job.formats, strict=True):
        formats.write(fmt, report, path)
    if d.job.to:
        assert settings.reports.smtp is not None
        send(settings.reports.smtp, d.job.to, f"{report['scope_name']} {report['period_cn']} 能源资源消耗统计报表",
             _body(report), d.files)
    d.done.write_text(f"done {utc_text(time.time())}, mailed to {len(d.job.to)} recipient(s)\n", encoding="utf-8")
    log.info("scheduled report done", extra={"scope": d.job.scope, "period": d.period.label,
                                             "files": [str(p) for p in d.files], "mailed_to": len(d.job.to)})


def _body(report: dict) -> str:
    lines = [f"{report['scope_name']} {report['period_cn']}（{report['start_local']} 至 {report['end_local']}，UTC+8）",
             f"综合能耗 {report['totals']['energy_kgce']:,.1f} kgce，用电 {report['totals']['electricity_kwh']:,.1f} kWh，"
             f"用水 {report['totals']['water_m3']:,.1f} m³",
             f"需核实项目 {len(report['quality'])} 项，见附件。", "", "-- meterwatch"]
    return "\n".join(lines)


def send(smtp: SmtpSettings, to: list[str], subject: str, body: str, files: list[Path]) -> None:
    """One message with the files attached (``meterwatch.mail``)."""
    deliver(smtp, message(smtp, to, subject, body, attachments=files))
