"""A rule's verdict on one device, before the lifecycle decides what to publish."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    institution: str
    device: str
    since: int
    value: float
    unit: str
    severity: str
    message: str
    message_en: str
