"""China Mobile OneNET HTTP push (数据推送 / HTTP 推送): URL verification and signed data-point messages.

Documentation (the platform's own pages were not reachable from here; these
quote them):

- URL verification and token check, OneNET's text quoted in
  https://github.com/ricnsmart/util/blob/master/sign/README.md ("NewSignatureWithNonce"):
  on saving the push settings OneNET sends ``GET url?msg=xxx&nonce=xxx&signature=xxx``;
  ``signature`` is Base64(MD5(token + nonce + msg)) (URL-decoded); the
  receiver answers the ``msg`` value to pass the check.
- The pushed body ``{"msg": {...}, "msg_signature": "...", "nonce": "..."}``
  with ``msg`` a data point (``type`` 1: ``at`` ms, ``imei``, ``dev_id``,
  ``ds_id``, ``value``) or an online/offline notice (``type`` 2: ``status``,
  ``login_type``): https://github.com/kileroppo/das_go/blob/master/das/src/core/entity/entity.go
  and the walkthrough https://boardor.com/blog/using-onenet-iot-platform-http-push-service
  (pushed information: data points, online/offline, NB command replies;
  the push may batch several messages, ``msg`` then being a list).
- The same signature covers the POST: Base64(MD5(token + nonce + msg)),
  ``msg`` as the JSON text OneNET sent (compact, its key order kept).

Only the plain-text mode (明文模式) is supported; a body encrypted with the
AES key is refused as ``invalid_payload`` with that said.

A data point's ``value`` is the meter's payload: a number is a reading at
``at`` (JSON ``{"ts", "value"}``); a string is a frame as hex text (LwM2M
opaque resources such as 3311_0_5706 arrive so), JSON text, or base64.
The platform device id is ``dev_id`` (``imei`` when the device has no
``dev_id``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from collector import reasons
from collector.platforms.base import ItemProblem, Parsed, PushItem, PushRequest, Refusal, form_of, same_secret

NAME = "onenet"
DATA_POINT, ONLINE_OFFLINE = 1, 2
_HEX = frozenset("0123456789abcdefABCDEF")


def signature(token: str, nonce: str, msg: str) -> str:
    """Base64(MD5(token + nonce + msg)): what OneNET sends as ``signature`` / ``msg_signature``."""
    return base64.b64encode(hashlib.md5((token + nonce + msg).encode()).digest()).decode()  # noqa: S324 (OneNET's)


def msg_text(msg: Any) -> str:
    """``msg`` as the text the signature covers: a string as is, JSON compact in its own key order."""
    return msg if isinstance(msg, str) else json.dumps(msg, separators=(",", ":"), ensure_ascii=False)


def _signed(token: str, nonce: str, msg: str, given: str) -> bool:
    expected = signature(token, nonce, msg)
    # a '+' of base64 arrives as a space when the platform leaves it unencoded in a query string
    return same_secret(given, expected) or same_secret(given.replace(" ", "+"), expected)


class OneNet:
    name = NAME

    def __init__(self, token: str) -> None:
        self._token = token

    def verify_url(self, query: Mapping[str, str]) -> str | Refusal:
        """The URL verification GET: the ``msg`` to answer, or a refusal."""
        msg, nonce, given = query.get("msg"), query.get("nonce"), query.get("signature")
        if msg is None or nonce is None or given is None:
            return Refusal(400, reasons.INVALID_PAYLOAD, "verification request without msg, nonce and signature")
        if not _signed(self._token, nonce, msg, given):
            return Refusal(403, reasons.BAD_SIGNATURE, "URL verification signature does not match the token")
        return msg

    def parse(self, request: PushRequest) -> Parsed | Refusal:
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Refusal(400, reasons.MALFORMED_JSON, f"body is not JSON: {exc}")
        if not isinstance(body, dict) or "msg" not in body:
            return Refusal(400, reasons.INVALID_PAYLOAD, "not a OneNET push: no msg")
        nonce, given = body.get("nonce"), body.get("msg_signature")
        if not isinstance(nonce, str) or not isinstance(given, str):
            return Refusal(401, reasons.BAD_SIGNATURE, "push without nonce and msg_signature")
        if not _signed(self._token, nonce, msg_text(body["msg"]), given):
            return Refusal(403, reasons.BAD_SIGNATURE, "msg_signature does not match the token")
        if "enc_msg" in body or isinstance(body["msg"], str):
            return Refusal(400, reasons.INVALID_PAYLOAD, "encrypted push (加密模式): use the plain-text mode")
        messages = body["msg"] if isinstance(body["msg"], list) else [body["msg"]]
        parsed = Parsed()
        for msg in messages:
            _add(parsed, msg)
        return parsed


def _add(parsed: Parsed, msg: Any) -> None:
    if not isinstance(msg, dict):
        parsed.problems.append(ItemProblem("", reasons.INVALID_PAYLOAD, "msg item is not an object",
                                           json.dumps(msg, ensure_ascii=False).encode()))
        return
    if msg.get("type") != DATA_POINT:
        parsed.ignored += 1  # online/offline notices, command replies: no reading
        return
    raw = json.dumps(msg, ensure_ascii=False).encode()
    device = msg.get("dev_id", msg.get("imei"))
    if device is None or isinstance(device, bool | dict | list):
        parsed.problems.append(ItemProblem("", reasons.INVALID_PAYLOAD, "data point without dev_id or imei", raw))
        return
    payload = _payload(msg)
    if payload is None:
        parsed.problems.append(ItemProblem(str(device), reasons.INVALID_PAYLOAD,
                                           f"value of data point {msg.get('ds_id')!r} is neither a number, hex, "
                                           "JSON nor base64", raw))
        return
    parsed.items.append(PushItem(str(device), payload, form_of(payload)))


def _payload(msg: dict[str, Any]) -> bytes | None:
    value = msg.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        at = msg.get("at")
        ts = at // 1000 if isinstance(at, int) else at
        return json.dumps({"ts": ts, "value": value}).encode()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False).encode()
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith("{") or (len(text) % 2 == 0 and set(text) <= _HEX):
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
