"""Warnings that would come once per message, logged instead as one line per kind and interval.

Bad input arrives by the thousand: a warning per rejected message buries
everything else in the log, and lets a hostile gateway fill a disk.  Each
kind (rejects, unknown cards, register anomalies, internal errors...) is
counted by key (a reason, an institution, a flag, an exception class) with
one example per key, and said once per ``emit`` (the collector's metrics
interval).  The full detail of every reject stays in the ``reject``
measurement.  An exception is logged with its traceback once per interval.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from meterwatch.text import printable

TOP_KEYS = 10  # a line names the most frequent keys; the rest are counted in ``more``


@dataclass
class _Tally:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    error: BaseException | None = None  # the first exception of the interval, logged with its traceback


class LogSummary:
    def __init__(self, logger: logging.Logger, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._monotonic = monotonic
        self._tallies: dict[str, _Tally] = {}
        self._since = monotonic()

    def note(self, kind: str, key: str, example: str) -> None:
        """Count one event of ``kind`` (the log message) under ``key``; keep the first ``example``."""
        tally = self._tallies.setdefault(kind, _Tally())
        tally.counts[key] += 1
        tally.examples.setdefault(key, printable(example))

    def error(self, kind: str, exc: BaseException, example: str) -> None:
        """Count an exception under its class name; the first one's traceback goes to the log at ``emit``."""
        self.note(kind, type(exc).__name__, example)
        tally = self._tallies[kind]
        tally.error = tally.error or exc

    def emit(self) -> int:
        """Log one line per kind seen since the last call; return how many lines."""
        tallies, self._tallies = self._tallies, {}
        now = self._monotonic()
        interval_s, self._since = round(now - self._since, 1), now
        for kind, tally in tallies.items():
            top = dict(tally.counts.most_common(TOP_KEYS))
            extra = {"total": tally.counts.total(), "counts": top, "more": len(tally.counts) - len(top),
                     "examples": {k: tally.examples[k] for k in top}, "interval_s": interval_s}
            if tally.error is not None:
                err = tally.error
                self._log.error(kind, extra=extra, exc_info=(type(err), err, err.__traceback__))
            else:
                self._log.warning(kind, extra=extra)
        return len(tallies)
