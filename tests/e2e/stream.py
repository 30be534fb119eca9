"""A steady stream of readings for the outage and crash tests, and how to check it arrived."""

from __future__ import annotations

import json
import time

from meterwatch.registry import Registry
from meterwatch.settings import Settings
from simulators.traffic import Message
from simulators.publish import publish_messages


def reading_stream(registry: Registry, count: int) -> list[Message]:
    """``count`` single-reading messages over the registry's meters, each meter's register rising."""
    meters = sorted(d.id for d in registry.devices.values() if d.kind != "scale")
    rounds = count // len(meters) + 1
    t0 = (int(time.time()) // 900 - rounds - 4) * 900
    out = []
    for k in range(count):
        device = registry.devices[meters[k % len(meters)]]
        step = k // len(meters)
        out.append(Message(float(k), f"meterwatch/up/{device.institution}/{device.id}/reading",
                           json.dumps({"ts": t0 + 900 * step, "value": 10.0 + 1.5 * step}).encode()))
    return out


async def publish(broker_port: int, messages: list[Message], rate: float) -> None:
    settings = Settings(broker=f"mqtt://127.0.0.1:{broker_port}")
    await publish_messages(settings, messages, speed=None, max_rate=rate, workers=16,
                           client_id=f"stream-{time.monotonic_ns()}")
