"""SQLite Store: the embedded default (one file, WAL, no server).

Layer: state. sqlite3 blocks, so every statement runs on one dedicated worker thread
(one connection, used by one thread, as sqlite3 prefers); the event loop only awaits.
The schema is versioned with ``PRAGMA user_version`` and upgraded by the ordered
``_MIGRATIONS`` list on open. Writes that belong together run in one
``BEGIN IMMEDIATE ... COMMIT`` (:func:`_atomically`), so a crash or a failed statement
leaves all of a :class:`Change` or none of it (DESIGN.md: nothing is lost). A fenced
commit reads the station's lease token inside that same transaction, so a superseded
holder's change is refused whole (:class:`StaleLease`). Leases expire by ``time.time()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from gateway.ocppj import Payload
from gateway.state import rows
from gateway.state.base import (
    Change,
    CredentialRecord,
    OutboxMessage,
    RouteState,
    StaleLease,
    StateError,
    StationRecord,
    TransactionRecord,
)

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL: Final = 1.0  # seconds between background WAL checkpoints
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
    # 3: last status per connector, pending remote starts, installed charging profiles
    """
    ALTER TABLE station ADD COLUMN connector_statuses BLOB NOT NULL DEFAULT '{}';
    ALTER TABLE station ADD COLUMN remote_starts BLOB NOT NULL DEFAULT '[]';
    ALTER TABLE station ADD COLUMN charging_profiles BLOB NOT NULL DEFAULT '[]';
    """,
    # 4: transactions (1.6 integer id <-> 2.0.1 string id, seqNo) and the id counter
    """
    CREATE TABLE txn (
        station_id       TEXT NOT NULL,
        transaction_id   TEXT NOT NULL,
        legacy_id        INTEGER NOT NULL,
        connector_id     INTEGER NOT NULL,
        evse_id          INTEGER NOT NULL,
        next_seq_no      INTEGER NOT NULL,
        started_at       TEXT NOT NULL,
        start_key        TEXT NOT NULL,
        id_token         BLOB,
        charging_state   TEXT,
        meter_start      INTEGER,
        last_meter       BLOB,
        id_tag_info      BLOB,
        ended            INTEGER NOT NULL DEFAULT 0,
        ended_at         REAL,
        stop_key         TEXT,
        stop_id_tag_info BLOB,
        PRIMARY KEY (station_id, transaction_id),
        UNIQUE (station_id, legacy_id)
    );
    CREATE INDEX txn_open ON txn (station_id, legacy_id) WHERE ended = 0;
    CREATE INDEX txn_ended ON txn (ended_at) WHERE ended = 1;
    CREATE TABLE legacy_id_counter (
        station_id TEXT PRIMARY KEY,
        last       INTEGER NOT NULL
    );
    """,
    # 5: the durable outbox; AUTOINCREMENT so a position is never given out twice
    """
    CREATE TABLE outbox (
        position       INTEGER PRIMARY KEY AUTOINCREMENT,
        station_id     TEXT NOT NULL,
        action         TEXT NOT NULL,
        payload        BLOB NOT NULL,
        transaction_id TEXT,
        offline        INTEGER NOT NULL DEFAULT 0,
        created_at     REAL NOT NULL
    );
    CREATE INDEX outbox_station ON outbox (station_id, position);
    """,
    # 6: authorization cache (2.0.1 C10), keyed by the case-folded idToken
    """
    CREATE TABLE auth_cache (
        station_id      TEXT NOT NULL,
        id_token_folded TEXT NOT NULL,
        info            BLOB NOT NULL,
        updated_at      REAL NOT NULL,
        PRIMARY KEY (station_id, id_token_folded)
    );
    """,
    # 7: the reason of the next boot, a Reset(OnIdle) waiting for the last transaction
    """
    ALTER TABLE station ADD COLUMN boot_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE station ADD COLUMN reset_scheduled INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: requestIds of the firmware update and log upload in progress
    """
    ALTER TABLE station ADD COLUMN firmware_request_id INTEGER;
    ALTER TABLE station ADD COLUMN log_request_id INTEGER;
    """,
    # 9: open reservations, for ReservationStatusUpdate
    "ALTER TABLE station ADD COLUMN reservations BLOB NOT NULL DEFAULT '[]';",
    # 10: the 1.6 security extension, learnt from the charger's configuration keys
    "ALTER TABLE station ADD COLUMN security_extension INTEGER NOT NULL DEFAULT 0;",
    # 11: station leases (one upstream connection per station across replicas) with
    # fencing tokens; last_token is never lowered, the holder columns are NULL once
    # released
    """
    CREATE TABLE lease (
        station_id TEXT PRIMARY KEY,
        last_token INTEGER NOT NULL,
        owner      TEXT,
        token      INTEGER,
        expires_at REAL
    );
    """,
    # 12: charger passwords (security profiles 1 and 2) as KDF hashes, JSON arrays of
    # PHC strings; never a password
    """
    CREATE TABLE credentials (
        station_id      TEXT PRIMARY KEY,
        password_hashes TEXT NOT NULL,
        previous_hashes TEXT NOT NULL DEFAULT '[]',
        updated_at      REAL NOT NULL
    );
    """,
    # 13: migration routing (issue 9): each 1.6 station's last route and the legacy CSMS's
    # transactions still open (a JSON array of ints); the admin API's routing rules, one
    # row whose version grows by one per write (compare-and-set)
    """
    CREATE TABLE route_states (
        station_id          TEXT PRIMARY KEY,
        route               TEXT NOT NULL,
        legacy_transactions TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE routing (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        text    TEXT NOT NULL,
        version INTEGER NOT NULL
    );
    """,
)

_STATION_COLUMNS: Final = ", ".join(rows.STATION_COLUMNS)
_TRANSACTION_COLUMNS: Final = ", ".join(rows.TRANSACTION_COLUMNS)
_OUTBOX_COLUMNS: Final = ", ".join(rows.OUTBOX_COLUMNS)


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


_PUT_STATION: Final = _upsert("station", (*rows.STATION_COLUMNS, "updated_at"), ("station_id",))
_PUT_TRANSACTION: Final = _upsert("txn", rows.TRANSACTION_COLUMNS, ("station_id", "transaction_id"))
_APPEND: Final = (
    "INSERT INTO outbox (station_id, action, payload, transaction_id, offline, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_DELIVERED: Final = "DELETE FROM outbox WHERE station_id = ? AND position = ?"
_CLEAR_AUTHORIZATIONS: Final = "DELETE FROM auth_cache WHERE station_id = ?"
_PUT_AUTHORIZATION: Final = _upsert(
    "auth_cache",
    ("station_id", "id_token_folded", "info", "updated_at"),
    ("station_id", "id_token_folded"),
)
_CREDENTIAL_COLUMNS: Final = ("station_id", "password_hashes", "previous_hashes", "updated_at")
_PUT_CREDENTIAL: Final = _upsert("credentials", _CREDENTIAL_COLUMNS, ("station_id",))
_SELECT_CREDENTIALS: Final = f"SELECT {', '.join(_CREDENTIAL_COLUMNS)} FROM credentials"
_PUT_ROUTE_STATE: Final = _upsert(
    "route_states", ("station_id", "route", "legacy_transactions"), ("station_id",)
)
_PUT_ROUTING: Final = _upsert("routing", ("id", "text", "version"), ("id",))
_ACQUIRE: Final = """
    INSERT INTO lease (station_id, last_token, owner, token, expires_at) VALUES (?1, 1, ?2, 1, ?3)
    ON CONFLICT (station_id) DO UPDATE SET
        last_token = last_token + 1, owner = ?2, token = last_token + 1, expires_at = ?3
"""
_HOLDER_IS: Final = "station_id = ? AND owner = ? AND token = ?"
_ALLOCATE: Final = """
    INSERT INTO legacy_id_counter (station_id, last)
    VALUES (?1, max(
        coalesce((SELECT last FROM legacy_id_counter WHERE station_id = ?1), 0),
        coalesce((SELECT max(legacy_id) FROM txn WHERE station_id = ?1), 0)
    ) + 1)
    ON CONFLICT (station_id) DO UPDATE SET last = excluded.last
"""


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._worker = _Worker()
        self._db: sqlite3.Connection | None = None
        self._closed = False
        # Group commit: durable commits that arrive while one is being written wait and
        # go together in the next transaction, one fsync for all of them.
        self._waiting: list[tuple[_Apply, asyncio.Future[tuple[int, ...]], bool]] = []
        self._writer: asyncio.Task[None] | None = None
        self._checkpointer: _Checkpointer | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def guarded() -> T:
            if self._db is None:
                raise StateError(f"{self._path}: store is not open")
            try:
                return work(self._db)
            except (sqlite3.Error, orjson.JSONEncodeError, orjson.JSONDecodeError) as exc:
                raise StateError(f"{self._path}: {exc}") from exc

        if self._closed:
            raise StateError(f"{self._path}: store is closed")
        if self._db is None:
            raise StateError(f"{self._path}: store is not open")
        return await self._worker.run(guarded)

    async def open(self) -> None:
        def connect() -> None:
            db: sqlite3.Connection | None = None
            try:
                if self._path != ":memory:":
                    Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # an answered message survives power loss
                db.execute("PRAGMA busy_timeout=5000")
                # Checkpoints run in the background (_Checkpointer), not inside a commit.
                db.execute("PRAGMA wal_autocheckpoint=0")
                _migrate(db)
            except (sqlite3.Error, OSError, StateError) as exc:
                if db is not None:
                    db.close()
                raise StateError(f"{self._path}: {exc}") from exc
            self._db = db

        await self._worker.start()
        try:
            await self._worker.run(connect)
        except StateError:
            self._worker.stop()
            raise
        if self._path != ":memory:":
            self._checkpointer = _Checkpointer(self._path)
            self._checkpointer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.stop()

        def shut() -> None:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):  # leave a short WAL behind
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
                self._db = None

        if self._worker.started:
            await self._worker.run(shut, rebind=True)
            self._worker.stop()

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def get_station(self, station_id: str) -> StationRecord | None:
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_STATION_COLUMNS} FROM station WHERE station_id = ?", (station_id,)
            ).fetchone()
        )
        return None if row is None else rows.station_record(row)

    async def put_station(self, record: StationRecord) -> None:
        await self._run(
            lambda db: db.execute(_PUT_STATION, (*rows.station_row(record), time.time()))
        )

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        rows.check_owner(station_id, change)
        if change == Change():
            return ()

        # Rows are built first, on the event loop: a payload orjson cannot encode fails
        # the commit without ever taking the write lock.
        try:
            now, station = time.time(), change.station
            station_row = None if station is None else (*rows.station_row(station), now)
            transactions = [rows.transaction_row(record) for record in change.transactions]
            appends = [
                (station_id, message.action, orjson.dumps(message.payload),
                 message.transaction_id, int(message.offline), now)
                for message in change.append
            ]  # fmt: skip
            authorizations = [
                (station_id, id_token.casefold(), orjson.dumps(info), now)
                for id_token, info in change.authorizations
            ]
        except orjson.JSONEncodeError as exc:
            raise StateError(f"{self._path}: {exc}") from exc
        delivered = [(station_id, position) for position in change.delivered]

        def apply(db: sqlite3.Connection) -> tuple[int, ...]:
            if fence is not None:
                _check_fence(db, station_id, fence)
            if change.clear_authorizations:
                db.execute(_CLEAR_AUTHORIZATIONS, (station_id,))
            if station_row is not None:
                db.execute(_PUT_STATION, station_row)
            db.executemany(_PUT_TRANSACTION, transactions)
            positions = tuple(_inserted(db.execute(_APPEND, row)) for row in appends)
            db.executemany(_DELIVERED, delivered)
            db.executemany(_PUT_AUTHORIZATION, authorizations)
            return positions

        # Only deliveries and cache entries need no fsync: losing them to a power cut
        # means a message is delivered twice (at least once, same payload) or a cache
        # entry is missing, never a lost message. A group of such commits alone is
        # written with synchronous=NORMAL, which halves the fsyncs per delivered message.
        durable = bool(
            change.append or change.transactions or station is not None
            or change.clear_authorizations
        )  # fmt: skip
        return await self._commit_in_group(apply, durable=durable)

    async def _commit_in_group(self, apply: _Apply, *, durable: bool) -> tuple[int, ...]:
        """Apply in the next group transaction (see ``_write_groups``)."""
        if self._closed:
            raise StateError(f"{self._path}: store is closed")
        if self._db is None:
            raise StateError(f"{self._path}: store is not open")
        future: asyncio.Future[tuple[int, ...]] = self._worker.loop.create_future()
        self._waiting.append((apply, future, durable))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await future

    async def _write_groups(self) -> None:
        """Write the waiting commits, a group per transaction, until none wait.

        Each commit is its own SAVEPOINT, so one that fails (a stale lease, a constraint)
        is undone alone and reported to its caller alone; the group's COMMIT is the one
        fsync the whole group waits for. Per station the order of commits is kept.
        """
        while self._waiting:
            group, self._waiting = self._waiting, []
            applies = [apply for apply, _, _ in group]
            durable = any(durable for _, _, durable in group)
            try:
                outcomes = await self._run(
                    functools.partial(
                        _apply_group, applies=applies, path=self._path, durable=durable
                    )
                )
            except StateError as exc:
                outcomes = [StateError(str(exc)) for _ in group]
            except Exception as exc:  # never leave a caller waiting for an answer
                log.exception("group commit failed unexpectedly")
                outcomes = [StateError(f"{self._path}: {exc!r}") for _ in group]
            for (_, future, _), outcome in zip(group, outcomes, strict=True):
                if future.done():  # the caller gave up waiting; its change stands or not
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def allocate_legacy_id(self, station_id: str) -> int:
        def allocate(db: sqlite3.Connection) -> int:
            db.execute(_ALLOCATE, (station_id,))
            (last,) = db.execute(
                "SELECT last FROM legacy_id_counter WHERE station_id = ?", (station_id,)
            ).fetchone()
            return int(last)

        return await self._run(lambda db: _atomically(db, allocate))

    async def open_transactions(self, station_id: str) -> list[TransactionRecord]:
        found = await self._run(
            lambda db: db.execute(
                f"SELECT {_TRANSACTION_COLUMNS} FROM txn WHERE station_id = ? AND ended = 0 "
                "ORDER BY legacy_id",
                (station_id,),
            ).fetchall()
        )
        return [rows.transaction_record(row) for row in found]

    async def find_transaction(
        self, station_id: str, *, legacy_id: int | None = None, transaction_id: str | None = None
    ) -> TransactionRecord | None:
        if (legacy_id is None) == (transaction_id is None):
            raise ValueError("give exactly one of legacy_id and transaction_id")
        if legacy_id is not None and not -(2**63) <= legacy_id < 2**63:
            return None  # beyond an SQLite INTEGER: never allocated, so not known
        column, value = (
            ("legacy_id", legacy_id)
            if transaction_id is None
            else ("transaction_id", transaction_id)
        )
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_TRANSACTION_COLUMNS} FROM txn WHERE station_id = ? AND {column} = ?",
                (station_id, value),
            ).fetchone()
        )
        return None if row is None else rows.transaction_record(row)

    async def pending_outbox(self, station_id: str) -> list[OutboxMessage]:
        found = await self._run(
            lambda db: db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE station_id = ? ORDER BY position",
                (station_id,),
            ).fetchall()
        )
        return [rows.outbox_message(row) for row in found]

    async def get_authorization(self, station_id: str, id_token: str) -> Payload | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT info FROM auth_cache WHERE station_id = ? AND id_token_folded = ?",
                (station_id, id_token.casefold()),
            ).fetchone()
        )
        return None if row is None else rows.load_payload(row[0])

    async def prune(self, ended_before: float) -> int:
        return await self._run(
            lambda db: (
                db.execute(
                    "DELETE FROM txn WHERE ended = 1 AND ended_at < ?", (ended_before,)
                ).rowcount
            )
        )

    # --- leases -----------------------------------------------------------------------

    async def acquire_lease(self, station_id: str, owner: str, ttl: float) -> int:
        rows.check_ttl(ttl)

        def acquire(db: sqlite3.Connection) -> int:
            db.execute(_ACQUIRE, (station_id, owner, time.time() + ttl))
            (token,) = db.execute(
                "SELECT token FROM lease WHERE station_id = ?", (station_id,)
            ).fetchone()
            return int(token)

        return await self._run(lambda db: _atomically(db, acquire))

    async def renew_lease(self, station_id: str, owner: str, token: int, ttl: float) -> bool:
        rows.check_ttl(ttl)

        def renew(db: sqlite3.Connection) -> int:
            return db.execute(
                f"UPDATE lease SET expires_at = ? WHERE {_HOLDER_IS}",
                (time.time() + ttl, station_id, owner, token),
            ).rowcount

        # Renewals come on a cadence per station: a power cut losing the last one only
        # shortens the lease, so they skip the fsync (tokens from acquire never do).
        return await self._run(lambda db: _without_fsync(db, renew)) == 1

    async def release_lease(self, station_id: str, owner: str, token: int) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE lease SET owner = NULL, token = NULL, expires_at = NULL "
                f"WHERE {_HOLDER_IS}",
                (station_id, owner, token),
            )
        )

    async def lease_holder(self, station_id: str) -> tuple[str, int] | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT owner, token FROM lease "
                "WHERE station_id = ? AND owner IS NOT NULL AND expires_at > ?",
                (station_id, time.time()),
            ).fetchone()
        )
        return None if row is None else (str(row[0]), int(row[1]))

    # --- charger credentials ------------------------------------------------------------

    async def get_credential(self, station_id: str) -> CredentialRecord | None:
        row = await self._run(
            lambda db: db.execute(
                f"{_SELECT_CREDENTIALS} WHERE station_id = ?", (station_id,)
            ).fetchone()
        )
        return None if row is None else _credential_record(row)

    async def put_credential(self, record: CredentialRecord) -> None:
        # Durable like put_station: one autocommit statement under synchronous=FULL.
        try:
            row = _credential_row(record)
        except orjson.JSONEncodeError as exc:
            raise StateError(f"{self._path}: {exc}") from exc
        await self._run(lambda db: db.execute(_PUT_CREDENTIAL, row))

    async def delete_credential(self, station_id: str) -> bool:
        deleted = await self._run(
            lambda db: (
                db.execute("DELETE FROM credentials WHERE station_id = ?", (station_id,)).rowcount
            )
        )
        return bool(deleted == 1)

    async def list_credentials(self) -> list[CredentialRecord]:
        found = await self._run(
            lambda db: db.execute(f"{_SELECT_CREDENTIALS} ORDER BY station_id").fetchall()
        )
        return [_credential_record(row) for row in found]

    # --- migration routing ----------------------------------------------------------------

    async def get_route_state(self, station_id: str) -> RouteState | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT station_id, route, legacy_transactions FROM route_states "
                "WHERE station_id = ?",
                (station_id,),
            ).fetchone()
        )
        return None if row is None else _route_state_record(row)

    async def put_route_state(self, state: RouteState) -> None:
        # Durable like put_station: one autocommit statement under synchronous=FULL.
        try:
            legacy = orjson.dumps([int(t) for t in state.legacy_transactions]).decode()
        except (orjson.JSONEncodeError, TypeError, ValueError) as exc:
            raise StateError(f"{self._path}: {exc}") from exc
        row = (state.station_id, str(state.route), legacy)
        await self._run(lambda db: db.execute(_PUT_ROUTE_STATE, row))

    async def get_routing_document(self) -> tuple[str, int] | None:
        row = await self._run(
            lambda db: db.execute("SELECT text, version FROM routing WHERE id = 1").fetchone()
        )
        return None if row is None else (str(row[0]), int(row[1]))

    async def put_routing_document(self, text: str, expected_version: int) -> int | None:
        def swap(db: sqlite3.Connection) -> int | None:
            row = db.execute("SELECT version FROM routing WHERE id = 1").fetchone()
            if (0 if row is None else int(row[0])) != expected_version:
                return None
            db.execute(_PUT_ROUTING, (1, text, expected_version + 1))
            return expected_version + 1

        # The read and the write are one transaction: another writer between them
        # (a second replica on the same file) cannot be overwritten unseen.
        return await self._run(lambda db: _atomically(db, swap))


def _route_state_record(row: rows.Row) -> RouteState:
    station_id, route, legacy_transactions = row
    try:
        loaded = orjson.loads(legacy_transactions)
    except orjson.JSONDecodeError:
        loaded = None
    if not isinstance(loaded, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in loaded
    ):
        raise StateError(f"{station_id}: stored legacy transactions are not a JSON array of ints")
    return RouteState(str(station_id), str(route), tuple(loaded))


def _credential_row(record: CredentialRecord) -> rows.Row:
    return (
        record.station_id,
        orjson.dumps(list(record.password_hashes)).decode(),
        orjson.dumps(list(record.previous_hashes)).decode(),
        float(record.updated_at),
    )


def _hashes(text: str, station_id: str) -> tuple[str, ...]:
    # The message names the station only: the column holds hashes (DESIGN.md).
    try:
        loaded = orjson.loads(text)
    except orjson.JSONDecodeError:
        loaded = None
    if not isinstance(loaded, list) or not all(isinstance(item, str) for item in loaded):
        raise StateError(f"{station_id}: stored password hashes are not a JSON array of strings")
    return tuple(loaded)


def _credential_record(row: rows.Row) -> CredentialRecord:
    station_id, password_hashes, previous_hashes, updated_at = row
    return CredentialRecord(
        station_id,
        _hashes(password_hashes, station_id),
        _hashes(previous_hashes, station_id),
        float(updated_at),
    )


def _check_fence(db: sqlite3.Connection, station_id: str, fence: int) -> None:
    """Inside the commit's transaction: refuse it when a newer token was issued."""
    row = db.execute("SELECT last_token FROM lease WHERE station_id = ?", (station_id,)).fetchone()
    last = 0 if row is None else int(row[0])
    if fence != last or row is None:
        raise StaleLease(f"{station_id}: lease token {fence} is stale (newest {last})")


def _inserted(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise StateError("no position was assigned")
    return cursor.lastrowid


_Apply = Callable[[sqlite3.Connection], tuple[int, ...]]


def _apply_group(
    db: sqlite3.Connection, *, applies: list[_Apply], path: str, durable: bool
) -> list[tuple[int, ...] | StateError]:
    """Apply each commit in a savepoint of one transaction; what each gave or raised.
    Without ``durable`` the transaction's commit skips the fsync (:func:`_without_fsync`)."""
    outcomes: list[tuple[int, ...] | StateError] = []

    def group(db: sqlite3.Connection) -> None:
        for apply in applies:
            db.execute("SAVEPOINT one_commit")
            try:
                outcomes.append(apply(db))
            except StateError as exc:  # StaleLease: refused, nothing of it applied
                db.execute("ROLLBACK TO one_commit")
                outcomes.append(exc)
            except sqlite3.Error as exc:
                db.execute("ROLLBACK TO one_commit")
                outcomes.append(StateError(f"{path}: {exc}"))
            db.execute("RELEASE one_commit")

    if durable:
        _atomically(db, group)
    else:
        _without_fsync(db, lambda db: _atomically(db, group))
    return outcomes


def _atomically(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` in one write transaction: all of it is committed, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


class _Worker:
    """The one thread that uses the store's connection, fed by a queue.

    Not a ThreadPoolExecutor: its submit() builds a concurrent Future with a Condition
    and takes two locks, and run_in_executor() chains a second future to it, per call;
    here a job is a tuple on a SimpleQueue and its result comes back through
    call_soon_threadsafe. The loop is kept from start(): on CPython 3.11 every
    get_running_loop() is a getpid() system call (gateway.lean).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start() first"
        return self._loop

    @property
    def started(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[], T], *, rebind: bool = False) -> T:
        """``work()`` on the thread, after every job submitted before it; ``rebind``
        answers on the running loop even if the store was opened on another one."""
        if rebind:
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = self.loop.create_future()
        self._jobs.put((work, future))
        return await future

    def stop(self) -> None:
        """End the thread once the jobs already queued are done."""
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            work, future = job
            try:
                result = work()
            except BaseException as exc:  # handed to the waiting caller
                self._hand_back(_fail, future, exc)
            else:
                self._hand_back(_resolve, future, result)

    def _hand_back(
        self,
        settle: Callable[[asyncio.Future[Any], Any], None],
        future: asyncio.Future[Any],
        outcome: object,
    ) -> None:
        try:
            self.loop.call_soon_threadsafe(settle, future, outcome)
        except RuntimeError:  # the loop is closed: nobody waits any more
            log.warning("sqlite: a result arrived after its event loop closed")


def _resolve(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():  # the caller may have been cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _Checkpointer:
    """Copies the WAL back into the database file every CHECKPOINT_INTERVAL seconds,
    from its own connection and thread.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, so
    that commit, and every charger answer waiting on it, also waits for the copy and an
    fsync of the database file. A PASSIVE checkpoint from another connection takes no
    lock a writer needs, so commits carry on meanwhile. Measured (docs/performance.md):
    saturation 1.16x in three alternating pairs of bench runs; the p99 at half load moves
    between +2.5 and +46 ms from run to run either way on this disk.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._stopping = threading.Event()
        self.checkpointed = threading.Event()  # set after each round (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.exception("%s: cannot open the checkpoint connection", self._path)
            return
        try:
            db.execute("PRAGMA busy_timeout=5000")
            while not self._stopping.wait(CHECKPOINT_INTERVAL):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    log.warning("%s: background checkpoint failed: %s", self._path, exc)
                else:
                    self.checkpointed.set()
        finally:
            db.close()


def _without_fsync(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` with synchronous=NORMAL: under WAL its commit is atomic and survives
    a crash of the process, only a power cut may lose it. For writes that may be lost."""
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        return work(db)
    finally:
        db.execute("PRAGMA synchronous=FULL")


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > len(_MIGRATIONS):
        raise StateError(
            f"database schema {version} is newer than this gateway understands "
            f"({len(_MIGRATIONS)}): upgrade the gateway"
        )
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        try:
            db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
