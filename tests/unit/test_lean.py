"""LeanEvent and LeanQueue behave as the asyncio subset the sessions use."""

from __future__ import annotations

import asyncio

import pytest

from gateway.lean import LeanEvent, LeanQueue


async def test_event_wakes_every_waiter_and_stays_set_until_cleared() -> None:
    event = LeanEvent()
    waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert event.is_set() and await event.wait()
    event.clear()
    late = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert not late.done()
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    assert event._waiters == []  # a cancelled waiter leaves nothing behind


async def test_queue_is_fifo_bounded_and_unbounded_at_zero() -> None:
    queue: LeanQueue[int] = LeanQueue(2)
    queue.put_nowait(1)
    queue.put_nowait(2)
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait(3)
    assert [await queue.get(), await queue.get()] == [1, 2]
    assert queue.empty()
    unbounded: LeanQueue[int] = LeanQueue(0)
    for item in range(100):
        unbounded.put_nowait(item)
    assert unbounded.qsize() == 100


async def test_a_waiting_get_receives_the_next_item() -> None:
    queue: LeanQueue[str] = LeanQueue(4)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    assert await getter == "a"
    assert queue._getters is None  # nothing allocated while idle


async def test_a_cancelled_get_loses_no_item() -> None:
    queue: LeanQueue[str] = LeanQueue(4)
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("x")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it takes the item
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) == "x"
