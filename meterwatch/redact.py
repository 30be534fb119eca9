"""URLs made safe for errors and logs: the one place that knows what a URL may hide.

Store and broker URLs may carry ``user:password@``; chat robots carry their
access token in the query string (DingTalk ``access_token``, WeCom ``key``,
signed robots ``sign``).  ``redact_url`` keeps what an operator needs to
find the fault (scheme, host, port, path, the names of the parameters) and
replaces every secret with ``***``.  Every error or log line that carries a
URL goes through it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose value is a secret (compared case-insensitively, by substring).
SECRET_PARAMS = ("token", "key", "sign", "secret", "password", "passwd", "pwd", "auth", "signature")
_USERINFO = re.compile(r"//([^/@\s]*)@")


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_PARAMS)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``; never raises."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
        query = urlencode([(k, MASK if _secret_param(k) else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:  # unparseable (a bad port, brackets): hide any userinfo and the whole query
        return _USERINFO.sub(lambda m: "//" + m.group(1).split(":", 1)[0] + ":" + MASK + "@", url).split("?")[0]


def redact_text(text: str, *urls: str) -> str:
    """``text`` (an exception's message) with each of ``urls``, and its secrets, redacted."""
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
            for secret in _secrets(url):
                text = text.replace(secret, MASK)
    return text


def _secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if v and _secret_param(k)]
    except ValueError:
        return []
    return found
