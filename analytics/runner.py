"""One evaluation of every rule at a given time: gather, evaluate, apply the lifecycle, save, write, queue.

A rule that fails (a store error, a bug) is logged with its reason and the
other rules still run: one bad input must not silence the province.  Rules
gather their inputs a few at a time (``rules_at_once``: the store answers
two queries on two cores), and their outcomes are applied to the book in
the rules' order, so the book is the same as one rule at a time.

The book (with its new events in the outboxes and the contacts' digests)
is saved before anything is written or sent; the evaluation then writes
the alerts to the store and returns.  It never waits for a notifier or a
contact: the sender (``analytics.sender``) delivers those on its own.  A
store that refuses the alerts makes the evaluation fail (the caller counts
it); the refused events stay in the outbox for the next evaluation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from analytics.alerts import STORE, AlertBook
from analytics.digest import compose, reminders
from analytics.mutes import unmuted
from analytics.costs import price_through
from analytics.notifiers.base import Notifier, notifier_key
from analytics.rules import configure, discover
from analytics.rules.base import Context, RuleResult
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, Batch, Store, StoreError

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    at: int
    ran: list[str] = field(default_factory=list)  # the rules evaluated
    events: list[AlertPoint] = field(default_factory=list)
    open_by_rule: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)  # rule -> reason
    skipped: list[str] = field(default_factory=list)  # rules that had nothing to judge
    store_failed: bool = False  # a rule or the pricing failed because the store did: the evaluation is incomplete
    notes: dict[str, list[str]] = field(default_factory=dict)  # rule -> what it could not judge, and why


async def evaluate(store: Store, registry: Registry, cfg: AnalyticsSettings, book: AlertBook, at: int,
                   notifiers: list[Notifier], rules: list[str] | None = None) -> Evaluation:
    catalogue = discover()
    own = configure(cfg, catalogue)  # checked at start by the command line; a bad section raises here
    result = Evaluation(at, ran=rules or list(catalogue))
    try:
        await price_through(store, registry, at, cfg.pricing_days_per_evaluation,  # the budget reads costs
                            cfg.reprice_every_s)
    except Exception as exc:  # noqa: BLE001 - reported; the rules still run on what was priced before
        log.error("pricing failed", extra={"error": repr(exc)[:300]}, exc_info=True)
        result.failed["pricing"] = repr(exc)[:300]
        result.store_failed |= isinstance(exc, StoreError)
    room = asyncio.Semaphore(cfg.rules_at_once)

    async def judge(rule: str) -> RuleResult:
        async with room:  # a few rules at once: their queries overlap in the store
            return await catalogue[rule].evaluate(Context(catalogue[rule], store, registry, cfg, own[rule], at))

    outcomes = await asyncio.gather(*(judge(rule) for rule in result.ran), return_exceptions=True)
    for rule, outcome in zip(result.ran, outcomes, strict=True):  # applied in the rules' order, whatever finished first
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # cancelled: not a rule's failure
            log.error("rule failed", extra={"rule": rule, "error": repr(outcome)[:300]}, exc_info=outcome)
            result.failed[rule] = repr(outcome)[:300]
            result.store_failed |= isinstance(outcome, StoreError)
            continue
        if outcome.skipped:
            result.skipped.append(rule)
        result.events += book.apply(rule, outcome.findings, outcome.scope, at)
        if outcome.notes:
            result.notes[rule] = outcome.notes
    book.post(result.events, [STORE])
    sent = unmuted(result.events, cfg.mute_file, at)  # muted: stored, not sent
    book.post(sent, [notifier_key(n) for n in notifiers])
    book.undigested += sent
    if cfg.escalation.enabled:  # unacknowledged too long: the next level hears, the others are reminded
        book.undigested += unmuted(reminders(book, cfg.escalation.after_s, at), cfg.mute_file, at)
    compose(book, registry, at, escalate=cfg.escalation.enabled)  # this evaluation's digests (and acks since)
    book.save()  # before anything leaves: a crash from here on re-opens nothing
    for e in result.events:
        log.info("alert", extra={"rule": e.rule, "id": e.id, "state": e.state, "institution": e.institution,
                                 "device": e.device, "value": e.value})
    result.open_by_rule = Counter(a.rule for a in book.alerts.values())
    book.wake.set()  # the sender: something to deliver
    await write_alerts(book, store)
    return result


async def write_alerts(book: AlertBook, store: Store) -> None:
    """Write the alert events waiting for the store; raise its error if it refused them (they stay queued)."""
    async with book.storing:
        pending = list(book.outbox.get(STORE, []))
        if not pending:
            return
        try:
            await store.write(Batch(alerts=pending))
        except Exception:
            log.error("alerts not written; kept for the next evaluation", extra={"events": len(pending)})
            raise
        book.taken(STORE, len(pending))
        book.save()
