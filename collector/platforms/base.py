"""What a platform module does: one HTTP request in, verified items (or a refusal) out.

A platform module (``onenet``, ``ctwing``) knows its platform's message
format and how it proves a request came from the platform (signature or
shared token).  It does no I/O and knows nothing of the registry: it names
each reading by the platform's device id, and ``collector.push`` maps that
id to a registry device (``devices.csv`` column ``platform_id``) and feeds
the payload to the collector like an MQTT message.

Contract of ``Platform.parse``:

- a request whose origin cannot be verified is a ``Refusal`` (401/403,
  reason ``bad_signature``); the detail never holds the secret;
- a body that is not the platform's message format is a ``Refusal``
  (400, ``malformed_json`` or ``invalid_payload``);
- otherwise a ``Parsed``: the readings' items, each with the platform
  device id and the meter's payload (a frame as bytes or hex text, or
  reading JSON); the items that could not be decoded (bad base64 or hex)
  as ``ItemProblem``; and how many messages carried no reading (online or
  offline notices, events): those are answered and not stored.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

Form = Literal["json", "frame"]


@dataclass(frozen=True, slots=True)
class PushRequest:
    """An HTTP request as the platform modules see it (so they are tested without a server)."""

    method: str
    query: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class PushItem:
    platform_id: str
    payload: bytes
    form: Form  # json: a reading (or weighing) document; frame: a meter's reply frame, bytes or hex text


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """One message of a push that could not be decoded: kept as a reject with its reason."""

    platform_id: str
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    """The whole request refused with ``status``; ``reason`` is the collector reject reason it is kept under."""

    status: int
    reason: str
    detail: str


@dataclass(slots=True)
class Parsed:
    items: list[PushItem] = field(default_factory=list)
    problems: list[ItemProblem] = field(default_factory=list)
    ignored: int = 0


class Platform(Protocol):
    name: str  # the route is /push/{name}

    def parse(self, request: PushRequest) -> Parsed | Refusal: ...


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (a timing difference must not reveal how much of a guess was right)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def form_of(payload: bytes) -> Form:
    """JSON when the payload is a JSON object, else a frame (binary, or hex text)."""
    return "json" if payload.lstrip()[:1] == b"{" else "frame"
