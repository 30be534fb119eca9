"""``meterwatch collect --status``: what every collector last said about itself, read from the store."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from meterwatch.store import CollectorSample, RejectRecord, Store

FIELDS = ("received", "stored", "rejected", "duplicates", "spooled", "spool_bytes", "lag", "write_ms", "idle_s",
          "connected")


async def status_report(store: Store, *, hours: float = 24.0, now: float | None = None,
                        clock: Callable[[], float] = time.time) -> tuple[str, bool]:
    """The report text, and whether any collector reported within the window (ending ``now``, or the clock's)."""
    now = now or clock()
    since = int(now - hours * 3600)
    samples = await store.fetch(CollectorSample, start=since)
    latest: dict[str, CollectorSample] = {}
    for s in samples:
        latest[s.instance] = s
    rejects = await store.count_by(RejectRecord, "reason", since)
    lines = [f"collectors reporting in the last {hours:g} h: {len(latest)}"]
    if latest:
        lines.append(f"{'instance':<16} {'last report (UTC)':<20} " + " ".join(f"{f:>11}" for f in FIELDS))
        for name, s in sorted(latest.items()):
            when = datetime.fromtimestamp(s.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"{name:<16} {when:<20} " + " ".join(f"{getattr(s, f):>11}" for f in FIELDS))
    lines.append("rejected by reason: " + (", ".join(f"{r}={n}" for r, n in sorted(rejects.items())) or "none"))
    return "\n".join(lines), bool(latest)
