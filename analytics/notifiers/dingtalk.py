"""DingTalk custom robot (钉钉自定义机器人): markdown message; the robot allows 20 messages a minute."""

from __future__ import annotations

from typing import Any

from analytics.notifiers.robots import accepted, markdown, title
from meterwatch.store import AlertPoint

PER_MINUTE = 20
__all__ = ["PER_MINUTE", "accepted", "body"]


def body(event: AlertPoint) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title(event), "text": markdown(event)}}
