"""Parse ``meterwatch/up/{inst}/{dev}/{suffix}`` topics."""

from __future__ import annotations

from dataclasses import dataclass

from meterwatch.const import UP_PREFIX
from meterwatch.ids import is_valid_id

# The whole tree: a topic that almost matches (an extra or a missing level, ``readings``) must reach
# the collector to be rejected with its reason, not vanish at the broker.
SUBSCRIPTIONS: tuple[str, ...] = (f"{UP_PREFIX}/#",)


@dataclass(frozen=True, slots=True)
class UpTopic:
    institution: str
    device: str
    suffix: str  # "reading", "weighing", "frame/dlt645", ...


class TopicError(ValueError):
    pass


def parse_up_topic(topic: str) -> UpTopic:
    prefix = UP_PREFIX + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is not under {prefix}")
    parts = topic[len(prefix):].split("/")
    if len(parts) < 3:
        raise TopicError(f"topic {topic!r} lacks institution/device/kind levels")
    institution, device, suffix = parts[0], parts[1], "/".join(parts[2:])
    for what, value in (("institution", institution), ("device", device)):
        if not is_valid_id(value):
            raise TopicError(f"bad {what} id {value!r} in topic")
    return UpTopic(institution, device, suffix)


def subscriptions(shared_group: str | None) -> list[str]:
    """Topic filters; with a group, as MQTT 5 / mosquitto shared subscriptions."""
    if not shared_group:
        return list(SUBSCRIPTIONS)
    return [f"$share/{shared_group}/{t}" for t in SUBSCRIPTIONS]
