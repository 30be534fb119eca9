"""The shared mechanism of HTTP notifiers: format, rate-limit, POST, retry what retrying can fix.

A notifier module only says how an alert event becomes a request body and
how to tell that the receiver accepted it (DingTalk and WeCom answer 200
with an ``errcode``).  Robot URLs carry access tokens: every URL and error
text is redacted (``meterwatch.redact``) before it is logged or raised.
Redirects are never followed: an alert goes to the configured host or
nowhere, and a 3xx answer is a failure (not retried).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from meterwatch.redact import redact_text, redact_url
from meterwatch.store import AlertPoint

log = logging.getLogger(__name__)


class RateLimiter:
    """Token bucket: at most ``per_minute`` sends a minute, short bursts up to ``burst``."""

    def __init__(self, per_minute: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.tokens = float(burst)
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()

    async def acquire(self) -> None:
        while True:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await self.sleep((1 - self.tokens) / self.rate)


class NotifyError(Exception):
    pass


class HttpNotifier:
    def __init__(self, url: str, body: Callable[[AlertPoint], dict[str, Any]],
                 accepted: Callable[[int, Any], bool], *, per_minute: float = 20.0, retries: int = 3,
                 backoff_s: float = 0.5, timeout_s: float = 10.0, limiter: RateLimiter | None = None) -> None:
        self._url = url
        self.host = urlsplit(url).hostname or "?"
        self.where = redact_url(url)
        self.key = "http-" + hashlib.sha1(url.encode()).hexdigest()[:12]  # one outbox per robot, token not saved
        self.body, self.accepted = body, accepted
        self.retries, self.backoff_s = retries, backoff_s
        self.limiter = limiter or RateLimiter(per_minute)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, events: list[AlertPoint]) -> None:
        failed = 0
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            for event in events:
                await self.limiter.acquire()
                if not await self._post(session, event):
                    failed += 1
        if failed:
            raise NotifyError(f"{failed} of {len(events)} alert(s) not delivered to {self.where}")

    async def _post(self, session: aiohttp.ClientSession, event: AlertPoint) -> bool:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            outcome = await post_json(session, self._url, self.body(event), self.accepted)
            if outcome.ok:
                return True
            log.warning(outcome.what, extra={"url": self.where, "error": outcome.detail, "attempt": attempt})
            if outcome.permanent:
                return False
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay *= 2
        return False


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""  # why not (redacted)
    permanent: bool = False  # retrying cannot help: a 3xx, or a 4xx other than 429
    what: str = "notification failed"  # the log message


async def post_json(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                    accepted: Callable[[int, Any], bool]) -> Outcome:
    """One POST of ``body``, never following a redirect; what happened, the URL's secrets redacted."""
    try:
        async with session.post(url, json=body, allow_redirects=False) as resp:
            if 300 <= resp.status < 400:
                return Outcome(False, f"HTTP {resp.status}: redirects are not followed (to "
                                      f"{redact_url(resp.headers.get('Location', ''))})", permanent=True,
                               what="notification refused: redirects are not followed")
            payload = await resp.json(content_type=None) if resp.content_length != 0 else None
            if accepted(resp.status, payload):
                return Outcome(True)
            detail = redact_text(f"HTTP {resp.status}: {payload}", url)[:200]
            return Outcome(False, detail, permanent=400 <= resp.status < 500 and resp.status != 429,
                           what="notification refused")
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return Outcome(False, redact_text(repr(exc), url)[:300])
