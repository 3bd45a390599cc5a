"""Durable state behind the Store protocol: SQLite (embedded default), Redis (several
replicas sharing stations, with leases), memory (tests); InstrumentedStore times the
calls of any of them."""

from __future__ import annotations

from gateway.state.base import (
    Change,
    CredentialRecord,
    OutboxMessage,
    RouteState,
    StaleLease,
    StateError,
    StationRecord,
    Store,
    TransactionRecord,
    redacted_url,
)
from gateway.state.instrumented import InstrumentedStore


def open_store(url: str) -> Store:
    """Build the store named by a ``--state`` URL: sqlite:///path, memory://, or
    redis://[:password@]host:port/db (rediss:// for TLS, redis-py ``ssl_*`` options in
    the query). Nothing is connected yet: :meth:`Store.open` does that."""
    # Imported here: a process loads only the backend it uses (redis-py is not small).
    if url.startswith("sqlite://"):
        from gateway.state.sqlite import SqliteStore  # noqa: PLC0415

        return SqliteStore(url.removeprefix("sqlite://").removeprefix("/") or ":memory:")
    if url.startswith("memory://"):
        from gateway.state.memory import MemoryStore  # noqa: PLC0415

        return MemoryStore()
    if url.startswith(("redis://", "rediss://")):
        from gateway.state.redis import RedisStore  # noqa: PLC0415

        return RedisStore(url)
    raise StateError(
        f"unsupported state URL {redacted_url(url)!r} "
        "(sqlite:///path, redis://host:port/db or memory://)"
    )


__all__ = [
    "Change",
    "CredentialRecord",
    "InstrumentedStore",
    "OutboxMessage",
    "RouteState",
    "StaleLease",
    "StateError",
    "StationRecord",
    "Store",
    "TransactionRecord",
    "open_store",
]
