"""One evaluation of every rule at a given time: gather, evaluate, apply the lifecycle, save, write, notify.

A rule that fails (a store error, a bug) is logged with its reason and the
other rules still run: one bad input must not silence the province.

The book (with its new events in the outbox) is saved before anything is
written or sent; ``deliver`` then empties each destination's outbox.  A
store that refuses the alerts makes the evaluation fail (the caller counts
it) after the notifiers have had their events; the refused events stay in
the outbox for the next evaluation.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from analytics.alerts import STORE, AlertBook
from analytics.costs import price_through
from analytics.notifiers.base import Notifier, notifier_key
from analytics.rules import configure, discover
from analytics.rules.base import Context
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, Batch, Store

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    at: int
    ran: list[str] = field(default_factory=list)  # the rules evaluated
    events: list[AlertPoint] = field(default_factory=list)
    open_by_rule: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)  # rule -> reason
    skipped: list[str] = field(default_factory=list)  # rules that had nothing to judge
    notes: dict[str, list[str]] = field(default_factory=dict)  # rule -> what it could not judge, and why


async def evaluate(store: Store, registry: Registry, cfg: AnalyticsSettings, book: AlertBook, at: int,
                   notifiers: list[Notifier], rules: list[str] | None = None) -> Evaluation:
    catalogue = discover()
    own = configure(cfg, catalogue)  # checked at start by the command line; a bad section raises here
    result = Evaluation(at, ran=rules or list(catalogue))
    try:
        await price_through(store, registry, at, cfg.pricing_days_per_evaluation)  # the budget reads costs
    except Exception as exc:  # noqa: BLE001 - reported; the rules still run on what was priced before
        log.error("pricing failed", extra={"error": repr(exc)[:300]}, exc_info=True)
        result.failed["pricing"] = repr(exc)[:300]
    for rule in result.ran:
        try:
            outcome = await catalogue[rule].evaluate(Context(catalogue[rule], store, registry, cfg, own[rule], at))
        except Exception as exc:  # noqa: BLE001 - reported, and the other rules still run
            log.error("rule failed", extra={"rule": rule, "error": repr(exc)[:300]}, exc_info=True)
            result.failed[rule] = repr(exc)[:300]
            continue
        if outcome.skipped:
            result.skipped.append(rule)
        result.events += book.apply(rule, outcome.findings, outcome.scope, at)
        if outcome.notes:
            result.notes[rule] = outcome.notes
    book.post(result.events, [STORE] + [notifier_key(n) for n in notifiers])
    book.save()  # before anything leaves: a crash from here on re-opens nothing
    for e in result.events:
        log.info("alert", extra={"rule": e.rule, "id": e.id, "state": e.state, "institution": e.institution,
                                 "device": e.device, "value": e.value})
    result.open_by_rule = Counter(a.rule for a in book.alerts.values())
    await deliver(book, store, notifiers)
    return result


async def deliver(book: AlertBook, store: Store, notifiers: list[Notifier]) -> None:
    """Hand every destination what waits for it; raise the store's error (after notifying) if it refused."""
    async with book.delivering:
        store_error: Exception | None = None
        pending = list(book.outbox.get(STORE, []))
        if pending:
            try:
                await store.write(Batch(alerts=pending))
                book.taken(STORE, len(pending))
            except Exception as exc:  # noqa: BLE001 - kept in the outbox; notifiers still get theirs
                log.error("alerts not written; kept for the next evaluation",
                          extra={"events": len(pending), "error": repr(exc)[:300]})
                store_error = exc
            book.save()
        for notifier in notifiers:
            key = notifier_key(notifier)
            pending = list(book.outbox.get(key, []))
            if not pending:
                continue
            try:
                await notifier.send(pending)
                book.taken(key, len(pending))
            except Exception as exc:  # noqa: BLE001 - a notifier outage must not lose the evaluation
                log.error("notifier failed; events kept for the next evaluation",
                          extra={"notifier": key, "events": len(pending), "error": repr(exc)[:300]})
            book.save()
        if store_error is not None:
            raise store_error
