"""Alert events on ``meterwatch/alerts/{inst}``, QoS 1."""

from __future__ import annotations

import aiomqtt

from analytics.notifiers.base import event_bytes
from meterwatch.const import ALERT_TOPIC
from meterwatch.mqtt import client_kwargs
from meterwatch.settings import Settings
from meterwatch.store import AlertPoint


class MqttNotifier:
    def __init__(self, settings: Settings, client_id: str = "meterwatch-analytics") -> None:
        client_kwargs(settings)  # a bad broker URL is a configuration error, raised now (redacted), not per send
        self.settings = settings
        self.client_id = client_id
        self.key = "mqtt"

    async def send(self, events: list[AlertPoint]) -> None:
        if not events:
            return
        async with aiomqtt.Client(**client_kwargs(self.settings, identifier=self.client_id)) as client:
            for event in events:
                await client.publish(ALERT_TOPIC.format(institution=event.institution), event_bytes(event), qos=1)
