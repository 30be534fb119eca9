"""The analytics process's Prometheus metrics (served on ``/metrics`` by ``meterwatch.httpservice``)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from analytics.alerts import AlertBook


class AnalyticsMetrics:
    def __init__(self, book: AlertBook) -> None:
        self.registry = r = CollectorRegistry()
        self.evaluations = Counter("meterwatch_analytics_evaluations", "evaluations, by outcome (ok, failed)",
                                   ["outcome"], registry=r)
        self.evaluation_seconds = Gauge("meterwatch_analytics_evaluation_seconds", "the last evaluation's duration",
                                        registry=r)
        self.last_ok = Gauge("meterwatch_analytics_last_evaluation_timestamp_seconds",
                             "Unix time of the last successful evaluation", registry=r)
        self.open_alerts = Gauge("meterwatch_analytics_open_alerts", "open alerts, by rule", ["rule"], registry=r)
        self.deliveries = Counter("meterwatch_alert_deliveries", "digest deliveries to contacts, by channel and "
                                  "outcome (sent, failed, abandoned)", ["channel", "outcome"], registry=r)
        self.ack_links = Counter("meterwatch_ack_links", "acknowledgement links used, by outcome (acknowledged, "
                                 "not_open, bad_signature, expired)", ["outcome"], registry=r)
        outbox = Gauge("meterwatch_alert_outbox_messages", "digests waiting to be delivered", registry=r)
        outbox.set_function(lambda: len(book.messages))
        self.started = time.time()

    def evaluated(self, seconds: float, failed: bool, open_by_rule: dict[str, int]) -> None:
        self.evaluations.labels("failed" if failed else "ok").inc()
        self.evaluation_seconds.set(seconds)
        if not failed:
            self.last_ok.set(time.time())
        self.open_alerts.clear()
        for rule, n in open_by_rule.items():
            self.open_alerts.labels(rule).set(n)

    def healthy(self, interval_s: float) -> tuple[bool, str]:
        """Healthy while an evaluation succeeded within three intervals (or the process is that young)."""
        last = self.last_ok._value.get() or self.started  # noqa: SLF001 - the gauge's own value
        late = time.time() - last
        limit = 3 * interval_s + 60
        return (True, "") if late <= limit else (False, f"no successful evaluation for {late:.0f} s")
