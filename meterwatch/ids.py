"""Identifier rules shared by registry, topics and stores.

Ids become MQTT topic levels and InfluxDB tag values, so one pattern keeps
both safe: no wildcards (``+``, ``#``), no separators, no spaces.
"""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None
