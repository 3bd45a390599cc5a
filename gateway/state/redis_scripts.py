"""The Lua scripts of the Redis store, each a single atomic step on the server, and the
encoding of what they store and take.

Layer: state (pure, no I/O). Rows go through :mod:`gateway.state.rows`, so the Redis
store hands back what the others do; a row is stored as one JSON array, its payload
columns as JSON text. A script touches only keys passed in KEYS, all of one
station (one hash tag, so one Redis Cluster slot). Redis does not roll a script back
when a command in it fails, so every script checks everything first and returns an
error reply before its first write; the writes after that cannot fail on keys of the
right types. The error replies start with the codes :mod:`gateway.state.redis` maps to
exceptions. Times come from the server's ``TIME``, so replicas with skewed clocks agree
on lease expiry. Needs Redis 6.2 or newer (``ZADD ... LT`` in the store).
"""

from __future__ import annotations

import math
from typing import Final

import orjson

from gateway.state import rows
from gateway.state.base import Change, TransactionRecord

Arg = bytes | str | int | float  # what redis-py sends as a script argument

#: Error reply codes (the first word of the reply).
STALE: Final = "OCPPGW-STALE"
TAKEN: Final = "OCPPGW-TAKEN"

#: Keys of a station, in the KEYS order of :data:`COMMIT`.
COMMIT_KEYS: Final = (
    "station",  # 1 string: the station row
    "txn",  # 2 hash: transaction id -> transaction row
    "txn-legacy",  # 3 hash: transaction id -> legacy id
    "legacy",  # 4 hash: legacy id -> transaction id (SQLite's UNIQUE (station, legacy))
    "open",  # 5 zset: open transaction ids scored by legacy id
    "ended",  # 6 zset: ended transaction ids scored by ended_at (for prune)
    "outbox",  # 7 zset: "[position,...row]" scored by position
    "outbox-seq",  # 8 counter: the last outbox position given out
    "auth",  # 9 hash: case-folded idToken -> idTokenInfo
    "lease",  # 10 hash: last (token counter), owner, token, until (ms)
    "legacy-seq",  # 11 counter: the last legacy id given out or committed
)

#: KEYS: :data:`COMMIT_KEYS`. ARGV: fence ("" none), station row ("" none), the number of
#: transactions then (id, legacy id, row, state, ended_at) each (state "o" open, "E" ended
#: with a time, "e" ended without one), the number of appended rows then each row (a JSON
#: array without its position), the number of delivered positions then each, "1" to clear
#: the authorizations or "0", the number of authorizations then (folded idToken, info)
#: each. Returns the positions given to the appended rows.
COMMIT: Final = """
local i = 1
local function take()
  local value = ARGV[i]
  i = i + 1
  return value
end

local fence = take()
if fence ~= '' then
  local last = redis.call('HGET', KEYS[10], 'last')
  if last ~= fence then
    return redis.error_reply(
      'OCPPGW-STALE lease token ' .. fence .. ' is stale (newest ' .. (last or 'none') .. ')')
  end
end
local station = take()
local txns = {}
for t = 1, tonumber(take()) do
  local id = take()
  local legacy = take()
  local row = take()
  local state = take()
  local ended_at = take()
  txns[t] = {id, legacy, row, state, ended_at}
end

-- Check every legacy id before the first write, as the change would apply in order.
local holder_of = {}
local legacy_of = {}
for _, txn in ipairs(txns) do
  local id, legacy = txn[1], txn[2]
  local old = legacy_of[id]
  if old == nil then old = redis.call('HGET', KEYS[3], id) end
  local holder = holder_of[legacy]
  if holder == nil then holder = redis.call('HGET', KEYS[4], legacy) end
  if holder and holder ~= id then
    return redis.error_reply(
      'OCPPGW-TAKEN legacy id ' .. legacy .. ' is already ' .. holder .. "'s")
  end
  if old and old ~= legacy then holder_of[old] = false end
  holder_of[legacy] = id
  legacy_of[id] = legacy
end

if station ~= '' then redis.call('SET', KEYS[1], station) end
local top = redis.call('GET', KEYS[11]) or '0'
for _, txn in ipairs(txns) do
  local id, legacy, row, state, ended_at = txn[1], txn[2], txn[3], txn[4], txn[5]
  local old = redis.call('HGET', KEYS[3], id)
  if old and old ~= legacy and redis.call('HGET', KEYS[4], old) == id then
    redis.call('HDEL', KEYS[4], old)
  end
  redis.call('HSET', KEYS[2], id, row)
  redis.call('HSET', KEYS[3], id, legacy)
  redis.call('HSET', KEYS[4], legacy, id)
  if state == 'o' then
    redis.call('ZADD', KEYS[5], legacy, id)
    redis.call('ZREM', KEYS[6], id)
  else
    redis.call('ZREM', KEYS[5], id)
    if state == 'E' then
      redis.call('ZADD', KEYS[6], ended_at, id)
    else
      redis.call('ZREM', KEYS[6], id)
    end
  end
  if tonumber(legacy) > tonumber(top) then top = legacy end
end
if #txns > 0 then redis.call('SET', KEYS[11], top) end

local positions = {}
for a = 1, tonumber(take()) do
  local row = take()
  local position = redis.call('INCR', KEYS[8])
  local text = string.format('%d', position)
  redis.call('ZADD', KEYS[7], text, '[' .. text .. ',' .. string.sub(row, 2))
  positions[a] = position
end
for _ = 1, tonumber(take()) do
  local position = take()
  redis.call('ZREMRANGEBYSCORE', KEYS[7], position, position)
end
if take() == '1' then redis.call('DEL', KEYS[9]) end
for _ = 1, tonumber(take()) do
  local id_token = take()
  local info = take()
  redis.call('HSET', KEYS[9], id_token, info)
end
return positions
"""

#: KEYS: open, txn. The open transactions' rows, lowest legacy id first.
OPEN_TRANSACTIONS: Final = """
local found = {}
for n, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  found[n] = redis.call('HGET', KEYS[2], id)
end
return found
"""

#: KEYS: legacy, txn. ARGV: legacy id. The row of the transaction holding it, or nil.
FIND_BY_LEGACY_ID: Final = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[2], id)
"""

#: KEYS: txn, txn-legacy, legacy, ended. ARGV: "(cut". Forgets the transactions ended
#: before the cut; returns how many.
PRUNE: Final = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
for _, id in ipairs(ids) do
  local legacy = redis.call('HGET', KEYS[2], id)
  if legacy and redis.call('HGET', KEYS[3], legacy) == id then
    redis.call('HDEL', KEYS[3], legacy)
  end
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
return #ids
"""

_NOW_MS: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

#: KEYS: lease. ARGV: owner, ttl (ms). A new token from the never-expiring counter.
ACQUIRE_LEASE: Final = (
    _NOW_MS
    + """
local token = redis.call('HINCRBY', KEYS[1], 'last', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token,
           'until', string.format('%d', now + tonumber(ARGV[2])))
return token
"""
)

_HELD: Final = """
local held = redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
  and redis.call('HGET', KEYS[1], 'token') == ARGV[2]
"""

#: KEYS: lease. ARGV: owner, token, ttl (ms). 1 if extended, 0 if not held.
RENEW_LEASE: Final = (
    _NOW_MS
    + _HELD
    + """
if not held then return 0 end
redis.call('HSET', KEYS[1], 'until', string.format('%d', now + tonumber(ARGV[3])))
return 1
"""
)

#: KEYS: lease. ARGV: owner, token. Drops the holder (not the counter) if still held.
RELEASE_LEASE: Final = (
    _HELD
    + """
if held then redis.call('HDEL', KEYS[1], 'owner', 'token', 'until') end
return 0
"""
)

#: KEYS: lease. The holder's {owner, token} while not lapsed, else nil.
LEASE_HOLDER: Final = (
    _NOW_MS
    + """
local lease = redis.call('HMGET', KEYS[1], 'owner', 'token', 'until')
if not lease[1] or tonumber(lease[3]) <= now then return false end
return {lease[1], lease[2]}
"""
)

#: KEYS: routing (hash: text, version). ARGV: expected version, text. Stores the text
#: with the version one higher and returns that version if the stored one (0: none) is
#: the expected one; nil otherwise, writing nothing (the admin API's compare-and-set).
PUT_ROUTING: Final = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return false end
version = version + 1
redis.call('HSET', KEYS[1], 'text', ARGV[2], 'version', string.format('%d', version))
return version
"""


def pack(row: rows.Row) -> bytes:
    """A row as one JSON array; BLOB columns (orjson text already) become JSON strings."""
    return orjson.dumps([value.decode() if isinstance(value, bytes) else value for value in row])


def unpack(blob: bytes) -> rows.Row:
    return tuple(orjson.loads(blob))


def transaction_state(record: TransactionRecord) -> str:
    """How :data:`COMMIT` indexes a transaction: "o" open, "E" ended and prunable, "e"
    ended for good (no time: never pruned, as under SQLite, where NULL or NaN is never
    before the cut)."""
    if not record.ended:
        return "o"
    ended_at = record.ended_at
    return "E" if ended_at is not None and not math.isnan(ended_at) else "e"


def commit_args(change: Change, fence: int | None) -> list[Arg]:
    """ARGV of :data:`COMMIT`; raises orjson's error for a value JSON cannot hold."""
    args: list[Arg] = [
        "" if fence is None else fence,
        b"" if change.station is None else pack(rows.station_row(change.station)),
        len(change.transactions),
    ]
    for record in change.transactions:
        state = transaction_state(record)
        ended_at = repr(record.ended_at) if state == "E" else ""
        row = pack(rows.transaction_row(record))
        args += [record.transaction_id, record.legacy_id, row, state, ended_at]
    args.append(len(change.append))
    for message in change.append:
        payload = orjson.dumps(message.payload).decode()
        fields = [message.action, payload, message.transaction_id, int(message.offline)]
        args.append(orjson.dumps(fields))
    args += [len(change.delivered), *change.delivered]
    args += ["1" if change.clear_authorizations else "0", len(change.authorizations)]
    for id_token, info in change.authorizations:
        args += [id_token.casefold(), orjson.dumps(info)]
    return args
