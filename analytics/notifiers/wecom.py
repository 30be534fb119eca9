"""WeCom group robot (企业微信群机器人): markdown message; the robot allows 20 messages a minute."""

from __future__ import annotations

from typing import Any

from analytics.notifiers.base import Channel
from analytics.notifiers.robots import accepted, markdown
from meterwatch.store import AlertPoint


def body(event: AlertPoint) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": markdown(event)}}


def digest(heading: str, text: str, events: list[AlertPoint]) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": text[:4096]}}  # WeCom's markdown limit: 4096 bytes


CHANNEL = Channel("wecom", body, accepted, per_minute=20, digest=digest)
