"""Broker URLs to aiomqtt clients, and manual acknowledgement in one place.

aiomqtt acknowledges QoS 1 messages as soon as they arrive; a collector that
promises not to lose acknowledged data must instead acknowledge after the
write.  paho (under aiomqtt) can do that with ``manual_ack_set``; it is
reached through a private attribute, so only this module touches it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from meterwatch.redact import redact_url
from meterwatch.settings import Settings

Ack = Callable[[], None]


def client_kwargs(settings: Settings, **extra: Any) -> dict[str, Any]:
    parts = urlsplit(settings.broker)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL must be mqtt://host:port or mqtts://host:port, got {redact_url(settings.broker)!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    kwargs: dict[str, Any] = {
        "hostname": parts.hostname or "127.0.0.1",
        "port": parts.port or (8883 if tls else 1883),
        "username": settings.broker_user or parts.username,
        "password": (settings.broker_password.get_secret_value() if settings.broker_password
                     else parts.password),
    }
    if tls:
        kwargs["tls_context"] = ssl.create_default_context(
            cafile=str(settings.broker_ca_file) if settings.broker_ca_file else None)
    kwargs.update(extra)
    return kwargs


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Must be called before the client connects."""
    client._client.manual_ack_set(True)  # noqa: SLF001


def ack_for(client: aiomqtt.Client, message: aiomqtt.Message) -> Ack:
    """A callable that acknowledges ``message`` on the connection it came from.

    After a reconnect the old connection's packet ids mean nothing (or worse,
    another message), so an ack for a dropped connection does nothing: the
    broker redelivers and the store's idempotence absorbs the repeat.
    """
    paho = client._client  # noqa: SLF001
    mid, qos = message.mid, message.qos
    disconnected = client._disconnected  # noqa: SLF001  (this connection's, replaced on reconnect)

    def ack() -> None:
        if qos > 0 and not disconnected.done():
            paho.ack(mid, qos)

    return ack
