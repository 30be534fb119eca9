"""Parse ``meterwatch/up/{inst}/{dev}/{suffix}`` topics, and which partition a topic belongs to."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

from meterwatch.const import UP_PREFIX
from meterwatch.ids import is_valid_id
from meterwatch.settings import CollectorSettings

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


@lru_cache(maxsize=1 << 16)
def parse_up_topic(topic: str) -> UpTopic:
    """The levels of an uplink topic; TopicError says what is wrong with it.

    Cached: a device sends on the same few topics all its life, and parsing
    was a tenth of the collector's work per message.  A topic refused is
    not cached (the error is raised again), so bad topics cannot crowd it.
    """
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


@dataclass(frozen=True, slots=True)
class Partition:
    """``i/N`` (``collector.partition``): the worker that handles every message of the devices hashing to ``i``.

    The hash is CRC-32 of the device id (stable across processes and Python
    versions, unlike ``hash``), so a device's messages always reach the same
    worker, whose history alone computes its consumption.  A topic without a
    device (``bad_topic``) belongs to partition 0, so its reject is kept once.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        index, _, count = text.partition("/")
        return cls(int(index), int(count))

    def owns(self, topic: str) -> bool:
        try:
            device = parse_up_topic(topic).device
        except TopicError:
            return self.index == 0
        return zlib.crc32(device.encode()) % self.count == self.index

    def own(self, cfg: CollectorSettings) -> CollectorSettings:
        """This worker's settings: client id and instance suffixed ``-p<i>``, so its own session, spool and status.

        The suffix names the index only, not N: after a change of N, workers 0..N-1 resume the sessions that
        queued every message while they were stopped."""
        suffix = f"-p{self.index}"
        return cfg.model_copy(update={"client_id": cfg.client_id + suffix, "instance": cfg.instance + suffix})
