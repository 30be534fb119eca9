"""Bounded on-disk queue of batches (where data waits while the store is down), and the quarantine.

One file per batch, written to a temporary name, fsynced and renamed, so a
crash leaves either a whole batch or none.  Files are named by a sequence
number and replayed in that order.  The spool never drops: when it is full,
or the disk under it is (ENOSPC), ``append`` raises ``SpoolFull`` and the
caller must hold back (and say so).

The quarantine keeps what the store refuses even one record at a time: one
file per refused record set, with the store's error, durable like the spool.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from pathlib import Path

from meterwatch.store.codec import decode_batch, encode_batch
from meterwatch.store.records import Batch

log = logging.getLogger(__name__)
SUFFIX = ".batch"
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


class SpoolFull(Exception):
    """No room to make a batch durable on disk: the spool's bound is reached or the disk is full."""


def _write_durably(path: Path, data: bytes) -> None:
    """``data`` at ``path``, whole or not at all, on disk before this returns (file and directory fsynced)."""
    tmp = path.with_suffix(".tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in NO_ROOM:
            raise SpoolFull(f"disk under {path.parent} cannot take {len(data)} bytes: {exc}") from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _next_number(paths: list[Path]) -> int:
    return int(paths[-1].stem) + 1 if paths else 1


class DiskSpool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a write the crash interrupted: never acknowledged, so never needed
        self._files = sorted(directory.glob(f"*{SUFFIX}"))
        self.bytes = sum(p.stat().st_size for p in self._files)
        self._next = _next_number(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def append(self, batch: Batch) -> None:
        data = encode_batch(batch)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.directory} full: {self.bytes} of {self.max_bytes} bytes used")
        path = self.directory / f"{self._next:016d}{SUFFIX}"
        _write_durably(path, data)
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

    def latest_readings(self) -> dict[str, tuple[int, float]]:
        """device -> newest (ts, register) waiting here: part of the collector's baseline after a restart."""
        latest: dict[str, tuple[int, float]] = {}
        for path in self._files:
            for r in decode_batch(path.read_bytes()).readings:
                if r.device not in latest or r.ts > latest[r.device][0]:
                    latest[r.device] = (r.ts, r.register)
        return latest


class Quarantine:
    """Records the store refuses for good, kept for an operator: ``NNN.json`` = {error, at, records}.

    ``records`` is the spool's encoding of the refused batch (measurement ->
    rows of attribute values, bytes as base64), so a reject keeps its reason.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()
        self._files = sorted(directory.glob("*.json"))
        self._next = _next_number(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def put(self, batch: Batch, error: str) -> Path:
        """Keep ``batch`` with the store's ``error``; raises ``SpoolFull`` when the disk has no room."""
        doc = {"error": error, "at": time.time(), "records": json.loads(encode_batch(batch))}
        path = self.directory / f"{self._next:016d}.json"
        _write_durably(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
        self._next += 1
        self._files.append(path)
        log.error("store refused records even one at a time; quarantined on disk",
                  extra={"file": str(path), "records": len(batch), "error": error[:300]})
        return path
