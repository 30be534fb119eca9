"""``meterwatch analyze``: once (optionally as of a past time) or on a schedule.

Exit codes: 0 done; 1 an evaluation or acknowledgement failed (the store
refused the alerts: they wait in the state's outbox), or the scheduled
process lost a part (see ``analytics.service``); 2 bad settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import asyncio
import logging
import sys
import time

import aiomqtt

from analytics.alerts import StateBusy, hold_state, load_book
from analytics.notifiers import check_notifiers, http_notifier
from analytics.notifiers.base import Notifier
from analytics.notifiers.mqtt import MqttNotifier
from analytics.report import statistics
from analytics.routing import unknown_rules
from analytics.rules import configure, discover
from analytics.runner import evaluate
from analytics.sender import Sender
from analytics.service import AnalyticsDied, acknowledge, publish_ack, run_scheduled
from meterwatch.const import ACK_TOPIC
from meterwatch.httpservice import parse_listen
from meterwatch.runtime import load_checked_registry, run_until_signalled
from meterwatch.timestamps import parse_timestamp
from meterwatch.settings import Settings
from meterwatch.store import StoreError, store_for

log = logging.getLogger(__name__)


def run(args: argparse.Namespace, settings: Settings) -> int:
    cfg = settings.analytics
    try:  # configuration errors (rule sections, notifier kinds, store or broker URL) stop here, URLs redacted
        configure(cfg)
        check_notifiers(cfg)
        if cfg.http_listen:
            parse_listen(cfg.http_listen)
        store = store_for(settings, timeout_s=cfg.query_timeout_s)
        notifiers: list[Notifier] = [] if args.no_publish else [MqttNotifier(settings)] + [
            http_notifier(n.kind, n.url.get_secret_value(), n.per_minute) for n in cfg.notifiers]
    except ValueError as exc:
        print(f"error: bad settings: {exc}", file=sys.stderr)
        return 2
    registry = load_checked_registry(settings)
    if unknown := unknown_rules(registry.contacts.values(), discover()):
        print("error: bad contacts:\n  " + "\n  ".join(unknown), file=sys.stderr)
        return 2
    mailed = sorted(c.id for c in registry.contacts.values() if c.channel == "email")
    if mailed and not cfg.smtp.host and not args.no_publish:
        print(f"error: bad settings: analytics.smtp.host is not set, and contacts.csv has email contacts "
              f"({', '.join(mailed)})", file=sys.stderr)
        return 2
    if args.no_publish:  # the store only: no contact hears of anything, now or later
        registry = dataclasses.replace(registry, contacts={})
    at = parse_timestamp(args.at) if args.at else None

    async def once() -> None:
        book = load_book(cfg.state_file, update_interval_s=cfg.update_interval_s)
        try:
            result = await evaluate(store, registry, cfg, book, at or int(time.time()), notifiers)
        finally:  # what was queued goes out even if the store refused the alerts
            sender = Sender(book, registry, cfg, notifiers, store)
            drained = await sender.drain(cfg.delivery_wait_s)
        print(f"evaluated at {result.at}: {len(result.events)} event(s); open alerts by rule: "
              f"{dict(result.open_by_rule) or 'none'}")
        print(f"messages to contacts: {dict(sender.counts) or 'none'}; "
              + ("all delivered" if drained else "the rest waits in the outbox for the next run"))
        for rule, notes in result.notes.items():
            for note in notes:
                print(f"  {rule}: {note}")
        for rule, reason in result.failed.items():
            print(f"  {rule}: FAILED: {reason}")
        _, lines = await statistics(store, registry, result.at, cfg.profile_min_days)
        print("statistics (also in the store's 'statistic' measurement):")
        for line in lines:
            print("  " + line)

    async def ack(alert_id: str) -> bool | None:
        """Acknowledged here (True), no such open alert (False), or handed to the running process (None),
        which owns the state (and, with DuckDB, the store file)."""
        try:
            with hold_state(cfg.state_file, "ack"):
                book = load_book(cfg.state_file, update_interval_s=cfg.update_interval_s)
                await store.open()
                try:
                    return await acknowledge(book, alert_id, args.by, store, notifiers, mute_file=cfg.mute_file)
                finally:
                    await store.close()
        except StateBusy as busy:
            if not busy.holder.startswith("scheduled"):
                raise  # an `analyze --once` listens to no acknowledgement: try again when it is done
            await publish_ack(settings, alert_id, args.by)  # as an operator's message: the process saves it
            return None

    code = 0

    async def main(stop: asyncio.Event) -> None:
        nonlocal code
        if args.ack:
            acknowledged = await ack(args.ack)
            print(f"alert {args.ack} acknowledged by {args.by}" if acknowledged
                  else f"no open, unacknowledged alert with id {args.ack}" if acknowledged is False
                  else f"alert {args.ack}: acknowledgement by {args.by} sent to the running analytics "
                       f"process (topic {ACK_TOPIC}); it says in its log whether the alert was open")
            code = 1 if acknowledged is False else 0
            return
        with hold_state(cfg.state_file, "once" if args.once else "scheduled"):  # one evaluating process
            await store.open()
            try:
                if args.once:
                    await once()
                else:
                    book = load_book(cfg.state_file, update_interval_s=cfg.update_interval_s)
                    await run_scheduled(settings, registry, store, book, notifiers, stop)
            finally:
                await store.close()

    try:
        asyncio.run(run_until_signalled(main))
    except (StoreError, AnalyticsDied, StateBusy, aiomqtt.MqttError) as exc:
        log.error("analytics stopped", extra={"error": repr(exc)[:500]})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code
