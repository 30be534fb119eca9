"""``meterwatch``: one console script, one subcommand per role.

The top of the layers: it may import every package, and none imports it.
Each subcommand lives in the package that does the work; this module only
parses arguments, loads settings and registry, and maps failures to exit
codes: 0 done, 1 failed, 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
import logging
import re
import signal
import sys
from pathlib import Path

from analytics import alerts_cli
from benchmarks import cli as bench_cli
from dashboards import cli as dashboards_cli
from dashboards.common import AnalyticsFacts
from meterwatch.log import setup_logging
from meterwatch.registry import RegistryError, load_registry
from meterwatch.runtime import load_checked_registry, run_until_signalled
from meterwatch.settings import Settings, load_settings, redact_url
from reports import cli as report_cli

log = logging.getLogger("meterwatch")


# -- subcommands ----------------------------------------------------------------------------------

def cmd_registry_check(args: argparse.Namespace, settings: Settings) -> int:
    directory = args.dir or settings.registry
    try:
        registry, problems = load_registry(directory, settings.cities)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"{directory / problem.file}:{problem.line}: {problem.message}")
    print(f"{len(registry.institutions)} institutions, {len(registry.devices)} devices, "
          f"{len(registry.cards)} cards, "
          f"{len(registry.contacts)} contacts loaded; {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    from collector.metrics import health, prometheus_registry
    from collector.push import PushRoutes
    from collector.service import Collector, CollectorDied
    from meterwatch.httpservice import HttpService, parse_listen
    from meterwatch.store import store_for

    if args.status:
        return collect_status(settings)
    try:
        if settings.collector.http_listen:
            parse_listen(settings.collector.http_listen)
        settings, workers = _collect_layout(args, settings)
    except ValueError as exc:
        print(f"error: bad settings: {exc}", file=sys.stderr)
        return 2
    if workers > 1:
        return run_workers(settings, workers, args.config)
    registry = load_checked_registry(settings)
    store = store_for(settings, timeout_s=settings.collector.store_timeout_s,
                      max_body_bytes=settings.collector.write_max_bytes)
    log.info("collector starting", extra={"store": redact_url(settings.store), "broker": redact_url(settings.broker),
                                          "devices": len(registry.devices)})

    async def main(stop: asyncio.Event) -> None:
        collector = Collector(settings, registry, store)
        http = None
        if settings.collector.http_listen:  # /healthz, /metrics, and the platforms' HTTP push
            http = HttpService(settings.collector.http_listen, prometheus_registry(collector.metrics),
                               lambda: health(collector.metrics))
            first = collector.partition is None or collector.partition.index == 0  # pushes go to worker 0
            platforms = PushRoutes(collector).install(http) if first else []
            await http.start()
            log.info("http service listening", extra={"port": http.port, "push": ",".join(platforms) or "off"})
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, collector.reload_registry)  # registry check first; bad: kept old
        try:
            await collector.run(stop)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            if http is not None:
                await http.stop()
            await store.close()

    try:
        asyncio.run(run_until_signalled(main))
    except CollectorDied as exc:  # logged with its cause; a supervisor restarts us
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _collect_layout(args: argparse.Namespace, settings: Settings) -> tuple[Settings, int]:
    """The settings of this process and how many workers to supervise (1: this process collects).

    ``--partition i/N`` (a worker of ``--workers N``) collects one partition.
    ValueError for a layout that cannot work: several processes on one DuckDB
    file, or a spool left by another layout (its batches were acknowledged to
    the broker, and only its own process would write them to the store)."""
    from meterwatch.settings import CollectorSettings
    from meterwatch_cli.workers import default_workers, stranded_spools

    if args.partition is not None:
        if args.workers is not None:
            raise ValueError("--partition is one worker of --workers: give one or the other")
        cfg = CollectorSettings(**{**settings.collector.model_dump(), "partition": args.partition})
        settings = settings.model_copy(update={"collector": cfg})
    if settings.collector.partition is not None:
        _log_partition(settings.collector.partition)
        return settings, 1
    workers = args.workers or settings.collector.workers or default_workers(settings)
    if workers > 1 and settings.store.startswith("duckdb:"):
        raise ValueError(f"--workers {workers}: a DuckDB file is held by one process; use --workers 1, or InfluxDB")
    for directory, batches in stranded_spools(settings, workers if workers > 1 else None):
        suffix = re.fullmatch(r".*-p(\d+)", directory.name)
        needs = f"--workers {int(suffix[1]) + 1} or more" if suffix else "--workers 1"
        raise ValueError(f"spool {directory} holds {batches} batch(es) acknowledged but not yet stored, which "
                         f"{workers} worker(s) would not replay: run with {needs} until it drains")
    return settings, workers


def _log_partition(partition: str) -> None:
    """Every log line of a worker says which one it is."""
    def tag(record: logging.LogRecord) -> bool:
        record.partition = partition
        return True
    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)


def run_workers(settings: Settings, workers: int, config: Path | None) -> int:
    from meterwatch_cli.workers import Supervisor

    load_checked_registry(settings)  # a registry no worker could start with fails here, once
    supervisor = Supervisor(settings, workers, config)
    code = 1

    async def main(stop: asyncio.Event) -> None:
        nonlocal code
        code = await supervisor.run(stop)

    log.info("collector supervisor starting", extra={"workers": workers, "store": redact_url(settings.store),
                                                     "broker": redact_url(settings.broker)})
    asyncio.run(run_until_signalled(main))
    return code


def collect_status(settings: Settings) -> int:
    from collector.status import status_report
    from meterwatch.store import store_for

    async def main() -> tuple[str, bool]:
        store = store_for(settings)
        try:
            await store.open()
            return await status_report(store)
        finally:
            await store.close()

    text, any_reporting = asyncio.run(main())
    print(text)
    return 0 if any_reporting else 1


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from collector.imports import import_file
    from collector.tables import BadFile
    from meterwatch.store import StoreError, store_for

    registry = load_checked_registry(settings)

    async def main() -> int:
        store = store_for(settings)
        try:
            await store.open()
            report = await import_file(args.file, registry, settings, store, dry_run=args.dry_run)
        except BadFile as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except StoreError as exc:  # e.g. a DuckDB file held by a running collector
            print(f"error: store {redact_url(settings.store)}: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        for problem in report.problems:
            print(problem)
        print(report.summary(args.file.name, args.dry_run), file=sys.stderr)
        return 1 if report.problems else 0

    if not args.file.is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 1
    return asyncio.run(main())


def cmd_rejects(args: argparse.Namespace, settings: Settings) -> int:
    from collector.replay import reject_line, replay, stored_rejects
    from meterwatch.store import StoreError, store_for
    from meterwatch.timestamps import parse_local_time

    try:
        since = parse_local_time(args.since) if args.since else None
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        return 2
    registry = load_checked_registry(settings) if args.action == "replay" else None

    async def main() -> int:
        store = store_for(settings)
        try:
            await store.open()
            rejects = await stored_rejects(store, args.reason, since)
            if registry is None:
                for r in rejects:
                    print(reject_line(r))
                print(f"{len(rejects)} rejects", file=sys.stderr)
                return 0
            report = await replay(rejects, registry, settings, store, dry_run=args.dry_run)
        except StoreError as exc:  # e.g. a DuckDB file held by a running collector
            print(f"error: store {redact_url(settings.store)}: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        print(report.summary(args.dry_run), file=sys.stderr)
        return 0

    return asyncio.run(main())


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulators import cli as sim_cli

    return sim_cli.run(args, settings)


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    from analytics import cli as analytics_cli

    return analytics_cli.run(args, settings)


def cmd_budget(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.budget_cli import run

    return run(args, settings)


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.alerts_cli import run

    return run(args, settings)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from reports.cli import run

    return run(args, settings)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from scenarios.demo import run_demo

    return run_demo(args, settings)


def dashboard_facts(settings: Settings) -> AnalyticsFacts:
    from scenarios.facts import analytics_facts

    return analytics_facts(settings)


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    from scenarios.render import run

    return run(args, settings)


# -- parser ---------------------------------------------------------------------------------------

def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meterwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML settings file (default: ./meterwatch.toml if present)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="embedded broker + DuckDB + simulated province, then a summary")
    p.add_argument("--institutions", type=int, default=500)
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours, ending now")
    p.add_argument("--workdir", type=Path, help="keep registry, store and labels here (default: a temp dir)")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("collect", help="run the collector until SIGTERM / Ctrl-C")
    p.add_argument("--status", action="store_true", help="print what the collectors last reported, and exit")
    p.add_argument("--workers", type=_positive, default=None,
                   help="collector processes under one supervisor, each device always on the same one (default: "
                        "collector.workers, else the machine's cores with InfluxDB, 1 with DuckDB)")
    p.add_argument("--partition", metavar="I/N", default=None,
                   help="collect only the devices of partition I of N (what each worker of --workers N runs)")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("simulate", help="generate a registry, publish a province, or backfill history")
    ssub = p.add_subparsers(dest="action", required=True)
    sp = ssub.add_parser("registry", help="write registry files for a simulated province")
    sp.add_argument("--out", type=Path, required=True)
    sp.add_argument("--institutions", type=int, default=None)
    sp.add_argument("--seed", type=int, default=None)
    sp = ssub.add_parser("publish", help="publish readings and weighings to the broker")
    sp.add_argument("--hours", type=float, default=24.0, help="simulated hours, ending now")
    sp.add_argument("--speed", type=float, default=None, help="simulated seconds per second")
    sp.add_argument("--labels", type=Path, default=None, help="ground-truth labels CSV")
    sp = ssub.add_parser("backfill", help="write simulated history straight into the store")
    sp.add_argument("--days", type=float, required=True)
    sp.add_argument("--end", type=datetime.fromisoformat, default=None, help="RFC 3339 end (default: now)")
    sp.add_argument("--labels", type=Path, default=None, help="ground-truth labels CSV")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("analyze", help="evaluate the rules; write and publish alerts")
    p.add_argument("--once", action="store_true", help="evaluate once and exit")
    p.add_argument("--at", help="evaluate as if the clock read this RFC 3339 time")
    p.add_argument("--no-publish", action="store_true", help="write alerts to the store only")
    p.add_argument("--ack", metavar="ALERT_ID", help="acknowledge an open alert and exit")
    p.add_argument("--by", default="cli", help="who acknowledges (with --ack)")
    p.set_defaults(func=cmd_analyze)

    alerts_cli.add_parser(sub, cmd_alerts)

    p = sub.add_parser("budget", help="budget execution in yuan: cost so far, projection, overrun or saving")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--at", help="as of this RFC 3339 time (default: now, or the end of a past year)")
    p.add_argument("--institution", help="one institution only")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_budget)

    report_cli.add_parser(sub, cmd_report)

    dashboards_cli.add_parser(sub, render=cmd_render, facts=dashboard_facts)

    p = sub.add_parser("registry", help="registry tools")
    rsub = p.add_subparsers(dest="action", required=True)
    rp = rsub.add_parser("check", help="validate registry files, line by line")
    rp.add_argument("--dir", type=Path, default=None)
    p.set_defaults(func=cmd_registry_check)

    p = sub.add_parser("import", help="import history: meter readings or utility bills from a CSV or xlsx file")
    p.add_argument("file", type=Path, help="CSV (UTF-8 or GBK) or xlsx: device,time,register or "
                                           "institution,month,kind,quantity,yuan")
    p.add_argument("--dry-run", action="store_true", help="check every row and report, store nothing")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("rejects", help="dead letters: list stored rejects, or replay them through the collector")
    rsub = p.add_subparsers(dest="action", required=True)
    for action, text in (("list", "print stored rejects, oldest first"),
                         ("replay", "feed the rejects' payloads through the collector's checks again; "
                                    "store what passes now")):
        rp = rsub.add_parser(action, help=text)
        rp.add_argument("--reason", help="only rejects of this reason (e.g. unknown_device)")
        rp.add_argument("--since", help="only rejects since this time (RFC 3339 or local 2026/10/01 08:00)")
        if action == "replay":
            rp.add_argument("--dry-run", action="store_true", help="report what would be stored, store nothing")
    p.set_defaults(func=cmd_rejects)

    bench_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: bad settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        return int(args.func(args, settings) or 0)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
