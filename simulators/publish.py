"""Publish simulated traffic over MQTT at an accelerated clock, rate-limited, with progress.

Concurrency is bounded (a fixed pool of publishing tasks): unbounded
publishing floods aiomqtt's pending-publish bookkeeping.  With ``speed``
set, message ``m`` goes out when the simulated clock reaches ``m.at``;
without it, as fast as ``max_rate`` allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiomqtt

from meterwatch.mqtt import client_kwargs
from meterwatch.settings import Settings
from simulators.traffic import Message

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    published: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


async def publish_messages(settings: Settings, messages: Sequence[Message], *, speed: float | None = None,
                           max_rate: float | None = None, workers: int = 64,
                           client_id: str = "meterwatch-simulator") -> PublishStats:
    stats = PublishStats()
    if not messages:
        return stats
    max_rate = max_rate or settings.simulator.max_rate
    queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=workers * 4)
    started = time.monotonic()
    sim_start = messages[0].at

    async with aiomqtt.Client(**client_kwargs(settings, identifier=client_id, max_inflight_messages=workers,
                                              max_queued_outgoing_messages=0)) as client:
        client.pending_calls_threshold = workers + 1  # our pool bounds it; aiomqtt warns above 10
        async def worker() -> None:
            while (m := await queue.get()) is not None:
                await client.publish(m.topic, m.payload, qos=1)
                stats.published += 1

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        next_report = started + 5
        for i, m in enumerate(messages):
            wall = time.monotonic() - started
            wait = max((m.at - sim_start) / speed - wall if speed else 0.0, i / max_rate - wall)
            if wait > 0:
                await asyncio.sleep(wait)
            await queue.put(m)
            if time.monotonic() >= next_report:
                next_report += 5
                log.info("publishing", extra={"sent": stats.published, "of": len(messages),
                                              "pct": round(100 * i / len(messages), 1),
                                              "rate_per_s": round(stats.published / (time.monotonic() - started))})
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    stats.seconds = time.monotonic() - started
    log.info("published", extra={"messages": stats.published, "seconds": round(stats.seconds, 1),
                                 "rate_per_s": round(stats.rate)})
    return stats
