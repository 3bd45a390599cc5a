"""SQLite group commit: concurrent durable commits share one transaction (one fsync),
yet each stays atomic on its own and is answered on its own."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.state import Change, OutboxMessage, StaleLease, StateError
from gateway.state.sqlite import SqliteStore


def heartbeat(n: int) -> OutboxMessage:
    return OutboxMessage("Heartbeat", {"n": n})


async def test_concurrent_commits_all_land_in_order_per_station(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        commits = [store.commit(f"CP{n % 5}", Change(append=(heartbeat(n),))) for n in range(200)]
        positions = await asyncio.gather(*commits)
        assert len({p for (p,) in positions}) == 200  # every append got its own position
        for station in range(5):
            pending = await store.pending_outbox(f"CP{station}")
            assert [m.payload["n"] for m in pending] == list(range(station, 200, 5))
            assert [m.position for m in pending] == sorted(m.position for m in pending)
    finally:
        await store.close()
    reopened = SqliteStore(str(tmp_path / "state.db"))
    await reopened.open()
    try:
        assert len(await reopened.pending_outbox("CP0")) == 40  # durable, not just cached
    finally:
        await reopened.close()


async def test_a_refused_commit_in_a_group_is_undone_alone(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        stale = await store.acquire_lease("CP1", "A", 30)
        current = await store.acquire_lease("CP1", "B", 30)
        results = await asyncio.gather(
            store.commit("CP1", Change(append=(heartbeat(1),)), fence=current),
            store.commit("CP1", Change(append=(heartbeat(2),)), fence=stale),
            store.commit("CP2", Change(append=(heartbeat(3),))),
            return_exceptions=True,
        )
        assert isinstance(results[1], StaleLease)
        assert not isinstance(results[0], BaseException)
        assert not isinstance(results[2], BaseException)
        assert [m.payload["n"] for m in await store.pending_outbox("CP1")] == [1]
        assert [m.payload["n"] for m in await store.pending_outbox("CP2")] == [3]
    finally:
        await store.close()


async def test_commits_before_open_are_refused(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    with pytest.raises(StateError, match="not open"):
        await store.commit("CP1", Change(append=(heartbeat(1),)))
    with pytest.raises(StateError, match="not open"):
        await store.pending_outbox("CP1")
    await store.close()  # closing a store never opened is harmless


async def test_commits_after_close_are_refused(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    await store.open()
    await store.close()
    with pytest.raises(StateError, match="closed"):
        await store.commit("CP1", Change(append=(heartbeat(1),)))


async def test_the_wal_is_checkpointed_in_the_background_and_truncated_at_close(
    tmp_path: Path,
) -> None:
    """Commits do not run checkpoints (wal_autocheckpoint=0); the background checkpointer
    copies every WAL frame into the database file, and close() leaves no WAL behind
    (empty, or removed with the last connection)."""
    path = tmp_path / "state.db"
    store = SqliteStore(str(path))
    await store.open()
    await asyncio.gather(
        *(store.commit("CP-1", Change(append=(heartbeat(n),))) for n in range(200))
    )
    checkpointer = store._checkpointer
    assert checkpointer is not None
    checkpointer.checkpointed.clear()
    assert await asyncio.to_thread(checkpointer.checkpointed.wait, 10)
    probe = sqlite3.connect(path)
    try:
        busy, frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        probe.close()
    assert (busy, frames) != (0, 0) and frames == copied  # nothing left to copy
    assert [m.payload["n"] for m in await store.pending_outbox("CP-1")] == list(range(200))
    await store.close()
    wal = path.with_name("state.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


async def test_deliveries_share_the_group_and_the_connection_stays_fully_synced(
    tmp_path: Path,
) -> None:
    """Delivery records (no fsync needed) go through the same group writer as durable
    commits: issued together they all land, a station's order holds, and a group of
    deliveries alone leaves the connection back on synchronous=FULL for the next one."""
    store = SqliteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        first = await asyncio.gather(
            *(store.commit("CP1", Change(append=(heartbeat(n),))) for n in range(10))
        )
        positions = [p for (p,) in first]
        # Deliver the first five while five more are appended, all in flight at once.
        mixed = [store.commit("CP1", Change(delivered=(p,))) for p in positions[:5]]
        mixed += [store.commit("CP1", Change(append=(heartbeat(n),))) for n in range(10, 15)]
        await asyncio.gather(*mixed)
        pending = await store.pending_outbox("CP1")
        assert [m.payload["n"] for m in pending] == list(range(5, 15))
        # A group of deliveries alone.
        await asyncio.gather(
            *(store.commit("CP1", Change(delivered=(m.position,))) for m in pending[:5])
        )
        assert [m.payload["n"] for m in await store.pending_outbox("CP1")] == list(range(10, 15))
        assert store._db is not None
        assert await store._run(lambda db: db.execute("PRAGMA synchronous").fetchone()) == (2,)
    finally:
        await store.close()
    reopened = SqliteStore(str(tmp_path / "state.db"))
    await reopened.open()
    try:
        remaining = [m.payload["n"] for m in await reopened.pending_outbox("CP1")]
        assert remaining == list(range(10, 15))
    finally:
        await reopened.close()
