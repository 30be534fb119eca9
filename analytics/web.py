"""The acknowledgement links' pages on the analytics HTTP service (``meterwatch.httpservice``).

``GET /ack?id&exp&signature`` checks the link and shows a page with one
button; ``POST /ack`` (the button) acknowledges.  A GET changes nothing, so a
chat app that previews the link does not acknowledge for the operator.
A link altered or expired is refused with 403 and counted
(``meterwatch_ack_links{outcome}``); every use is logged without the
signature.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from analytics.acklink import refusal
from analytics.metrics import AnalyticsMetrics
from meterwatch.httpservice import HttpService

log = logging.getLogger(__name__)
Acknowledge = Callable[[str, str], Awaitable[bool]]  # (alert id, by) -> acknowledged now


def add_ack_routes(service: HttpService, acknowledge: Acknowledge, secret: str, metrics: AnalyticsMetrics,
                   clock: Callable[[], float] = time.time) -> None:
    async def check(params) -> tuple[str, str, str] | web.Response:  # noqa: ANN001 - query or form
        alert_id, expires, given = (str(params.get(k, "")) for k in ("id", "exp", "signature"))
        why = refusal(alert_id, expires, given, secret, clock())
        if why is None:
            return alert_id, expires, given
        metrics.ack_links.labels(why).inc()
        log.warning("acknowledgement link refused", extra={"id": alert_id[:64], "reason": why})
        return _page("链接无效或已过期 — link altered or expired", status=403)

    async def show(request: web.Request) -> web.Response:
        checked = await check(request.query)
        if isinstance(checked, web.Response):
            return checked
        alert_id, expires, given = (html.escape(v) for v in checked)
        return _page(f"确认告警 {alert_id}? — acknowledge alert {alert_id}?"
                     f'<form method="post" action="ack"><input type="hidden" name="id" value="{alert_id}">'
                     f'<input type="hidden" name="exp" value="{expires}">'
                     f'<input type="hidden" name="signature" value="{given}">'
                     f'<button type="submit">确认 Acknowledge</button></form>')

    async def acknowledge_now(request: web.Request) -> web.Response:
        checked = await check(await request.post())
        if isinstance(checked, web.Response):
            return checked
        alert_id = checked[0]
        done = await acknowledge(alert_id, "link")
        metrics.ack_links.labels("acknowledged" if done else "not_open").inc()
        log.info("acknowledgement link used", extra={"id": alert_id, "acknowledged": done})
        return _page(f"已确认 — alert {html.escape(alert_id)} acknowledged" if done
                     else f"告警 {html.escape(alert_id)} 已确认或已恢复 — already acknowledged or resolved")

    service.route("GET", "/ack", show)
    service.route("POST", "/ack", acknowledge_now)


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=f"<!doctype html><meta charset=utf-8><title>meterwatch</title><p>{body}</p>\n",
                        content_type="text/html", status=status)
