"""HTTP push from the NB-IoT platforms into the collector: ``POST /push/{platform}``, ``GET /push/onenet``.

Each platform module (``collector.platforms``) verifies a request and
turns it into items named by the platform's device id; here each item is
mapped to its registry device (``devices.csv`` column ``platform_id``) and
handed to the collector (``Collector.submit``) as the MQTT message it
would have been, ``meterwatch/up/{inst}/{dev}/{suffix}``: the same stages,
checks, duplicates, spool and write.  The answer waits until every item is
durable (store or spool), as an MQTT acknowledgement does:

- 200: all durable; the JSON body says what was stored, what was a
  duplicate, what was rejected and why (a bad frame is rejected once and
  answered 200: retrying it cannot help);
- 400: the body is not the platform's format, or an item could not be
  decoded (bad base64 or hex); the rest is still stored and the body says so;
- 401/403: signature or token wrong (reject ``bad_signature``, counted);
- 413: body above ``collector.push_max_bytes``, refused before it is read;
- 503: not durable within ``collector.push_timeout_s``: the platform retries,
  and the redelivery is a duplicate.

Every refusal is kept as a reject (topic ``push/{platform}`` for the
request, ``push/{platform}/{platform device id}`` for an item), never
holding a secret.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from collector import reasons
from collector.message import Message
from collector.platforms.base import Form, Parsed, Platform, PushItem, PushRequest, Refusal
from collector.platforms.ctwing import CtWing
from collector.platforms.onenet import OneNet
from collector.service import Collector
from meterwatch.const import UP_PREFIX
from meterwatch.httpservice import HttpService, read_body

FRAME_SUFFIX = {"electricity": "frame/dlt645", "water": "frame/cjt188", "heat": "frame/cjt188"}


def suffix_for(kind: str, form: Form) -> str:
    """The topic suffix (decoder) of a pushed payload: JSON by the device's kind, a frame by its protocol."""
    if form == "json":
        return "weighing" if kind == "scale" else "reading"
    return FRAME_SUFFIX.get(kind, "frame/cjt188")  # a scale sending a frame: refused as kind_mismatch


@dataclass
class Outcome:
    """What became of one push, as answered to the platform."""

    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def add(self, platform_id: str, message: Message) -> None:
        self.stored += message.out.reading_count() + len(message.out.weighings) + len(message.late)
        self.duplicates += message.duplicates
        self.rejected += [{"device": platform_id, "reason": r.reason, "detail": r.detail} for r in message.out.rejects]


class PushRoutes:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        cfg = collector.cfg
        self.max_bytes, self.timeout_s, self.flush_s = cfg.push_max_bytes, cfg.push_timeout_s, cfg.push_flush_s
        self._flushing: asyncio.Task | None = None
        self.onenet = OneNet(cfg.onenet_token.get_secret_value()) if cfg.onenet_token else None
        self.ctwing = CtWing(cfg.ctwing_token.get_secret_value()) if cfg.ctwing_token else None

    def install(self, http: HttpService) -> list[str]:
        """Add the routes of the platforms that have a token; returns their names."""
        if self.onenet is not None:
            http.route("GET", "/push/onenet", self._verify_onenet)
            http.route("POST", "/push/onenet", self._handler(self.onenet))
        if self.ctwing is not None:
            http.route("POST", "/push/ctwing", self._handler(self.ctwing))
        return [p.name for p in (self.onenet, self.ctwing) if p is not None]

    def _count(self, platform: str, status: int) -> None:
        self.collector.metrics.push_requests[(platform, status)] += 1

    async def _verify_onenet(self, request: web.Request) -> web.Response:
        assert self.onenet is not None
        answer = self.onenet.verify_url(request.query)
        if isinstance(answer, Refusal):
            return await self._refuse("onenet", answer, request.query_string.encode()[:1024])
        self._count("onenet", 200)
        return web.Response(text=answer)

    def _handler(self, platform: Platform) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = await self._body(request)
            if body is None:
                return await self._refuse(platform.name, Refusal(
                    413, reasons.OVERSIZED, f"body above collector.push_max_bytes ({self.max_bytes})"), b"")
            parsed = platform.parse(PushRequest(request.method, request.query, body))
            if isinstance(parsed, Refusal):
                return await self._refuse(platform.name, parsed, body)
            return await self._accept(platform.name, parsed)
        return handle

    async def _body(self, request: web.Request) -> bytes | None:
        """The body, or None when it is larger than allowed (never read beyond the limit)."""
        return await read_body(request, self.max_bytes)

    async def _refuse(self, platform: str, refusal: Refusal, payload: bytes) -> web.Response:
        """The request refused whole: kept as a reject (not waited for: the answer is no anyway)."""
        await self.collector.submit(f"push/{platform}", payload, (refusal.reason, f"HTTP {refusal.status}: "
                                                                  f"{refusal.detail}"))
        self._count(platform, refusal.status)
        return web.json_response({"error": refusal.reason, "detail": refusal.detail}, status=refusal.status)

    async def _accept(self, platform: str, parsed: Parsed) -> web.Response:
        pending: list[tuple[str, asyncio.Future[Message]]] = []
        for item in parsed.items:
            pending.append((item.platform_id, await self._submit(platform, item)))
        for problem in parsed.problems:
            durable = await self.collector.submit(f"push/{platform}/{problem.platform_id}", problem.payload,
                                                  (problem.reason, problem.detail))
            pending.append((problem.platform_id, durable))
        if pending:
            self._flush_soon()
            _, waiting = await asyncio.wait([f for _, f in pending], timeout=self.timeout_s)
            if waiting:
                self._count(platform, 503)
                return web.json_response({"error": "not_durable", "detail": f"{len(waiting)} of {len(pending)} "
                                          f"not stored or spooled within {self.timeout_s:g} s: send again"},
                                         status=503)
        outcome = Outcome(ignored=parsed.ignored)
        for platform_id, durable in pending:
            outcome.add(platform_id, durable.result())
        status = 400 if parsed.problems else 200
        self._count(platform, status)
        return web.json_response(vars(outcome), status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _flush_soon(self) -> None:
        """A platform waits for its answer: flush within ``push_flush_s`` rather than ``batch_interval_s``.

        Answers held for a whole batch interval would cap a platform at its
        concurrency per interval; a short linger still gathers concurrent
        pushes into one write.
        """
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_after())

    async def _flush_after(self) -> None:
        await asyncio.sleep(self.flush_s)  # the linger: pushes arriving meanwhile share the write
        await self.collector.flush()

    async def _submit(self, platform: str, item: PushItem) -> asyncio.Future[Message]:
        device = self.collector.ingestor.registry.by_platform_id.get(item.platform_id)
        if device is None:
            return await self.collector.submit(
                f"push/{platform}/{item.platform_id}", item.payload,
                (reasons.UNKNOWN_DEVICE, f"{platform} device {item.platform_id!r} is not in devices.csv (platform_id)"))
        topic = f"{UP_PREFIX}/{device.institution}/{device.id}/{suffix_for(device.kind, item.form)}"
        return await self.collector.submit(topic, item.payload)
