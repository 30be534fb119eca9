"""The platform modules on the platforms' own messages: OneNET HTTP push and CTWing subscription push.

Message sources (public, real bodies as the platforms sent them):
- ONENET_CAPTURE: a OneNET push captured by a workerman receiver in public PHP code (NB-IoT LwM2M
  resource 3300_0_5700, User-Agent "OneNET"), found by the code index searching '"msg_signature":"'.
- ONENET_HEX: the example push in the linxot LoRa/NB decoder README (value as hex), same search.
- CTWING_REPORT: a CTWing dataReport with transparent APPdata, from a public CTWing callback test
  (POST /cwting/callback), found searching '"messageType":"dataReport"'.
- CTWING_ONLINE / CTWING_THING: the CTWing data-format notes' online notice and non-transparent
  dataReport (tables "事件上报" / "数据上报"), same search.
- The OneNET signature rule: https://github.com/ricnsmart/util/blob/master/sign/README.md
"""

from __future__ import annotations

import base64
import hashlib
import json

from collector import reasons
from collector.platforms.base import Parsed, PushRequest, Refusal
from collector.platforms.ctwing import CtWing
from collector.platforms.onenet import OneNet, msg_text, signature

ONENET_CAPTURE = ('{"msg":{"at":1555904805407,"imei":"861931046156398","type":1,"ds_id":"3300_0_5700",'
                  '"value":-115,"dev_id":523444202},"msg_signature":"9XFwVl4VRJ2Lub2ryUJK8g==","nonce":"C1z3?giR"}')
ONENET_HEX_MSG = {"at": 1551052412074, "imei": "0000000", "type": 1, "ds_id": "3300_0_5750",
                  "value": "c0ced68f09234e9e4581fdfa1edab74f10ad9e4c", "dev_id": 111111}
CTWING_REPORT = ('{"upPacketSN":-1,"upDataSN":-1,"topic":"v1/up/ad","timestamp":1650554828842,"tenantId":"2000033629",'
                 '"serviceId":"","protocol":"lwm2m","productId":"15114816","payload":{"APPdata":"AQFWMS4wAAAAACMAAAAH/wA'
                 'lODYyNTkyMDUxNjUxNDcyAAEAMjUAODAAAAAAAAABAQAAAAEAAASD"},"messageType":"dataReport","deviceType":"",'
                 '"deviceId":"40edca19b0124480864366de4621de99","assocAssetId":"","IMSI":"undefined",'
                 '"IMEI":"862592051651472"}')
CTWING_ONLINE = ('{"timestamp":1619523036482,"tenantId":"2000033827","protocol":"lwm2m","productId":"15045240",'
                 '"messageType":"deviceOnlineOfflineReport","iccid":"undefined","eventType":1,'
                 '"deviceId":"d01308047f864601a821e02dc328eab4"}')
CTWING_THING = ('{"upPacketSN":-1,"upDataSN":-1,"topic":"v1/up/ad19","timestamp":1619524024049,"tenantId":"2000033827",'
                '"serviceId":10,"protocol":"lwm2m","productId":"15045240","payload":{"time":1619524019000,'
                '"longitude":-174,"latitude":-86},"messageType":"dataReport","deviceType":"",'
                '"deviceId":"d01308047f864601a821e02dc328eab4","assocAssetId":"","IMSI":"undefined",'
                '"IMEI":"161941770261953"}')
TOKEN = "meterwatch-test-token"


def signed(msg, nonce: str = "C1z3?giR", token: str = TOKEN) -> bytes:
    return json.dumps({"msg": msg, "msg_signature": signature(token, nonce, msg_text(msg)), "nonce": nonce},
                      separators=(",", ":")).encode()


def post(body: bytes | str, **query: str) -> PushRequest:
    return PushRequest("POST", query, body.encode() if isinstance(body, str) else body)


def test_onenet_signature_is_base64_of_md5_of_token_nonce_msg():
    by_hand = base64.b64encode(hashlib.md5(b"abc" + b"n0nce" + b"hello").digest()).decode()
    assert signature("abc", "n0nce", "hello") == by_hand and len(by_hand) == 24


def test_onenet_url_verification_answers_msg_only_with_the_right_signature():
    onenet = OneNet(TOKEN)
    good = {"msg": "xGnNAv", "nonce": "abcdefgh", "signature": signature(TOKEN, "abcdefgh", "xGnNAv")}
    assert onenet.verify_url(good) == "xGnNAv"
    # a '+' of the base64 left unencoded in the query string arrives as a space
    assert onenet.verify_url({**good, "signature": good["signature"].replace("+", " ")}) == "xGnNAv"
    wrong = onenet.verify_url({**good, "signature": signature("other", "abcdefgh", "xGnNAv")})
    assert isinstance(wrong, Refusal) and (wrong.status, wrong.reason) == (403, reasons.BAD_SIGNATURE)
    missing = onenet.verify_url({"msg": "x"})
    assert isinstance(missing, Refusal) and missing.status == 400


def test_onenet_real_capture_is_refused_with_another_token_and_accepted_resigned():
    refused = OneNet(TOKEN).parse(post(ONENET_CAPTURE))
    assert isinstance(refused, Refusal) and (refused.status, refused.reason) == (403, reasons.BAD_SIGNATURE)
    assert TOKEN not in refused.detail
    msg = json.loads(ONENET_CAPTURE)["msg"]
    parsed = OneNet(TOKEN).parse(post(signed(msg)))
    assert isinstance(parsed, Parsed) and parsed.problems == [] and len(parsed.items) == 1
    item = parsed.items[0]
    # a numeric value is a reading at the push's time (ms -> s); the decoder judges the value (-115: bad_value)
    assert (item.platform_id, item.form, json.loads(item.payload)) == (
        "523444202", "json", {"ts": 1555904805, "value": -115})


def test_onenet_hex_value_is_a_frame_and_batches_and_notices_are_handled():
    online = {"at": 1555904805407, "type": 2, "status": 1, "login_type": 10, "dev_id": 111111, "imei": "0000000"}
    garbage = {**ONENET_HEX_MSG, "value": "not base64 ***"}
    parsed = OneNet(TOKEN).parse(post(signed([ONENET_HEX_MSG, online, garbage])))
    assert isinstance(parsed, Parsed) and parsed.ignored == 1
    assert [(i.platform_id, i.form, i.payload) for i in parsed.items] == [
        ("111111", "frame", b"c0ced68f09234e9e4581fdfa1edab74f10ad9e4c")]
    assert [(p.platform_id, p.reason) for p in parsed.problems] == [("111111", reasons.INVALID_PAYLOAD)]
    assert "neither a number, hex, JSON nor base64" in parsed.problems[0].detail


def test_onenet_bad_bodies_are_refused_with_reasons():
    onenet = OneNet(TOKEN)
    cases = {b"{not json": (400, reasons.MALFORMED_JSON), b'{"nonce": "x"}': (400, reasons.INVALID_PAYLOAD),
             b'{"msg": {"type": 1}}': (401, reasons.BAD_SIGNATURE)}
    for body, expected in cases.items():
        refusal = onenet.parse(post(body))
        assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == expected, body


def test_ctwing_token_is_checked_before_the_body():
    ctwing = CtWing(TOKEN)
    for query, status in (({}, 401), ({"token": "guess"}, 403)):
        refusal = ctwing.parse(post(CTWING_REPORT, **query))
        assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == (status, reasons.BAD_SIGNATURE)
        assert TOKEN not in refusal.detail


def test_ctwing_real_report_online_notice_and_thing_model_payload():
    ctwing = CtWing(TOKEN)
    parsed = ctwing.parse(post(CTWING_REPORT, token=TOKEN))
    assert isinstance(parsed, Parsed) and parsed.problems == [] and parsed.ignored == 0
    [item] = parsed.items
    assert item.platform_id == "40edca19b0124480864366de4621de99" and item.form == "frame"
    assert item.payload == base64.b64decode(json.loads(CTWING_REPORT)["payload"]["APPdata"])
    online = ctwing.parse(post(CTWING_ONLINE, token=TOKEN))
    assert isinstance(online, Parsed) and (online.items, online.ignored) == ([], 1)
    thing = ctwing.parse(post(CTWING_THING, token=TOKEN))
    assert isinstance(thing, Parsed) and thing.items[0].form == "json"
    assert json.loads(thing.items[0].payload) == {"time": 1619524019000, "longitude": -174, "latitude": -86}


def test_ctwing_garbage_base64_and_bad_json():
    ctwing = CtWing(TOKEN)
    report = json.loads(CTWING_REPORT)
    report["payload"]["APPdata"] = "AQFWMS4w!!!garbage"
    parsed = ctwing.parse(post(json.dumps(report), token=TOKEN))
    assert isinstance(parsed, Parsed) and parsed.items == []
    assert [(p.platform_id, p.reason, p.detail) for p in parsed.problems] == [
        ("40edca19b0124480864366de4621de99", reasons.INVALID_PAYLOAD, "APPdata is not base64")]
    refusal = ctwing.parse(post("{not json", token=TOKEN))
    assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == (400, reasons.MALFORMED_JSON)
    refusal = ctwing.parse(post('{"deviceId": "x"}', token=TOKEN))
    assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == (400, reasons.INVALID_PAYLOAD)
