"""The embedded amqtt broker of the demo: loopback only, anonymous, started in the running loop."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def embedded_broker() -> AsyncIterator[str]:
    """Yield the broker URL of a running amqtt broker; shut it down afterwards."""
    try:
        from amqtt.broker import Broker
    except ImportError as exc:  # pragma: no cover - packaging guard
        raise RuntimeError("the demo needs amqtt: pip install 'meterwatch[demo]'") from exc
    port = _free_port()
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await broker.shutdown()
