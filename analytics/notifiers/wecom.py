"""WeCom group robot (企业微信群机器人): markdown message; the robot allows 20 messages a minute."""

from __future__ import annotations

from typing import Any

from analytics.notifiers.robots import accepted, markdown
from meterwatch.store import AlertPoint

PER_MINUTE = 20
__all__ = ["PER_MINUTE", "accepted", "body"]


def body(event: AlertPoint) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": markdown(event)}}
