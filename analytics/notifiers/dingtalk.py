"""DingTalk custom robot (钉钉自定义机器人): markdown message; the robot allows 20 messages a minute.

Signed robots (加签): the robot's ``SEC...`` secret signs ``timestamp + "\\n" + secret`` with HMAC-SHA256
(key: the secret), base64 then URL-encoded, sent as the query parameters ``timestamp`` (milliseconds, within
an hour of DingTalk's clock) and ``sign``.  Source: DingTalk, "Custom robot security settings",
https://open.dingtalk.com/document/robots/customize-robot-security-settings
(English: https://help.dingtalk.io/open/dingstart/customize-robot-security-settings).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import quote_plus

from analytics.notifiers.base import Channel
from analytics.notifiers.robots import accepted, markdown, title
from meterwatch.store import AlertPoint


def body(event: AlertPoint) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title(event), "text": markdown(event)}}


def digest(heading: str, text: str, events: list[AlertPoint]) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": heading, "text": text}}


def signature(timestamp_ms: int, secret: str) -> str:
    """base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), URL-encoded."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac))


def sign(url: str, secret: str, now: float) -> str:
    timestamp_ms = int(now * 1000)
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={signature(timestamp_ms, secret)}"


CHANNEL = Channel("dingtalk", body, accepted, per_minute=20, digest=digest, sign=sign)
