"""Notifiers deliver alert events.  Adding an HTTP channel = one module declaring ``CHANNEL`` (see
``base.Channel``); ``channels()`` finds it, and ``[[analytics.notifiers]] kind`` may name it."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from analytics.notifiers.base import Channel, Notifier
from analytics.notifiers.http import HttpNotifier
from meterwatch.settings import AnalyticsSettings


@cache
def channels() -> dict[str, Channel]:
    """Every ``CHANNEL`` declared by a module of this package, by kind."""
    found: dict[str, Channel] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        channel = getattr(importlib.import_module(f"{__name__}.{info.name}"), "CHANNEL", None)
        if isinstance(channel, Channel):
            found[channel.kind] = channel
    return found


def check_notifiers(cfg: AnalyticsSettings) -> None:
    """Raise ValueError naming the setting if a notifier's kind is not a channel."""
    for k, n in enumerate(cfg.notifiers):
        if n.kind not in channels():
            raise ValueError(f"analytics.notifiers[{k}].kind: unknown channel {n.kind!r}; "
                             f"channels are {', '.join(sorted(channels()))}")


def http_notifier(kind: str, url: str, per_minute: float | None = None) -> Notifier:
    channel = channels()[kind]
    return HttpNotifier(url, channel.body, channel.accepted, per_minute=per_minute or channel.per_minute)
