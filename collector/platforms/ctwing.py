"""China Telecom CTWing (AEP) subscription push (订阅推送): ``dataReport`` messages over HTTP POST.

Documentation:

- CTWing subscription push (the platform's page https://www.ctwing.cn/dyts/103,
  as summarised in https://geekdaxue.co/read/softdev@iot/iq3b9f): CTWing POSTs
  each message to the subscribed URL; HTTP 200 means received, anything
  else (or a timeout) is retried up to 3 times; a receiver failing often is
  paused for a minute.
- The ``dataReport`` message: ``tenantId``, ``productId``, ``deviceId``,
  ``messageType`` = ``dataReport``, ``IMEI``, ``IMSI``, ``topic``,
  ``timestamp`` (ms), ``upPacketSN``, ``upDataSN``, ``serviceId``,
  ``protocol`` and ``payload``: for transparent products
  ``{"APPdata": "<the device's bytes, base64>"}``, otherwise the decoded
  JSON (field table of CTWing's "数据上报" message, e.g. in the CTWing
  data-format notes found by the code index: "payload 消息负载，非透传消息格式为
  payload:消息内容JSON；透传消息格式为payload:{"APPdata":"消息内容BASE64编码"}").
  Other message types (``deviceOnlineOfflineReport``, ``eventReport``,
  ``commandResponse``, ...) carry no reading and are answered, not stored.

Authentication: the subscription push carries no body signature that the
documentation we found describes, so the subscription URL carries a shared
secret, ``/push/ctwing?token=<collector.ctwing_token>``, compared in
constant time.  Serve it over HTTPS (a proxy in front): the token is in
the URL.

The platform device id is ``deviceId``; ``APPdata`` is the meter's payload
(a frame, or JSON), a non-transparent ``payload`` is taken as reading JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from collector import reasons
from collector.platforms.base import ItemProblem, Parsed, PushItem, PushRequest, Refusal, form_of, same_secret

NAME = "ctwing"
DATA_REPORT = "dataReport"


class CtWing:
    name = NAME

    def __init__(self, token: str) -> None:
        self._token = token

    def parse(self, request: PushRequest) -> Parsed | Refusal:
        given = request.query.get("token")
        if given is None:
            return Refusal(401, reasons.BAD_SIGNATURE, "push without ?token=")
        if not same_secret(given, self._token):
            return Refusal(403, reasons.BAD_SIGNATURE, "token does not match collector.ctwing_token")
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Refusal(400, reasons.MALFORMED_JSON, f"body is not JSON: {exc}")
        messages = body if isinstance(body, list) else [body]
        if not messages or not all(isinstance(m, dict) and "messageType" in m for m in messages):
            return Refusal(400, reasons.INVALID_PAYLOAD, "not a CTWing push: no messageType")
        parsed = Parsed()
        for message in messages:
            _add(parsed, message)
        return parsed


def _add(parsed: Parsed, message: dict[str, Any]) -> None:
    if message["messageType"] != DATA_REPORT:
        parsed.ignored += 1
        return
    raw = json.dumps(message, ensure_ascii=False).encode()
    device, payload = message.get("deviceId"), message.get("payload")
    if not isinstance(device, str) or not device:
        parsed.problems.append(ItemProblem("", reasons.INVALID_PAYLOAD, "dataReport without deviceId", raw))
        return
    if not isinstance(payload, dict):
        parsed.problems.append(ItemProblem(device, reasons.INVALID_PAYLOAD, "dataReport without a payload object", raw))
        return
    if "APPdata" not in payload:  # a product with a thing model: the platform decoded it already
        data = json.dumps(payload, ensure_ascii=False).encode()
        parsed.items.append(PushItem(device, data, "json"))
        return
    try:
        data = base64.b64decode(str(payload["APPdata"]), validate=True)
    except (binascii.Error, ValueError):
        parsed.problems.append(ItemProblem(device, reasons.INVALID_PAYLOAD, "APPdata is not base64", raw))
        return
    if not data:
        parsed.problems.append(ItemProblem(device, reasons.INVALID_PAYLOAD, "APPdata is empty", raw))
        return
    parsed.items.append(PushItem(device, data, form_of(data)))
