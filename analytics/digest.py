"""Digests: one message per contact per evaluation, listing its alerts, Chinese first.

``compose`` turns the book's undigested events (this evaluation's, and the
acknowledgements since the last one) into one ``Message`` per contact whose
route matches (``analytics.routing``); a muted alert is still evaluated and
stored, but not sent.  ``render`` writes the text at send time, from the
registry of the moment: title, then one block per alert (rule label,
institution name, device, value, since, the cost a day where the rule said
it), new alerts first, then updates, resolved and acknowledged ones; an
open alert carries its acknowledgement link when links are configured
(``analytics.acklink``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

from analytics.alerts import AlertBook, Message
from analytics.routing import TOP_LEVEL, first_level, held_until, recipients
from analytics.rules import discover
from meterwatch.localtime import local_text
from meterwatch.registry import Registry
from meterwatch.store import AlertPoint

STATE_CN = {"open": "新告警", "update": "告警更新", "reminder": "未确认·升级提醒", "resolved": "已恢复",
            "acknowledged": "已确认"}
ORDER = ("open", "update", "reminder", "resolved", "acknowledged")  # reminder: escalation, never stored
_COST = re.compile(r"每天约损失 ¥[\d,.]+")


def compose(book: AlertBook, registry: Registry, now: int, escalate: bool = False) -> list[Message]:
    """Queue one message per contact for the undigested events (then none are undigested); return them.
    With ``escalate``, an alert's events go only to the levels told so far (``analytics.escalation``)."""
    by_contact: dict[str, list[AlertPoint]] = defaultdict(list)
    for event in book.undigested:
        for contact in recipients(event, registry, _level(book, registry, event, now) if escalate else None):
            by_contact[contact.id].append(event)
    messages = [Message.of(cid, now, held_until(registry.contacts[cid], events, now), events)
                for cid, events in sorted(by_contact.items())]
    book.undigested = []
    book.queue(messages)
    return messages


def _level(book: AlertBook, registry: Registry, event: AlertPoint, now: int) -> int:
    """The escalation level whose contacts (and those below) hear of ``event``: a new alert starts at the
    lowest level that has a contact for it; its resolution is the last its levels hear of it."""
    if event.state == "open":
        book.escalation[event.id] = [first_level(event, registry), now]
    level = book.escalation.get(event.id, [TOP_LEVEL])[0]
    if event.state == "resolved":
        book.escalation.pop(event.id, None)
    return level


def reminders(book: AlertBook, after_s: dict[str, float], now: int) -> list[AlertPoint]:
    """Open, unacknowledged alerts whose time at their level is up (``after_s`` by severity, 0: never): one
    level up (the top level is reminded again), and a ``reminder`` event each, for the digests only."""
    due = []
    for alert in book.alerts.values():
        told, after = book.escalation.get(alert.id), after_s.get(alert.severity, 0.0)
        if alert.acknowledged or told is None or not after or now - told[1] < after:
            continue
        told[0], told[1] = min(told[0] + 1, TOP_LEVEL), now
        due.append(alert.event("reminder", now))
    return due


def cost_per_day(event: AlertPoint) -> str:
    """``每天约损失 ¥1,234`` where the rule's message says what the alert costs a day, else empty."""
    found = _COST.search(event.message)
    return found.group(0) if found else ""


def title(events: list[AlertPoint]) -> str:
    counts = {s: sum(e.state == s for e in events) for s in ORDER}
    said = "，".join(f"{STATE_CN[s]} {n} 条" for s, n in counts.items() if n)
    return f"[能耗告警 meterwatch] {said}"


def _line(event: AlertPoint, registry: Registry, link: Callable[[str], str] | None) -> str:
    rule = discover().get(event.rule)
    institution = registry.institutions.get(event.institution)
    name = institution.name if institution else event.institution
    cost = cost_per_day(event)
    return (f"- **{STATE_CN.get(event.state, event.state)}** {rule.label if rule else event.rule}｜{name}｜"
            f"表计 {event.device}｜{event.value:g} {event.unit}｜自 {local_text(event.since)}"
            + (f"｜{cost}" if cost else "") + f"｜{event.severity}｜id {event.id}"
            + (f"｜[确认 ack]({link(event.id)})" if link and event.state in ("open", "update") else ""))


def render(message: Message, registry: Registry, link: Callable[[str], str] | None = None) -> tuple[str, str]:
    """(title, markdown text) of a digest; ``link`` gives an open alert's acknowledgement link."""
    events = sorted(message.events, key=lambda e: (ORDER.index(e.state) if e.state in ORDER else 9, e.ts))
    lines = [f"### {title(events)}"] + [_line(e, registry, link) for e in events]
    return title(events), "\n".join(lines)
