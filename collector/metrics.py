"""The collector's own counters, as written to the ``collector`` measurement."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from meterwatch.store import CollectorSample


@dataclass
class CollectorMetrics:
    instance: str
    clock: Callable[[], float] = field(default=time.time, repr=False)  # the collector's clock
    received: int = 0
    acknowledged: int = 0  # messages acknowledged to the broker (after their batch was durable)
    stored: int = 0  # readings and weighings durable in the store
    rejected: int = 0
    duplicates: int = 0
    spooled: int = 0  # readings and weighings that went through the disk spool
    spool_bytes: int = 0  # what the spool holds now
    quarantined: int = 0  # records the store refused even one by one, kept on disk with the error
    unknown_cards: int = 0
    # With a partition: messages of other partitions' devices, acknowledged on arrival and not counted as
    # received (their owner counts them): received + skipped_other_partition is what the broker delivered.
    skipped_other_partition: int = 0
    lag: float = 0.0  # seconds between the newest reading of the last batch and the write
    write_ms: float = 0.0  # duration of the last successful write
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    # Per message, what became of it: stored (some data kept), duplicate, rejected.  Every received
    # message lands in exactly one: received == acknowledged == sum(messages_by_outcome) when idle.
    messages_by_outcome: Counter[str] = field(default_factory=Counter)
    register_flags: Counter[str] = field(default_factory=Counter)  # rollover, replacement, bad_reading, jump
    push_requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # HTTP push: (platform, status) -> n
    last_message_at: float = 0.0  # the clock's time at start, then at each message
    connected: bool = False

    def __post_init__(self) -> None:
        self.last_message_at = self.clock()

    def idle_s(self, now: float) -> float:
        return max(0.0, now - self.last_message_at)

    def sample(self, now: float) -> CollectorSample:
        return CollectorSample(self.instance, int(now), self.received, self.stored, self.rejected,
                               self.duplicates, self.spooled, self.spool_bytes, self.lag, self.write_ms,
                               round(self.idle_s(now), 1), int(self.connected))

    def summary(self) -> dict[str, object]:
        return {"received": self.received, "acknowledged": self.acknowledged,
                "skipped_other_partition": self.skipped_other_partition,
                "messages_by_outcome": dict(self.messages_by_outcome), "stored": self.stored, "rejected": self.rejected,
                "duplicates": self.duplicates, "spooled": self.spooled, "spool_bytes": self.spool_bytes,
                "quarantined": self.quarantined,
                "register_flags": dict(self.register_flags), "unknown_cards": self.unknown_cards,
                "lag_s": round(self.lag, 1), "write_ms": round(self.write_ms, 1),
                "idle_s": round(self.idle_s(self.clock()), 1), "connected": self.connected,
                "rejected_by_reason": dict(self.rejected_by_reason),
                "push_requests": {f"{p} {s}": n for (p, s), n in sorted(self.push_requests.items())}}


class PrometheusView:
    """The counters above as Prometheus metrics, read at each scrape (``meterwatch.httpservice``'s /metrics)."""

    def __init__(self, metrics: CollectorMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m, now = self.metrics, time.time()
        for name, value, text in (("received", m.received, "messages received (MQTT and HTTP push items)"),
                                  ("acknowledged", m.acknowledged, "messages acknowledged after a durable write"),
                                  ("stored", m.stored, "readings and weighings durable in the store"),
                                  ("duplicates", m.duplicates, "duplicates collapsed"),
                                  ("spooled", m.spooled, "records that went through the disk spool"),
                                  ("quarantined", m.quarantined, "records the store refused, kept on disk"),
                                  ("skipped_other_partition", m.skipped_other_partition,
                                   "messages of other partitions' devices, acknowledged unhandled")):
            yield CounterMetricFamily(f"meterwatch_collector_{name}", text, value=value)
        rejected = CounterMetricFamily("meterwatch_collector_rejected", "rejects, by reason", labels=["reason"])
        for reason, n in sorted(m.rejected_by_reason.items()):
            rejected.add_metric([reason], n)
        yield rejected
        pushes = CounterMetricFamily("meterwatch_collector_push_requests", "HTTP push requests by platform and "
                                     "answer (401/403: bad signature or token)", labels=["platform", "status"])
        for (platform, status), n in sorted(m.push_requests.items()):
            pushes.add_metric([platform, str(status)], n)
        yield pushes
        for name, value, text in (("spool_bytes", m.spool_bytes, "what the spool holds now"),
                                  ("lag_seconds", m.lag, "newest reading of the last batch to its write"),
                                  ("idle_seconds", m.idle_s(now), "since the last message"),
                                  ("connected", int(m.connected), "1 while connected to the broker")):
            yield GaugeMetricFamily(f"meterwatch_collector_{name}", text, value=value)


def prometheus_registry(metrics: CollectorMetrics) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PrometheusView(metrics))  # type: ignore[arg-type]
    return registry


def health(metrics: CollectorMetrics) -> tuple[bool, str]:
    """Healthy while connected to the broker (a store outage is survived: the spool takes it)."""
    return (True, "") if metrics.connected else (False, "not connected to the broker")
