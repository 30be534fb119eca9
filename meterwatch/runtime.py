"""What every long-running command needs: a checked registry, and a clean stop on SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from meterwatch.registry import Registry, RegistryError, load_registry
from meterwatch.settings import Settings

log = logging.getLogger("meterwatch")


def load_checked_registry(settings: Settings, directory: Path | None = None) -> Registry:
    """The registry, refusing to run on a file with problems only when nothing at all is usable."""
    registry, problems = load_registry(directory or settings.registry, settings.cities)
    for problem in problems[:20]:
        log.warning("registry problem", extra={"problem": str(problem)})
    if len(problems) > 20:
        log.warning("more registry problems", extra={"count": len(problems) - 20,
                                                     "hint": "run `meterwatch registry check`"})
    if not registry.devices:
        raise RegistryError(f"no usable device in {directory or settings.registry}")
    return registry


async def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGTERM and Ctrl-C set ``stop`` so that it can flush and exit cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await main(stop)
