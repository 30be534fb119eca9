"""Markdown text shared by the chat robots (DingTalk, WeCom): what an operator reads on a phone."""

from __future__ import annotations

from analytics.notifiers.base import rfc3339
from analytics.rules import discover
from meterwatch.store import AlertPoint

STATE_CN = {"open": "新告警", "update": "告警更新", "resolved": "已恢复", "acknowledged": "已确认"}


def title(event: AlertPoint) -> str:
    """``[新告警] 漏水 Leak yin-off-00001``: the rule's label from its descriptor (its id if unknown)."""
    rule = discover().get(event.rule)
    return f"[{STATE_CN.get(event.state, event.state)}] {rule.label if rule else event.rule} {event.institution}"


def markdown(event: AlertPoint) -> str:
    return (f"### {title(event)}\n"
            f"- 单位 institution: {event.institution}\n- 表计 device: {event.device}\n"
            f"- 级别 severity: {event.severity}\n- 数值 value: {event.value:g} {event.unit}\n"
            f"- 开始 since: {rfc3339(event.since)}\n- 时间 updated: {rfc3339(event.ts)}\n\n"
            f"{event.message}\n\n{event.message_en}")


def accepted(status: int, answer: object) -> bool:
    """Both robots answer HTTP 200 with ``errcode`` 0 on success (non-zero: refused or rate-limited)."""
    return status == 200 and isinstance(answer, dict) and answer.get("errcode") == 0
