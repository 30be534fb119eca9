"""Analytics as a process: evaluations on a schedule, and operators' acknowledgements over MQTT.

The sender (``analytics.sender``) delivers what they queue, beside them.
The alert book is shared by all three within one event loop and saved before
anything leaves it, so a restart neither re-opens nor forgets an alert,
nor an acknowledgement.

Nothing dies quietly: the ack listener ending for any reason other than a
lost broker (which it reconnects to), the sender ending, or ``max_failed_evaluations``
evaluations failing in a row, ends ``run_scheduled`` with ``AnalyticsDied``,
and ``meterwatch analyze`` exits non-zero so that a supervisor restarts it.
A failed evaluation is logged with its count and retried at the next
schedule.  The officers' statistics (``statistic``) are written after the
first evaluation and then at most every ``statistics_interval_s``; a
failure to write them is logged and retried after the next evaluation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from pathlib import Path

import aiomqtt

from analytics.alerts import STORE, AlertBook
from analytics.notifiers.base import Notifier, notifier_key
from analytics.metrics import AnalyticsMetrics
from analytics.mutes import unmuted
from analytics.report import statistics
from analytics.runner import Evaluation, evaluate, write_alerts
from analytics.sender import Sender, deliver_notifiers
from analytics.web import add_ack_routes
from meterwatch.aio import wait_set
from meterwatch.const import ACK_TOPIC
from meterwatch.httpservice import HttpService
from meterwatch.mqtt import client_kwargs
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings, Settings
from meterwatch.store import Store, StoreError

log = logging.getLogger(__name__)


class AnalyticsDied(RuntimeError):
    """A part of the scheduled process stopped: the process must exit non-zero and be restarted."""


async def acknowledge(book: AlertBook, alert_id: str, by: str, store: Store, notifiers: list[Notifier],
                      now: int | None = None, mute_file: Path | None = None) -> bool:
    """Mark the alert acknowledged (saved first), then store and announce the event; raises StoreError if
    the store refused it (the event stays in the outbox for the next evaluation)."""
    event = book.acknowledge(alert_id, int(now or time.time()))
    if event is None:
        return False
    log.info("alert acknowledged", extra={"id": alert_id, "by": by, "institution": event.institution,
                                          "device": event.device, "rule": event.rule})
    book.post([event], [STORE])
    sent = unmuted([event], mute_file, event.ts)
    book.post(sent, [notifier_key(n) for n in notifiers])
    book.undigested += sent  # the contacts hear of it in the next evaluation's digest
    book.save()
    try:
        await write_alerts(book, store)
    finally:
        await deliver_notifiers(book, notifiers)  # one event: announced now, whatever the store said
    return True


async def publish_ack(settings: Settings, alert_id: str, by: str) -> None:
    """Ask the running analytics process to acknowledge (QoS 1: the broker has it when this returns)."""
    async with aiomqtt.Client(**client_kwargs(settings)) as client:
        await client.publish(ACK_TOPIC, json.dumps({"id": alert_id, "by": by}, ensure_ascii=False), qos=1)


async def listen_for_acks(settings: Settings, book: AlertBook, store: Store, notifiers: list[Notifier],
                          ready: asyncio.Event | None = None) -> None:
    """Acknowledge alerts named on ``meterwatch/ack/alerts``; reconnects on broker loss."""
    delay = 1.0
    while True:
        try:
            async with aiomqtt.Client(**client_kwargs(settings, identifier="meterwatch-analytics-acks")) as client:
                await client.subscribe(ACK_TOPIC, qos=1)
                log.info("listening for acknowledgements", extra={"topic": ACK_TOPIC})
                if ready:
                    ready.set()
                delay = 1.0
                async for message in client.messages:
                    await _on_ack(message, book, store, notifiers, settings.analytics.mute_file)
        except aiomqtt.MqttError as exc:
            log.warning("ack listener lost the broker; reconnecting", extra={"error": str(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _on_ack(message: aiomqtt.Message, book: AlertBook, store: Store, notifiers: list[Notifier],
                  mute_file: Path | None = None) -> None:
    try:
        body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
        alert_id, by = str(body["id"]), str(body.get("by", "mqtt"))
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable acknowledgement", extra={"topic": str(message.topic),
                                                         "payload": str(message.payload)[:200]})
        return
    try:
        if not await acknowledge(book, alert_id, by, store, notifiers, mute_file=mute_file):
            log.warning("acknowledgement for no open alert", extra={"id": alert_id, "by": by})
    except StoreError:  # logged by deliver; the acknowledgement is saved and its event waits in the outbox
        pass


async def evaluate_on_schedule(settings: Settings, registry: Registry, store: Store, book: AlertBook,
                               notifiers: list[Notifier], stop: asyncio.Event, done: list[Evaluation],
                               metrics: AnalyticsMetrics | None = None) -> None:
    cfg = settings.analytics
    failures = 0
    statistics_due = 0.0  # the first evaluation writes them
    while not stop.is_set():
        started = time.monotonic()
        try:
            result = await evaluate(store, registry, cfg, book, int(time.time()), notifiers)
            done.append(result)
            log.info("evaluation done", extra={"at": result.at, "events": len(result.events),
                                               "failed": sorted(result.failed)})
            if time.monotonic() >= statistics_due and await write_statistics(store, registry, cfg, result.at):
                statistics_due = time.monotonic() + cfg.statistics_interval_s
            active = [r for r in result.ran if r not in result.skipped]  # a skipped rule had nothing to judge
            every_rule = bool(active) and all(r in result.failed for r in active)  # (pricing is not a rule)
            failed = sorted(result.failed) if result.store_failed or every_rule else []
        except Exception as exc:  # noqa: BLE001 - counted; retried at the next schedule
            failed = [repr(exc)[:300]]
        failures = failures + 1 if failed else 0
        if metrics is not None:
            metrics.evaluated(time.monotonic() - started, bool(failed), Counter(a.rule for a in book.alerts.values()))
        if failed:
            log.error("evaluation failed", extra={"consecutive": failures, "limit": cfg.max_failed_evaluations,
                                                  "reason": failed})
            if failures >= cfg.max_failed_evaluations:
                raise AnalyticsDied(f"{failures} evaluations failed in a row; last: {failed}")
        await wait_set(stop, cfg.interval_s)


async def write_statistics(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int) -> bool:
    """The officers' statistics as of ``at``, into the store; False (logged, tried again at the next
    evaluation) if they could not be computed or written."""
    try:
        points, _ = await statistics(store, registry, at, cfg.profile_min_days)
    except Exception as exc:  # noqa: BLE001 - the alerts went out; the figures wait for the next evaluation
        log.error("statistics not written; retried at the next evaluation", extra={"error": repr(exc)[:300]})
        return False
    log.info("statistics written", extra={"points": len(points), "at": at})
    return True


async def run_scheduled(settings: Settings, registry: Registry, store: Store, book: AlertBook,
                        notifiers: list[Notifier], stop: asyncio.Event, sender: Sender | None = None
                        ) -> list[Evaluation]:
    """Evaluate every ``interval_s``, deliver (the sender) and listen for acknowledgements until ``stop``;
    raise AnalyticsDied as soon as any part dies."""
    done: list[Evaluation] = []
    cfg = settings.analytics
    metrics = AnalyticsMetrics(book)
    sender = sender or Sender(book, registry, cfg, notifiers, store, metrics=metrics)
    http = await start_http(settings, book, store, notifiers, metrics)
    tasks = {asyncio.create_task(listen_for_acks(settings, book, store, notifiers), name="ack listener"),
             asyncio.create_task(sender.run(stop), name="sender"),
             asyncio.create_task(evaluate_on_schedule(settings, registry, store, book, notifiers, stop, done, metrics),
                                 name="evaluations")}
    try:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            if task.get_name() in ("evaluations", "sender") and task.exception() is None and stop.is_set():
                return done  # stopped on request
            error = task.exception()
            if isinstance(error, AnalyticsDied):
                raise error
            raise AnalyticsDied(f"{task.get_name()} died: {error!r}"[:500]) from error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if http is not None:
            await http.stop()
    return done


async def start_http(settings: Settings, book: AlertBook, store: Store, notifiers: list[Notifier],
                     metrics: AnalyticsMetrics) -> HttpService | None:
    """The HTTP service (``/healthz``, ``/metrics``, the acknowledgement links if a secret is set), if
    ``analytics.http_listen`` is; a taken address raises (the process exits non-zero)."""
    cfg = settings.analytics
    if not cfg.http_listen:
        return None
    http = HttpService(cfg.http_listen, metrics.registry, lambda: metrics.healthy(cfg.interval_s))
    if cfg.ack_secret is not None:
        async def ack(alert_id: str, by: str) -> bool:
            try:
                return await acknowledge(book, alert_id, by, store, notifiers, mute_file=cfg.mute_file)
            except StoreError:  # saved; its event waits in the outbox for the next evaluation
                return True
        add_ack_routes(http, ack, cfg.ack_secret.get_secret_value(), metrics)
    await http.start()
    log.info("analytics HTTP service listening", extra={"host": http.host, "port": http.port,
                                                        "ack_links": cfg.ack_secret is not None})
    return http
