"""A loop waiting on an event with a time limit stops when cancelled, even as the event is set."""

from __future__ import annotations

import asyncio

from meterwatch.aio import wait_set


async def test_a_wait_cancelled_as_its_event_is_set_is_cancelled() -> None:
    """The collector's ticker at shutdown: the writer sets the event and the ticker is cancelled in the same
    turn of the loop.  With ``asyncio.wait_for`` (Python 3.11) the loop went on; the bound below is only how
    long the test waits to find out, not a synchronisation."""
    event = asyncio.Event()
    rounds = 0

    async def ticker() -> None:
        nonlocal rounds
        while True:
            await wait_set(event, 60)
            event.clear()
            rounds += 1

    task = asyncio.create_task(ticker())
    for _ in range(3):  # let it reach its wait
        await asyncio.sleep(0)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done == {task} and task.cancelled() and rounds == 0


async def test_a_wait_says_whether_the_event_was_set_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 60) is True
