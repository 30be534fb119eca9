"""Acknowledgement links: one alert, signed, expiring.

``/ack?id=ALERT&exp=UNIX&signature=HEX``, where the signature is
HMAC-SHA256 (key ``analytics.ack_secret``) of ``ack|ALERT|EXP``.  Altering
the id or the expiry breaks the signature; the signature is compared in
constant time.  The parameter is called ``signature`` so that
``meterwatch.redact`` hides it in any logged URL.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def signature(alert_id: str, expires: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"ack|{alert_id}|{expires}".encode(), hashlib.sha256).hexdigest()


def link(base_url: str, alert_id: str, now: float, ttl_s: float, secret: str) -> str:
    expires = int(now + ttl_s)
    query = urlencode({"id": alert_id, "exp": expires, "signature": signature(alert_id, expires, secret)})
    return f"{base_url.rstrip('/')}/ack?{query}"


def refusal(alert_id: str, expires: str, given: str, secret: str, now: float) -> str | None:
    """Why the link is refused (``bad_signature`` or ``expired``), or None if it is good."""
    if not expires.isdigit() or not hmac.compare_digest(signature(alert_id, int(expires), secret), given):
        return "bad_signature"
    if int(expires) < now:
        return "expired"
    return None
