"""Who hears of an alert event: the routes of ``contacts.csv`` (``Registry.contacts``).

A contact's route matches an event when all hold:

- scope: ``province``; or the event's institution is in ``city:ID``, of ``type:ID``, or is ``institution:ID``;
- rules: ``*`` (every rule) or the event's rule is one of them;
- severity: the event's is at least ``min_severity`` (info < warning < critical).

Routes may overlap (a city's operators and the province's officers): each
contact gets the event once.  Two routes with the same channel and address
are one recipient, so an address never gets an event twice.

Quiet hours (local time, ``22:00-07:00``) hold a contact's messages until
they end, except for critical alerts, which go at once: a burst pipe at
night is what the night duty is for.
"""

from __future__ import annotations

from collections.abc import Iterable

from meterwatch.const import SEVERITIES
from meterwatch.localtime import local_minute
from meterwatch.registry import Contact, Institution, Registry
from meterwatch.store import AlertPoint

_RANK = {s: k for k, s in enumerate(SEVERITIES)}
LEVELS = {"institution": 0, "type": 1, "city": 1, "province": 2}  # escalation: who hears first, who next
TOP_LEVEL = max(LEVELS.values())


def unknown_rules(contacts: Iterable[Contact], known: Iterable[str]) -> list[str]:
    """``contacts.csv: contact ID: unknown rule R`` for every rule a route names that analytics does not have."""
    names = set(known)
    return [f"contacts.csv: contact {c.id}: unknown rule {r!r} (rules: {', '.join(sorted(names))})"
            for c in contacts for r in c.rules if r not in names]


def in_scope(contact: Contact, institution: Institution | None, institution_id: str) -> bool:
    if contact.scope == "province":
        return True
    if contact.scope == "institution":
        return contact.scope_id == institution_id
    if institution is None:  # an institution no longer in the registry: only province-wide routes hear of it
        return False
    return getattr(institution, contact.scope) == contact.scope_id  # city or type


def matches(contact: Contact, event: AlertPoint, institution: Institution | None) -> bool:
    return (in_scope(contact, institution, event.institution)
            and (not contact.rules or event.rule in contact.rules)
            and _RANK.get(event.severity, 0) >= _RANK[contact.min_severity])


def recipients(event: AlertPoint, registry: Registry, up_to_level: int | None = None) -> list[Contact]:
    """The contacts whose routes match ``event``, one per channel and address (the first route in id order);
    with ``up_to_level``, only those of that escalation level or below."""
    institution = registry.institutions.get(event.institution)
    seen: dict[tuple[str, str], Contact] = {}
    for contact in sorted(registry.contacts.values(), key=lambda c: c.id):
        if up_to_level is not None and LEVELS[contact.scope] > up_to_level:
            continue
        if matches(contact, event, institution):
            seen.setdefault((contact.channel, contact.address), contact)
    return list(seen.values())


def first_level(event: AlertPoint, registry: Registry) -> int:
    """The lowest escalation level with a contact for ``event`` (the top level if none has)."""
    return min((LEVELS[c.scope] for c in recipients(event, registry)), default=TOP_LEVEL)


def quiet_until(contact: Contact, now: int) -> int:
    """When ``contact``'s quiet hours holding ``now`` end (Unix time), or ``now`` if they do not hold it."""
    if contact.quiet is None:
        return now
    start, end = contact.quiet
    minute = local_minute(now)
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return now
    wait_min = (end - minute) % (24 * 60)
    return now - now % 60 + wait_min * 60


def held_until(contact: Contact, events: Iterable[AlertPoint], now: int) -> int:
    """When a message of ``events`` may go to ``contact``: at once if any is critical, else after quiet hours."""
    if any(e.severity == "critical" for e in events):
        return now
    return quiet_until(contact, now)
