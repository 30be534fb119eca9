"""Analytics as a process: evaluations on a schedule, and operators' acknowledgements over MQTT.

The alert book is shared by both within one event loop and saved after
every change, so a restart neither re-opens nor forgets an alert, nor an
acknowledgement.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiomqtt

from analytics.alerts import AlertBook, save_book
from analytics.notifiers.base import Notifier
from analytics.runner import Evaluation, evaluate
from meterwatch.const import ACK_TOPIC
from meterwatch.mqtt import client_kwargs
from meterwatch.registry import Registry
from meterwatch.settings import Settings
from meterwatch.store import Batch, Store

log = logging.getLogger(__name__)


async def acknowledge(book: AlertBook, alert_id: str, by: str, store: Store, notifiers: list[Notifier],
                      settings: Settings, now: int | None = None) -> bool:
    event = book.acknowledge(alert_id, int(now or time.time()))
    if event is None:
        return False
    log.info("alert acknowledged", extra={"id": alert_id, "by": by, "institution": event.institution,
                                          "device": event.device, "rule": event.rule})
    await store.write(Batch(alerts=[event]))
    for notifier in notifiers:
        try:
            await notifier.send([event])
        except Exception as exc:  # noqa: BLE001 - the acknowledgement itself is stored and saved
            log.error("notifier failed", extra={"notifier": type(notifier).__name__, "error": repr(exc)[:200]})
    save_book(book, settings.analytics.state_file)
    return True


async def listen_for_acks(settings: Settings, book: AlertBook, store: Store, notifiers: list[Notifier],
                          ready: asyncio.Event | None = None) -> None:
    """Acknowledge alerts named on ``meterwatch/ack/alerts``; reconnects on broker loss."""
    delay = 1.0
    while True:
        try:
            async with aiomqtt.Client(**client_kwargs(settings, identifier="meterwatch-analytics-acks")) as client:
                await client.subscribe(ACK_TOPIC, qos=1)
                if ready:
                    ready.set()
                delay = 1.0
                async for message in client.messages:
                    try:
                        body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        alert_id, by = str(body["id"]), str(body.get("by", "mqtt"))
                    except (ValueError, KeyError, TypeError):
                        log.warning("unreadable acknowledgement", extra={"payload": str(message.payload)[:200]})
                        continue
                    if not await acknowledge(book, alert_id, by, store, notifiers, settings):
                        log.warning("acknowledgement for no open alert", extra={"id": alert_id, "by": by})
        except aiomqtt.MqttError as exc:
            log.warning("ack listener lost the broker; reconnecting", extra={"error": str(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def run_scheduled(settings: Settings, registry: Registry, store: Store, book: AlertBook,
                        notifiers: list[Notifier], stop: asyncio.Event) -> list[Evaluation]:
    listener = asyncio.create_task(listen_for_acks(settings, book, store, notifiers))
    done: list[Evaluation] = []
    try:
        while not stop.is_set():
            result = await evaluate(store, registry, settings.analytics, book, int(time.time()), notifiers)
            save_book(book, settings.analytics.state_file)
            done.append(result)
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.analytics.interval_s)
            except TimeoutError:
                pass
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    return done
