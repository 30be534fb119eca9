"""A real local HTTP server standing in for robots, webhooks and SMS gateways (shared by analytics tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from benchmarks.servers import free_port


@dataclass
class Robot:
    """What the server got, what it answers (one per request, then 200 ``{"errcode": 0}``), how slowly."""

    base: str
    got: list[dict] = field(default_factory=list)
    answers: list[tuple[int, dict]] = field(default_factory=list)
    delay_s: float = 0.0


@asynccontextmanager
async def robot_server(delay_s: float = 0.0) -> AsyncIterator[Robot]:
    port = free_port()
    robot = Robot(f"http://127.0.0.1:{port}", delay_s=delay_s)

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        if robot.delay_s:
            await asyncio.sleep(robot.delay_s)  # a slow endpoint, not test synchronisation
        status, answer = robot.answers.pop(0) if robot.answers else (200, {"errcode": 0, "errmsg": "ok"})
        robot.got.append({"path": request.path, "query": dict(request.query), "body": body, "status": status})
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield robot
    finally:
        await runner.cleanup()
