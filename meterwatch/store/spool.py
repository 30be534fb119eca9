"""A bounded on-disk queue of batches: where data waits while the store is down.

One file per batch, written to a temporary name, fsynced and renamed, so a
crash leaves either a whole batch or none.  Files are named by a sequence
number and replayed in that order.  The spool never drops: when it is full
``append`` raises ``SpoolFull`` and the caller must hold back (and say so).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from meterwatch.store.codec import decode_batch, encode_batch
from meterwatch.store.records import Batch

log = logging.getLogger(__name__)
SUFFIX = ".batch"


class SpoolFull(Exception):
    pass


class DiskSpool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a write the crash interrupted: never acknowledged, so never needed
        self._files = sorted(directory.glob(f"*{SUFFIX}"))
        self.bytes = sum(p.stat().st_size for p in self._files)
        self._next = int(self._files[-1].stem) + 1 if self._files else 1

    def __len__(self) -> int:
        return len(self._files)

    def append(self, batch: Batch) -> None:
        data = encode_batch(batch)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.directory} full: {self.bytes} of {self.max_bytes} bytes used")
        path = self.directory / f"{self._next:016d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._next += 1
        self._files.append(path)
        self.bytes += len(data)

    def oldest(self) -> tuple[Path, Batch] | None:
        if not self._files:
            return None
        path = self._files[0]
        return path, decode_batch(path.read_bytes())

    def remove(self, path: Path) -> None:
        size = path.stat().st_size
        path.unlink()
        self._files.remove(path)
        self.bytes -= size

    def quarantine(self, path: Path, reason: str) -> None:
        """Move a batch the store refuses for good aside, kept for an operator, out of the replay order."""
        target = self.directory / "refused"
        target.mkdir(exist_ok=True)
        size = path.stat().st_size
        os.replace(path, target / path.name)
        self._files.remove(path)
        self.bytes -= size
        log.error("spooled batch refused by the store; kept aside", extra={"file": str(target / path.name),
                                                                          "reason": reason[:300]})

    def latest_readings(self) -> dict[str, tuple[int, float]]:
        """device -> newest (ts, register) waiting here: part of the collector's baseline after a restart."""
        latest: dict[str, tuple[int, float]] = {}
        for path in self._files:
            for r in decode_batch(path.read_bytes()).readings:
                if r.device not in latest or r.ts > latest[r.device][0]:
                    latest[r.device] = (r.ts, r.register)
        return latest
