"""Waiting on an event with a time limit, in loops that must stop when cancelled.

``asyncio.wait_for`` on Python 3.11 returns the awaited result instead of
raising ``CancelledError`` when its task is cancelled just as the awaited
event is set (CPython gh-86296, fixed in 3.12).  A loop around it then
goes on after being told to stop: the collector's ticker did so at
shutdown, as the writer's last batch set the event it waits on, and the
collector overran its grace.  ``asyncio.timeout`` keeps the cancellation.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Until ``event`` is set (True) or ``timeout_s`` has passed (False); a cancellation always propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
