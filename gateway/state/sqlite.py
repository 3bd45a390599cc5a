"""SQLite Store: the embedded default (one file, WAL, no server).

Layer: state. sqlite3 blocks, so every statement runs on one dedicated worker thread
(one connection, used by one thread, as sqlite3 prefers); the event loop only awaits.
The schema is versioned with ``PRAGMA user_version`` and upgraded by the ordered
``_MIGRATIONS`` list on open.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

import orjson

from gateway.state.base import StateError, StationRecord

T = TypeVar("T")

_MIGRATIONS: Final = (
    # 1: station records
    """
    CREATE TABLE station (
        station_id   TEXT PRIMARY KEY,
        boot         BLOB NOT NULL,
        registration TEXT NOT NULL,
        updated_at   REAL NOT NULL
    );
    """,
    # 2: faults raised per connector, cleared upstream on NoError
    "ALTER TABLE station ADD COLUMN connector_errors BLOB NOT NULL DEFAULT '{}';",
)


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None
        self._closed = False

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def guarded() -> T:
            if self._db is None:
                raise StateError(f"{self._path}: store is not open")
            try:
                return work(self._db)
            except sqlite3.Error as exc:
                raise StateError(f"{self._path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    async def open(self) -> None:
        def connect() -> None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            try:
                db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # an answered message survives power loss
                db.execute("PRAGMA busy_timeout=5000")
                _migrate(db)
            except sqlite3.Error as exc:
                raise StateError(f"{self._path}: {exc}") from exc
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def get_station(self, station_id: str) -> StationRecord | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT boot, registration, connector_errors FROM station WHERE station_id = ?",
                (station_id,),
            ).fetchone()
        )
        if row is None:
            return None
        errors = {int(connector): code for connector, code in orjson.loads(row[2]).items()}
        return StationRecord(station_id, orjson.loads(row[0]), row[1], errors)

    async def put_station(self, record: StationRecord) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO station (station_id, boot, registration, connector_errors, "
                "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET "
                "boot = excluded.boot, registration = excluded.registration, "
                "connector_errors = excluded.connector_errors, updated_at = excluded.updated_at",
                (
                    record.station_id,
                    orjson.dumps(record.boot),
                    record.registration,
                    orjson.dumps(dict(record.connector_errors), option=orjson.OPT_NON_STR_KEYS),
                    time.time(),
                ),
            )
        )


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > len(_MIGRATIONS):
        raise StateError(f"database schema {version} is newer than this gateway understands")
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")
