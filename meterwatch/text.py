"""Text from gateways: what may be stored, and how to show it in a log line."""

from __future__ import annotations

import unicodedata


def has_control(text: str) -> bool:
    """True if ``text`` holds a control character (C0, DEL, C1): never valid in a stored string."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def printable(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters, non-printable ones escaped: safe to put in a log line."""
    cut = text[:limit]
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut) + ("…" if len(text) > limit else "")
