"""Durable state behind the Store protocol: SQLite (embedded default), memory (tests);
InstrumentedStore times the calls of any of them."""

from __future__ import annotations

from gateway.state.base import (
    Change,
    OutboxMessage,
    StateError,
    StationRecord,
    Store,
    TransactionRecord,
)
from gateway.state.instrumented import InstrumentedStore


def open_store(url: str) -> Store:
    """Build the store named by a ``--state`` URL (sqlite:///path, memory://)."""
    from gateway.state.memory import MemoryStore  # noqa: PLC0415 - pick one backend
    from gateway.state.sqlite import SqliteStore  # noqa: PLC0415

    if url.startswith("sqlite://"):
        return SqliteStore(url.removeprefix("sqlite://").removeprefix("/") or ":memory:")
    if url.startswith("memory://"):
        return MemoryStore()
    if url.startswith(("redis://", "rediss://")):
        raise StateError("the Redis store is not in this release yet: use sqlite:///path")
    raise StateError(f"unsupported state URL {url!r} (sqlite:///path or memory://)")


__all__ = [
    "Change",
    "InstrumentedStore",
    "OutboxMessage",
    "StateError",
    "StationRecord",
    "Store",
    "TransactionRecord",
    "open_store",
]
