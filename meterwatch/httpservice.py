"""A small HTTP service for a long-running process: ``/healthz``, Prometheus ``/metrics``, and the routes the
process adds (analytics: the acknowledgement links).

Operators scrape ``/metrics`` and supervise ``/healthz`` with the tools they
already run.  ``/healthz`` answers 200 ``ok`` while the process says it is
healthy, else 503 with the reason.  Metrics live in the process's own
``CollectorRegistry`` (not the library's global one), so two services in one
test never share counters.

Lifecycle: ``start`` binds (raises OSError if the address is taken), ``stop``
is safe without ``start`` and twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_prefix(request: web.Request, size: int) -> bytes:
    """Up to ``size`` bytes of the body, all of it when shorter.  ``request.content.read(n)`` returns what
    has arrived so far, not n bytes: a body that comes in several pieces is read until its end."""
    body = bytearray()
    while len(body) < size:
        chunk = await request.content.read(size - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None when it is larger than ``limit`` bytes (never read beyond ``limit + 1``)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = await read_prefix(request, limit + 1)
    return None if len(body) > limit else body


def parse_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9108`` -> (host, port) (port 0: any free port); ValueError naming the value otherwise."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad listen address {listen!r} (host:port, e.g. 127.0.0.1:9108)")
    return host.strip("[]"), int(port)


class HttpService:
    def __init__(self, listen: str, metrics: CollectorRegistry, healthy: Callable[[], tuple[bool, str]]) -> None:
        self.host, self.port = parse_listen(listen)
        self.metrics, self.healthy = metrics, healthy
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port (tests): the one bound
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        ok, reason = self.healthy()
        return web.Response(text="ok\n" if ok else f"unhealthy: {reason}\n", status=200 if ok else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics), headers={"Content-Type": CONTENT_TYPE_LATEST})
