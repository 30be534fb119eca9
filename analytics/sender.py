"""The sender: delivers what evaluations queued, outside the evaluation.

Evaluations (and acknowledgements) only queue: contacts' digests in
``book.messages``, the notifiers' events in their outboxes, both saved
before anything leaves.  The sender runs beside them in the scheduled
process (``run``) and after ``--once`` for a bounded time (``drain``):

- one worker per destination (a contact's channel and address, or a
  notifier), so a slow or dead endpoint holds up only its own messages;
- each destination's rate limit (the channel's ``per_minute``);
- a failed message waits ``delivery_retry_s``, doubling up to
  ``delivery_retry_max_s``; after ``delivery_max_attempts``, or at once if
  retrying cannot help (a 3xx, a 4xx other than 429, a channel that cannot
  send digests, a contact gone from ``contacts.csv``), it is abandoned;
- every outcome (sent, failed, abandoned, with why) is a ``delivery``
  point in the store and a count in ``Sender.counts``;
- a delivered message leaves the queue and its id is recorded in the same
  save, so a restart sends it neither twice nor never.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

import aiohttp

from analytics.acklink import link
from analytics.alerts import AlertBook, Message
from analytics.digest import render
from analytics.metrics import AnalyticsMetrics
from analytics.notifiers import channels
from analytics.notifiers.base import Notifier, notifier_key
from analytics.notifiers.email import send_mail
from analytics.notifiers.http import Outcome, RateLimiter, post_json
from meterwatch.registry import Contact, Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Batch, DeliveryPoint, Store

log = logging.getLogger(__name__)
IDLE_CHECK_S = 30.0  # with nothing due, look again at least this often (held messages, retries)


async def deliver_notifiers(book: AlertBook, notifiers: list[Notifier]) -> None:
    """Hand every notifier the events waiting in its outbox; what fails waits there for the next try."""
    async with book.notifying:
        for notifier in notifiers:
            key = notifier_key(notifier)
            pending = list(book.outbox.get(key, []))
            if not pending:
                continue
            try:
                await notifier.send(pending)
                book.taken(key, len(pending))
            except Exception as exc:  # noqa: BLE001 - an outage must not lose the events: kept for later
                log.error("notifier failed; events kept for the next try",
                          extra={"notifier": key, "events": len(pending), "error": repr(exc)[:300]})
            book.save()


class Sender:
    def __init__(self, book: AlertBook, registry: Registry, cfg: AnalyticsSettings, notifiers: list[Notifier],
                 store: Store | None = None, clock: Callable[[], float] = time.time,
                 metrics: AnalyticsMetrics | None = None) -> None:
        self.book, self.registry, self.cfg, self.notifiers, self.store = book, registry, cfg, notifiers, store
        self.metrics = metrics
        self.clock = clock
        self.counts: Counter[str] = Counter()  # outcome -> messages (the analytics metrics)
        self.limiters: dict[tuple[str, str], RateLimiter] = {}
        self.workers: dict[object, asyncio.Task[None]] = {}
        self.notifier_failures: Counter[str] = Counter()  # consecutive failures, by notifier key
        self.notifier_retry: dict[str, float] = {}  # notifier key -> not before (backoff)
        self.timeout = aiohttp.ClientTimeout(total=cfg.delivery_timeout_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; each worker's failures are its own (logged, retried), never the loop's."""
        try:
            while not stop.is_set():
                self.book.wake.clear()
                self.start()
                waits = [asyncio.ensure_future(self.book.wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=self.next_due_in(), return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            if self.workers:  # stopping: what is in flight finishes (and is recorded) within a request's time
                await asyncio.wait(list(self.workers.values()), timeout=self.cfg.delivery_timeout_s)
        finally:
            await self.close()

    async def drain(self, timeout_s: float, retry: bool = True) -> bool:
        """Deliver what may go now, retrying failures after their backoff (unless ``retry`` is false: one pass),
        for at most ``timeout_s``; True if nothing deliverable is left (quiet hours may still hold some)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                passes = 0
                while True:
                    if retry or not passes:
                        self.start()
                        passes += 1
                    if self.busy():
                        await asyncio.gather(*self.workers.values(), return_exceptions=True)
                        continue
                    if not retry or not self.pending():
                        break
                    await asyncio.sleep(self.next_due_in())  # the next retry's backoff
        await self.close()
        return not self.pending()

    def pending(self) -> bool:
        """Messages that are not held by quiet hours, or notifier events, still waiting."""
        now = self.clock()
        return (any(m.not_before <= now for m in self.book.messages)
                or any(self.book.outbox.get(notifier_key(n)) for n in self.notifiers))

    async def close(self) -> None:
        for task in self.workers.values():
            task.cancel()
        await asyncio.gather(*self.workers.values(), return_exceptions=True)
        self.workers.clear()

    def busy(self) -> bool:
        return any(not t.done() for t in self.workers.values())

    def due(self) -> dict[tuple[str, str], list[Message]]:
        """Messages that may go now, by destination (channel, address), oldest first."""
        now = self.clock()
        found: dict[tuple[str, str], list[Message]] = {}
        for m in self.book.messages:
            if m.not_before <= now and m.next_try <= now:
                contact = self.registry.contacts.get(m.contact)
                found.setdefault((contact.channel, contact.address) if contact else ("", m.contact), []).append(m)
        return found

    def next_due_in(self) -> float:
        times = [max(m.not_before, m.next_try) for m in self.book.messages] + list(self.notifier_retry.values())
        return min([IDLE_CHECK_S] + [max(0.5, t - self.clock()) for t in times])

    def start(self) -> int:
        """Start a worker for every destination with something due and no worker running; how many started."""
        started = 0
        for dest in self.due():
            started += self._spawn(dest, self._drain_destination(dest))
        for notifier in self.notifiers:
            key = notifier_key(notifier)
            if self.book.outbox.get(key) and self.notifier_retry.get(key, 0) <= self.clock():
                started += self._spawn(key, self._deliver_notifier(notifier))
        return started

    async def _deliver_notifier(self, notifier: Notifier) -> None:
        """The notifier's outbox; if events remain (it failed), the next try waits, doubling each time."""
        key = notifier_key(notifier)
        await deliver_notifiers(self.book, [notifier])
        if self.book.outbox.get(key):
            self.notifier_failures[key] += 1
            delay = min(self.cfg.delivery_retry_s * 2 ** (self.notifier_failures[key] - 1), self.cfg.delivery_retry_max_s)
            self.notifier_retry[key] = self.clock() + delay
        else:
            self.notifier_failures.pop(key, None)
            self.notifier_retry.pop(key, None)

    def _spawn(self, key: object, work) -> int:  # noqa: ANN001 - a coroutine
        if key in self.workers and not self.workers[key].done():
            work.close()
            return 0
        self.workers[key] = asyncio.create_task(work)
        self.workers[key].add_done_callback(self._finished)
        return 1

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A worker ended: the loop looks again; a worker that raised (a bug of ours) is said, not swallowed."""
        self.book.wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery worker failed; its messages wait for the next try",
                      extra={"error": repr(task.exception())[:300]}, exc_info=task.exception())

    async def _drain_destination(self, dest: tuple[str, str]) -> None:
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            tried: set[str] = set()  # once each per run: a failure waits for its backoff and the next worker
            while batch := [m for m in self.due().get(dest, []) if m.id not in tried]:
                tried.add(batch[0].id)
                await self._send(session, batch[0])

    async def _send(self, session: aiohttp.ClientSession, message: Message) -> None:
        contact = self.registry.contacts.get(message.contact)
        if contact is not None and contact.channel == "email":
            heading, text = render(message, self.registry, self._link())
            await self._record(message, contact, await send_mail(self.cfg.smtp, contact.address, heading, text,
                                                                 message.id))
            return
        channel = channels().get(contact.channel) if contact else None
        if contact is None or channel is None or channel.digest is None:
            why = (f"contact {message.contact} is no longer in contacts.csv" if contact is None
                   else f"channel {contact.channel} cannot send digests")
            await self._record(message, contact, Outcome(False, why, permanent=True))
            return
        heading, text = render(message, self.registry, self._link())
        url = contact.address
        secret = self.cfg.contact_secrets.get(contact.id)
        if secret is not None and channel.sign is not None:
            url = channel.sign(url, secret.get_secret_value(), self.clock())
        limiter = self.limiters.setdefault((contact.channel, contact.address), RateLimiter(channel.per_minute))
        await limiter.acquire()
        outcome = await post_json(session, url, channel.digest(heading, text, message.events), channel.accepted)
        await self._record(message, contact, outcome)

    def _link(self) -> Callable[[str], str] | None:
        """Alert id -> its acknowledgement link, if links are configured (public URL and secret)."""
        base, secret = self.cfg.public_url, self.cfg.ack_secret
        if not base or secret is None:
            return None
        now = self.clock()
        return lambda alert_id: link(base, alert_id, now, self.cfg.ack_link_ttl_s, secret.get_secret_value())

    async def _record(self, message: Message, contact: Contact | None, outcome: Outcome) -> None:
        """Book the outcome (saved at once), count it, and write it to the store (best effort: logged)."""
        message.attempts += 1
        if outcome.ok:
            state = "sent"
            self.book.sent(message)
        elif outcome.permanent or message.attempts >= self.cfg.delivery_max_attempts:
            state = "abandoned"
            self.book.messages = [m for m in self.book.messages if m.id != message.id]
        else:
            state = "failed"
            delay = min(self.cfg.delivery_retry_s * 2 ** (message.attempts - 1), self.cfg.delivery_retry_max_s)
            message.next_try, message.error = int(self.clock() + delay), outcome.detail
        self.book.save()
        self.counts[state] += 1
        channel = contact.channel if contact else "?"
        if self.metrics is not None:
            self.metrics.deliveries.labels(channel, state).inc()
        extra = {"contact": message.contact, "channel": channel, "message_id": message.id, "outcome": state,
                 "alerts": len(message.events), "attempts": message.attempts, "detail": outcome.detail}
        (log.info if outcome.ok else log.error if state == "abandoned" else log.warning)("delivery", extra=extra)
        if self.store is None:
            return
        point = DeliveryPoint(channel, message.contact, state, time.time_ns(), message.id,
                              ",".join(sorted({e.id for e in message.events})), outcome.detail, message.attempts)
        try:
            async with self.book.storing:
                await self.store.write(Batch(deliveries=[point]))
        except Exception as exc:  # noqa: BLE001 - the delivery stands; only its record is missing (logged)
            log.warning("delivery not recorded in the store", extra={**extra, "error": repr(exc)[:300]})
