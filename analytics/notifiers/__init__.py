"""Notifiers deliver alert events.  Adding a channel = one module (body + accepted) + one line here."""

from __future__ import annotations

from types import ModuleType

from analytics.notifiers import dingtalk, webhook, wecom
from analytics.notifiers.base import Notifier
from analytics.notifiers.http import HttpNotifier

HTTP_KINDS: dict[str, ModuleType] = {"webhook": webhook, "dingtalk": dingtalk, "wecom": wecom}


def http_notifier(kind: str, url: str, per_minute: float | None = None) -> Notifier:
    module = HTTP_KINDS[kind]
    return HttpNotifier(url, module.body, module.accepted, per_minute=per_minute or getattr(module, "PER_MINUTE", 60))
