"""DingTalk custom robot (钉钉自定义机器人): markdown message; the robot allows 20 messages a minute."""

from __future__ import annotations

from typing import Any

from analytics.notifiers.base import Channel
from analytics.notifiers.robots import accepted, markdown, title
from meterwatch.store import AlertPoint


def body(event: AlertPoint) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title(event), "text": markdown(event)}}


CHANNEL = Channel("dingtalk", body, accepted, per_minute=20)
