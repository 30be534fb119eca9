"""One evaluation of every rule at a given time: gather, evaluate, apply the lifecycle, write, notify.

A rule that fails (a store error, a bug) is logged with its reason and the
other rules still run: one bad input must not silence the province.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from analytics.alerts import AlertBook
from analytics.evaluators import EVALUATORS
from analytics.notifiers.base import Notifier
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, Batch, Store

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    at: int
    events: list[AlertPoint] = field(default_factory=list)
    open_by_rule: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)  # rule -> reason
    notes: dict[str, list[str]] = field(default_factory=dict)  # rule -> what it could not judge, and why


async def evaluate(store: Store, registry: Registry, cfg: AnalyticsSettings, book: AlertBook, at: int,
                   notifiers: list[Notifier], rules: list[str] | None = None) -> Evaluation:
    result = Evaluation(at)
    for rule in rules or list(EVALUATORS):
        try:
            outcome = await EVALUATORS[rule](store, registry, cfg, at)
        except Exception as exc:  # noqa: BLE001 - reported, and the other rules still run
            log.error("rule failed", extra={"rule": rule, "error": repr(exc)[:300]}, exc_info=True)
            result.failed[rule] = repr(exc)[:300]
            continue
        result.events += book.apply(rule, outcome.findings, outcome.scope, at)
        if outcome.notes:
            result.notes[rule] = outcome.notes
    if result.events:
        await store.write(Batch(alerts=result.events))
        for notifier in notifiers:
            try:
                await notifier.send(result.events)
            except Exception as exc:  # noqa: BLE001 - a notifier outage must not lose the evaluation
                log.error("notifier failed", extra={"notifier": type(notifier).__name__, "error": repr(exc)[:300]})
    for e in result.events:
        log.info("alert", extra={"rule": e.rule, "state": e.state, "institution": e.institution,
                                 "device": e.device, "value": e.value})
    result.open_by_rule = Counter(a.rule for a in book.alerts.values())
    return result
