"""Mutes: operators silence an institution, a device or a rule until a time, with a reason.

Muted alerts are still evaluated, kept in the alert state and written to the
store; they are not sent (no digest, no notifier).  Mutes live in a file of
their own (``analytics.mute_file``), not in the alert state: ``meterwatch
alerts mute`` writes it (atomically) while the scheduled process runs, and
every evaluation reads it afresh.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from meterwatch.store import AlertPoint

KINDS = ("institution", "device", "rule")


@dataclass(frozen=True)
class Mute:
    kind: str  # institution, device or rule
    value: str
    until: int  # Unix s
    reason: str
    by: str = "cli"
    created: int = 0

    def covers(self, event: AlertPoint, now: int) -> bool:
        return now < self.until and getattr(event, self.kind) == self.value


def load_mutes(path: Path) -> list[Mute]:
    if not path.is_file():
        return []
    return [Mute(**m) for m in json.loads(path.read_text(encoding="utf-8"))]


def save_mutes(path: Path, mutes: list[Mute]) -> None:
    """Atomically (temporary file, fsync, rename), like the alert state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps([asdict(m) for m in mutes], ensure_ascii=False, indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def muted(event: AlertPoint, mutes: list[Mute], now: int) -> Mute | None:
    return next((m for m in mutes if m.covers(event, now)), None)


def unmuted(events: list[AlertPoint], path: Path | None, now: int) -> list[AlertPoint]:
    """The events no mute in force at ``now`` covers (all of them without a mute file)."""
    mutes = load_mutes(path) if path is not None else []
    return [e for e in events if muted(e, mutes, now) is None]
