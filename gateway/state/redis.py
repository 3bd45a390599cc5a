"""Redis Store: state shared by several gateway replicas (``--state redis://host:6379/0``).

Layer: state. Same contract as the SQLite store, over ``redis.asyncio``:

- Records go through :mod:`gateway.state.rows` (orjson), so every store hands back the
  same values. A row is stored as one JSON array, its payload columns as JSON text.
- Keys are ``<prefix>{<station>}:<name>``: the station id is a Redis Cluster hash tag,
  so all of a station's keys share one slot and one Lua script can touch them all.
- Whatever must be atomic is one Lua script (:mod:`gateway.state.redis_scripts`): a
  :class:`Change` with its fence check and legacy-id uniqueness check, lease operations,
  pruning one station. A change is serialised and checked in Python first, so a value
  orjson cannot encode fails it before Redis is asked anything (nothing is lost, nothing
  half-written: DESIGN.md).
- Counters (outbox positions, legacy ids, lease tokens) are per station and never expire
  nor go down, so nothing is given out twice across replicas and restarts.
- Charger credentials (password hashes, never passwords) are one hash per station,
  ``<prefix>{<station>}:credential``, and the set ``<prefix>credentials`` of the stations
  that have one, for listing; both change in one MULTI/EXEC.
- Migration routing: each 1.6 station's route state is a hash
  ``<prefix>{<station>}:route`` (route, legacy_transactions as a JSON array); the admin
  API's rules are the hash ``<prefix>routing`` (text, version), replaced only by the
  compare-and-set script :data:`redis_scripts.PUT_ROUTING`.
- Ended transactions are indexed per station by end time, and stations with ended
  transactions in one global sorted set scored by their oldest end: ``prune`` visits only
  the stations that have something to forget, never scanning the keyspace.

Every redis-py exception becomes a :class:`StateError` whose text names the server with
the password masked (DESIGN.md: secrets are never logged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final, NamedTuple, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.exceptions import RedisError, ResponseError

from gateway.ocppj import Payload
from gateway.state import redis_scripts as scripts
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
    redacted_url,
)

T = TypeVar("T")

DEFAULT_PREFIX: Final = "ocppgw:"
MINIMUM_VERSION: Final = (6, 2)

#: TLS options redis-py's SSL connection takes from a rediss:// URL's query.
_TLS_OPTIONS: Final = frozenset(
    {"ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
     "ssl_check_hostname", "ssl_ciphers"}
)  # fmt: skip
#: Other query options passed through to redis-py (timeouts, pool size, db...). Not
#: retry_on_timeout: a commit retried after its answer timed out could apply twice.
_OPTIONS: Final = (
    (frozenset(URL_QUERY_ARGUMENT_PARSERS) | {"client_name"})
    - _TLS_OPTIONS
    - {"retry_on_timeout", "retry_on_error"}
)


def _escape(station_id: str) -> str:
    """A station id as a hash tag: braces would end the tag early, so they are escaped
    (and so is the escape character, so two ids never share keys)."""
    return station_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _split_prefix(url: str) -> tuple[str, str | None]:
    """The URL without our own ``prefix`` option (redis-py would trip over it), and that
    option's value if given: several gateways may share one Redis under two prefixes."""
    parts = urlsplit(url)
    options = parse_qs(parts.query, keep_blank_values=True)
    prefix = options.pop("prefix", [None])[-1]
    return urlunsplit(parts._replace(query=urlencode(options, doseq=True))), prefix


def _check_options(url: str) -> None:
    """Refuse query options redis-py would only trip over when connecting (TypeError)."""
    parts = urlsplit(url)
    allowed = _OPTIONS | (_TLS_OPTIONS if parts.scheme == "rediss" else frozenset())
    unknown = sorted(set(parse_qs(parts.query)) - allowed)
    if unknown:
        raise StateError(
            f"{redacted_url(url)}: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed | {'prefix'}))})"
        )


class _Keys(NamedTuple):
    """One station's keys, in the KEYS order of :data:`redis_scripts.COMMIT`."""

    station: str
    txn: str
    txn_legacy: str
    legacy: str
    open: str
    ended: str
    outbox: str
    outbox_seq: str
    auth: str
    lease: str
    legacy_seq: str


class RedisStore:
    """``RedisStore("redis://[:password@]host:port/db")``; ``rediss://`` for TLS, with
    redis-py's ``ssl_*`` options (``ssl_ca_certs``, ``ssl_cert_reqs``...) in the query;
    ``?prefix=gw1:`` puts the keys under another prefix than ``ocppgw:``.

    redis-py retries nothing here (no retry policy on the pool): a commit whose answer
    was lost must not be applied a second time behind the caller's back.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        connect_timeout: float = 5.0,
        timeout: float = 5.0,
        health_check_interval: int = 30,
        max_connections: int = 64,
    ) -> None:
        self._where = redacted_url(url)
        try:
            url, given = _split_prefix(url)
            self._password = urlsplit(url).password or ""
            _check_options(url)
            # Blocking: past max_connections a call waits for a free connection (up to
            # `timeout`) instead of failing at once as the plain pool does.
            self._pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout,
                socket_connect_timeout=connect_timeout,
                socket_timeout=timeout,
                health_check_interval=health_check_interval,
            )
        except ValueError as exc:
            raise StateError(f"{self._where}: {exc}") from exc
        self._prefix = prefix if prefix is not None else given or DEFAULT_PREFIX
        if "{" in self._prefix or "}" in self._prefix:
            raise StateError(f"a key prefix cannot hold braces (hash tags): {self._prefix!r}")
        self._redis = aioredis.Redis(connection_pool=self._pool)
        script = self._redis.register_script
        self._commit = script(scripts.COMMIT)
        self._open_transactions = script(scripts.OPEN_TRANSACTIONS)
        self._find_by_legacy_id = script(scripts.FIND_BY_LEGACY_ID)
        self._prune = script(scripts.PRUNE)
        self._acquire = script(scripts.ACQUIRE_LEASE)
        self._renew = script(scripts.RENEW_LEASE)
        self._release = script(scripts.RELEASE_LEASE)
        self._holder = script(scripts.LEASE_HOLDER)
        self._put_routing = script(scripts.PUT_ROUTING)
        self._closed = False

    # --- plumbing -----------------------------------------------------------------------

    def _hide(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    @contextmanager
    def _errors(self, station_id: str = "") -> Iterator[None]:
        """redis-py's exceptions as StateError (StaleLease for a fence the script refused)."""
        try:
            yield
        except ResponseError as exc:
            code, _, detail = str(exc).partition(" ")
            if code == scripts.STALE:
                raise StaleLease(f"{station_id}: {detail}") from exc
            if code == scripts.TAKEN:
                raise StateError(f"{station_id}: {detail}") from exc
            raise StateError(f"redis {self._where}: {self._hide(str(exc))}") from exc
        except (RedisError, OSError) as exc:
            raise StateError(f"redis {self._where}: {self._hide(str(exc))}") from exc

    async def _run(self, call: Callable[[], Any], *, station_id: str = "") -> Any:
        """Await one redis-py call (their types are loose: callers annotate the result)."""
        if self._closed:
            raise StateError(f"redis {self._where}: store is closed")
        with self._errors(station_id):
            return await call()

    def _keys(self, station_id: str) -> _Keys:
        tag = f"{self._prefix}{{{_escape(station_id)}}}:"
        return _Keys(*(tag + name for name in scripts.COMMIT_KEYS))

    @property
    def _prune_index(self) -> str:
        return f"{self._prefix}prune"  # station id -> oldest ended_at among its transactions

    def _credential_key(self, station_id: str) -> str:
        # Beside the station's other keys (same hash tag), not one of the commit's KEYS.
        return f"{self._prefix}{{{_escape(station_id)}}}:credential"

    @property
    def _credential_index(self) -> str:
        return f"{self._prefix}credentials"  # set of station ids with a credential

    def _route_key(self, station_id: str) -> str:
        return f"{self._prefix}{{{_escape(station_id)}}}:route"

    @property
    def _routing_key(self) -> str:
        return f"{self._prefix}routing"  # hash: text, version

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Check the server answers, the password is right and the server is new enough
        for the scripts (6.2: ``ZADD ... LT``) before serving anyone."""
        await self.ping()
        try:
            server: dict[str, Any] = await self._run(lambda: self._redis.info("server"))
        except StateError:
            return  # INFO may be refused by an ACL: then the scripts tell what is missing
        found = str(server.get("redis_version", ""))
        if _major_minor(found) < MINIMUM_VERSION:
            raise StateError(
                f"redis {self._where} is version {found}: the store needs "
                f"{'.'.join(map(str, MINIMUM_VERSION))} or newer"
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._errors():
            await self._pool.disconnect()

    async def ping(self) -> None:
        await self._run(self._redis.ping)

    # --- stations -----------------------------------------------------------------------

    async def get_station(self, station_id: str) -> StationRecord | None:
        blob = await self._run(lambda: self._redis.get(self._keys(station_id).station))
        return None if blob is None else rows.station_record(scripts.unpack(blob))

    async def put_station(self, record: StationRecord) -> None:
        blob = self._serialised(lambda: scripts.pack(rows.station_row(record)))
        await self._run(lambda: self._redis.set(self._keys(record.station_id).station, blob))

    # --- commit -------------------------------------------------------------------------

    def _serialised(self, dump: Callable[[], T]) -> T:
        try:
            return dump()
        except orjson.JSONEncodeError as exc:
            raise StateError(f"cannot store the value: {exc}") from exc

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        rows.check_owner(station_id, change)
        if change == Change():
            return ()
        args = self._serialised(lambda: scripts.commit_args(change, fence))
        keys = self._keys(station_id)
        oldest = min(
            (
                r.ended_at
                for r in change.transactions
                if r.ended_at is not None and scripts.transaction_state(r) == "E"
            ),
            default=None,
        )
        if oldest is not None:
            # Indexed before the script, so a crash after it cannot leave the transaction
            # out of the prune index; and again after it (below).
            await self._index_for_prune(station_id, oldest)
        positions = await self._run(
            lambda: self._commit(keys=list(keys), args=args), station_id=station_id
        )
        if oldest is not None:
            # A prune racing this commit may have dropped the station from the index
            # between the two; putting it back is harmless otherwise. The change is
            # applied: a failure here must not make the caller think otherwise (a
            # missed entry is caught up by the station's next pruned transaction).
            with suppress(StateError):
                await self._index_for_prune(station_id, oldest)
        return tuple(int(position) for position in positions)

    async def _index_for_prune(self, station_id: str, ended_at: float) -> None:
        """Record that ``station_id`` has a transaction ended at ``ended_at`` (the index
        keeps each station's oldest, so prune visits only stations with work to do)."""
        await self._run(
            lambda: self._redis.zadd(self._prune_index, {station_id: ended_at}, lt=True)
        )

    async def allocate_legacy_id(self, station_id: str) -> int:
        # The counter is raised past every committed legacy id by the commit script, so
        # an id held by a stored transaction is never handed out either.
        legacy_id = await self._run(lambda: self._redis.incr(self._keys(station_id).legacy_seq))
        return int(legacy_id)

    # --- reads --------------------------------------------------------------------------

    async def open_transactions(self, station_id: str) -> list[TransactionRecord]:
        keys = self._keys(station_id)
        found = await self._run(lambda: self._open_transactions(keys=[keys.open, keys.txn]))
        return [rows.transaction_record(scripts.unpack(blob)) for blob in found if blob is not None]

    async def find_transaction(
        self, station_id: str, *, legacy_id: int | None = None, transaction_id: str | None = None
    ) -> TransactionRecord | None:
        if (legacy_id is None) == (transaction_id is None):
            raise ValueError("give exactly one of legacy_id and transaction_id")
        keys = self._keys(station_id)
        if transaction_id is not None:
            blob: bytes | None = await self._run(lambda: self._redis.hget(keys.txn, transaction_id))
        else:
            blob = await self._run(
                lambda: self._find_by_legacy_id(keys=[keys.legacy, keys.txn], args=[str(legacy_id)])
            )
        return None if blob is None else rows.transaction_record(scripts.unpack(blob))

    async def pending_outbox(self, station_id: str) -> list[OutboxMessage]:
        found = await self._run(lambda: self._redis.zrange(self._keys(station_id).outbox, 0, -1))
        return [rows.outbox_message(scripts.unpack(blob)) for blob in found]

    async def get_authorization(self, station_id: str, id_token: str) -> Payload | None:
        keys = self._keys(station_id)
        blob = await self._run(lambda: self._redis.hget(keys.auth, id_token.casefold()))
        return None if blob is None else rows.load_payload(blob)

    async def prune(self, ended_before: float) -> int:
        cut = f"({float(ended_before)!r}"  # exclusive: ended strictly before
        due = await self._run(lambda: self._redis.zrangebyscore(self._prune_index, "-inf", cut))
        pruned = 0
        for member in due:
            pruned += await self._prune_station(member.decode(), cut)
        return pruned

    async def _prune_station(self, station_id: str, cut: str) -> int:
        keys = self._keys(station_id)
        index = [keys.txn, keys.txn_legacy, keys.legacy, keys.ended]
        pruned = int(await self._run(lambda: self._prune(keys=index, args=[cut])))
        # Drop the station from the index, then put it back scored by its oldest
        # remaining ended transaction: a commit racing this one either is seen here or
        # re-adds the station itself after its script (see commit).
        await self._run(lambda: self._redis.zrem(self._prune_index, station_id))
        oldest = await self._run(lambda: self._redis.zrange(keys.ended, 0, 0, withscores=True))
        if oldest:
            ((_, score),) = oldest
            await self._run(
                lambda: self._redis.zadd(self._prune_index, {station_id: score}, lt=True)
            )
        return pruned

    # --- leases -------------------------------------------------------------------------

    async def acquire_lease(self, station_id: str, owner: str, ttl: float) -> int:
        lease = self._lease(station_id, ttl)
        token = await self._run(lambda: self._acquire(keys=lease, args=[owner, _millis(ttl)]))
        return int(token)

    async def renew_lease(self, station_id: str, owner: str, token: int, ttl: float) -> bool:
        lease = self._lease(station_id, ttl)
        args: list[scripts.Arg] = [owner, token, _millis(ttl)]
        return bool(await self._run(lambda: self._renew(keys=lease, args=args)))

    async def release_lease(self, station_id: str, owner: str, token: int) -> None:
        lease = [self._keys(station_id).lease]
        await self._run(lambda: self._release(keys=lease, args=[owner, token]))

    async def lease_holder(self, station_id: str) -> tuple[str, int] | None:
        lease = [self._keys(station_id).lease]
        held: list[bytes] | None = await self._run(lambda: self._holder(keys=lease))
        if held is None:
            return None
        owner, token = held
        return owner.decode(), int(token)

    def _lease(self, station_id: str, ttl: float) -> list[str]:
        rows.check_ttl(ttl)
        return [self._keys(station_id).lease]

    # --- charger credentials ------------------------------------------------------------

    async def get_credential(self, station_id: str) -> CredentialRecord | None:
        key = self._credential_key(station_id)
        fields: dict[bytes, bytes] = await self._run(lambda: self._redis.hgetall(key))
        return _credential_record(station_id, fields)

    async def put_credential(self, record: CredentialRecord) -> None:
        fields = self._serialised(lambda: _credential_fields(record))
        key = self._credential_key(record.station_id)

        async def put() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)  # every field: the whole record is replaced
                pipe.sadd(self._credential_index, record.station_id)
                await pipe.execute()

        await self._run(put, station_id=record.station_id)

    async def delete_credential(self, station_id: str) -> bool:
        key = self._credential_key(station_id)

        async def delete() -> bool:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.srem(self._credential_index, station_id)
                deleted, _ = await pipe.execute()
            return bool(deleted)

        deleted: bool = await self._run(delete, station_id=station_id)
        return deleted

    async def list_credentials(self) -> list[CredentialRecord]:
        members: set[bytes] = await self._run(lambda: self._redis.smembers(self._credential_index))
        station_ids = sorted(member.decode() for member in members)

        async def read_all() -> list[dict[bytes, bytes]]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for station_id in station_ids:
                    pipe.hgetall(self._credential_key(station_id))
                found: list[dict[bytes, bytes]] = await pipe.execute()
            return found

        found: list[dict[bytes, bytes]] = await self._run(read_all) if station_ids else []
        # A record deleted between the two reads is simply gone.
        records = map(_credential_record, station_ids, found)
        return [record for record in records if record is not None]

    # --- migration routing ----------------------------------------------------------------

    async def get_route_state(self, station_id: str) -> RouteState | None:
        key = self._route_key(station_id)
        fields: dict[bytes, bytes] = await self._run(lambda: self._redis.hgetall(key))
        return _route_state(station_id, fields)

    async def put_route_state(self, state: RouteState) -> None:
        fields = self._serialised(lambda: _route_state_fields(state))
        key = self._route_key(state.station_id)
        # Every field: the whole state is replaced in one command.
        await self._run(lambda: self._redis.hset(key, mapping=fields), station_id=state.station_id)

    async def get_routing_document(self) -> tuple[str, int] | None:
        text, version = await self._run(
            lambda: self._redis.hmget(self._routing_key, ["text", "version"])
        )
        if text is None:
            return None
        try:
            return text.decode(), int(version)
        except (TypeError, ValueError, UnicodeDecodeError):
            raise StateError(
                f"redis {self._where}: the stored routing document is damaged"
            ) from None

    async def put_routing_document(self, text: str, expected_version: int) -> int | None:
        args: list[scripts.Arg] = [int(expected_version), text]
        version = await self._run(lambda: self._put_routing(keys=[self._routing_key], args=args))
        return None if version is None else int(version)


def _credential_fields(record: CredentialRecord) -> dict[str, bytes | str]:
    return {
        "password_hashes": orjson.dumps(list(record.password_hashes)),
        "previous_hashes": orjson.dumps(list(record.previous_hashes)),
        "updated_at": repr(float(record.updated_at)),
    }


def _hashes(fields: dict[bytes, bytes], name: bytes, station_id: str) -> tuple[str, ...]:
    # The message names the station only: the field holds hashes (DESIGN.md).
    try:
        loaded = orjson.loads(fields[name])
    except (KeyError, orjson.JSONDecodeError):
        loaded = None
    if not isinstance(loaded, list) or not all(isinstance(item, str) for item in loaded):
        raise StateError(f"{station_id}: stored {name.decode()} are not a JSON array of strings")
    return tuple(loaded)


def _credential_record(station_id: str, fields: dict[bytes, bytes]) -> CredentialRecord | None:
    """The record of HGETALL's answer; None for an empty answer (no such key)."""
    if not fields:
        return None
    try:
        updated_at = float(fields[b"updated_at"])
    except (KeyError, ValueError):
        raise StateError(f"{station_id}: stored credential has no valid updated_at") from None
    return CredentialRecord(
        station_id,
        _hashes(fields, b"password_hashes", station_id),
        _hashes(fields, b"previous_hashes", station_id),
        updated_at,
    )


def _route_state_fields(state: RouteState) -> dict[str, bytes | str]:
    return {
        "route": str(state.route),
        "legacy_transactions": orjson.dumps([int(t) for t in state.legacy_transactions]),
    }


def _route_state(station_id: str, fields: dict[bytes, bytes]) -> RouteState | None:
    """The state of HGETALL's answer; None for an empty answer (no such key)."""
    if not fields:
        return None
    route, loaded = fields.get(b"route"), None
    with suppress(KeyError, orjson.JSONDecodeError):
        loaded = orjson.loads(fields[b"legacy_transactions"])
    if (
        route is None
        or not isinstance(loaded, list)
        or not all(isinstance(item, int) and not isinstance(item, bool) for item in loaded)
    ):
        raise StateError(f"{station_id}: stored route state is damaged")
    return RouteState(station_id, route.decode(errors="replace"), tuple(loaded))


def _major_minor(version: str) -> tuple[int, ...]:
    """(major, minor) of a ``redis_version``; an unreadable one is not held against it."""
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return MINIMUM_VERSION


def _millis(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))
