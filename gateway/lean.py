"""Lean stand-ins for asyncio.Event and asyncio.Queue, for objects held per charger.

Layer: bottom (standard library only; used by transport and session).

asyncio.Event and asyncio.Queue allocate their deques up front: about 0.8 KiB per Event
and 2.3 KiB per Queue, empty. A connected charger holds several of each for its whole
connection, so they were over a tenth of the gateway's memory per idle charger
(docs/performance.md). These allocate only while somebody waits or something is queued;
the subset of the API the gateway uses behaves as asyncio's does (a queue with
``maxsize`` <= 0 is unbounded; a cancelled ``get`` loses no item).

Both keep the event loop they first wait on, as asyncio's do (``_LoopBoundMixin``):
on CPython 3.11 every ``asyncio.get_running_loop()`` is a ``getpid()`` system call
(a fork check), and a few of those per message were measurable on a VM
(docs/performance.md). :func:`loop_of` gives other per-charger objects the same cache.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


def loop_of(cached: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
    """``cached`` if set, else the running loop: ``self._loop = loop_of(self._loop)``."""
    return asyncio.get_running_loop() if cached is None else cached


class LeanEvent:
    __slots__ = ("_loop", "_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        self._loop = loop = loop_of(self._loop)
        waiter: asyncio.Future[None] = loop.create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanQueue(Generic[T]):
    __slots__ = ("_getters", "_items", "_loop", "_maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._maxsize = maxsize
        self._items: list[T] = []  # at most max_queued_calls long: pop(0) is cheap
        self._getters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        if 0 < self._maxsize <= len(self._items):
            raise asyncio.QueueFull
        self._items.append(item)
        self._wake_one()

    async def get(self) -> T:
        while not self._items:
            self._loop = loop = loop_of(self._loop)
            getter: asyncio.Future[None] = loop.create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and self._items:
                    self._wake_one()  # it was woken for an item it will not take
                raise
            finally:
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                if not self._getters:
                    self._getters = None
        return self._items.pop(0)

    def _wake_one(self) -> None:
        for getter in self._getters or ():
            if not getter.done():
                getter.set_result(None)
                return
