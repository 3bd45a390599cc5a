"""Charger passwords (security profiles 1 and 2: HTTP Basic auth), stored as scrypt hashes.

Layer: bottom; imports nothing from ``gateway``. No I/O, no logging: nothing here may
ever write a password, a hash or a MAC anywhere (DESIGN.md: secrets are never logged),
and no error message repeats its input, which may be a password pasted by mistake.

A stored hash is a PHC-style string that carries its own parameters and salt::

    $scrypt$ln=14,r=8,p=1$<salt, base64 without padding>$<key, base64 without padding>

so the defaults can be raised later without invalidating stored hashes: old hashes keep
verifying with the parameters they were made with, :func:`needs_rehash` tells which
ones to replace on the charger's next successful login.

scrypt is memory-hard (RFC 7914), so a stolen hash table costs an attacker memory per
guess, not just cycles; ``hashlib.scrypt`` is OpenSSL's, which releases the GIL while it
runs, so verifications in worker threads do not stall the event loop.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

SALT_BYTES: Final = 16
KEY_BYTES: Final = 32

# Bounds on what a stored hash may ask for. Parsing enforces them before any KDF runs,
# so a hostile or mistyped hash in the configuration cannot make one verification
# allocate gigabytes or spin for minutes. 128 MiB is exactly OWASP's scrypt
# recommendation (n=2**17, r=8), the most anyone should want here.
MAX_LN: Final = 20
MAX_MEMORY: Final = 128 * 1024 * 1024  # bytes of scrypt's V array: 128 * r * n
MAX_WORK: Final = 2**20  # n * r * p, i.e. 8 times the default's CPU cost
_SALT_LIMITS: Final = (8, 64)  # bytes accepted when parsing (RFC 7914 puts no bound)
_KEY_LIMITS: Final = (16, 64)

_FORMAT: Final = "$scrypt$ln=<int>,r=<int>,p=<int>$<salt b64>$<key b64>"
_HASH_RE: Final = re.compile(
    r"\$scrypt\$ln=([0-9]{1,2}),r=([0-9]{1,5}),p=([0-9]{1,5})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)


class PasswordHashError(ValueError):
    """A stored password hash is malformed or asks for out-of-bounds parameters.

    A configuration problem, not a wrong password: the message says what is wrong with
    the hash and never contains it (it may be a password pasted in its place).
    """


def _bounds_problem(ln: int, r: int, p: int) -> str | None:
    """What is wrong with these scrypt parameters, or None when they are acceptable."""
    if not 1 <= ln <= MAX_LN:
        return f"cost parameter ln must be between 1 and {MAX_LN}"
    if r < 1 or p < 1:
        return "block size r and parallelism p must be at least 1"
    if 128 * r << ln > MAX_MEMORY:
        return f"parameters need more than {MAX_MEMORY // 2**20} MiB (128 * r * 2**ln)"
    if r * p << ln > MAX_WORK:
        return f"parameters cost more than 2**{MAX_WORK.bit_length() - 1} (r * p * 2**ln)"
    return None


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters: n = 2**ln (CPU and memory), r (block size), p (lanes)."""

    ln: int
    r: int
    p: int

    def __post_init__(self) -> None:
        problem = _bounds_problem(self.ln, self.r, self.p)
        if problem is not None:  # what cannot be verified must not be hashed either
            raise ValueError(problem)

    @property
    def n(self) -> int:
        return 1 << self.ln

    @property
    def maxmem(self) -> int:
        """OpenSSL's memory need for these parameters (its V and B arrays), plus slack:
        its default cap of 32 MiB would refuse anything above n=2**14, r=8."""
        return 128 * self.r * (self.n + self.p + 2) + 64 * 1024


# 16 MiB and a few tens of ms per verification. Not OWASP's n=2**17 (128 MiB, ~0.4 s):
# after a gateway restart or a network outage, 10k chargers reconnect within a minute
# and each verifies once; at 2**17 that is over an hour of CPU and 128 MiB per
# concurrent verification. The parameters travel in every hash, so raising these later
# only needs needs_rehash() and the charger's next login.
DEFAULT: Final = ScryptParams(ln=14, r=8, p=1)


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """A parsed stored hash. Salt and key stay out of repr: hash material in a log
    is an offline-guessing target."""

    params: ScryptParams
    salt: bytes = field(repr=False)
    key: bytes = field(repr=False)

    def encode(self) -> str:
        return (
            f"$scrypt$ln={self.params.ln},r={self.params.r},p={self.params.p}"
            f"${_b64encode(self.salt)}${_b64encode(self.key)}"
        )


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    if len(text) % 4 == 1:  # no byte string encodes to this length
        raise ValueError
    return binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)


def _as_bytes(password: bytes | str) -> bytes:
    """A str password is UTF-8 encoded; bytes pass unchanged, because a Basic auth
    header decodes to bytes and a charger's password need not be valid UTF-8."""
    return password.encode("utf-8") if isinstance(password, str) else password


def _kdf(password: bytes, salt: bytes, params: ScryptParams, length: int) -> bytes:
    """The one place scrypt runs; a module-level name so tests can count the calls."""
    return hashlib.scrypt(
        password,
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=params.maxmem,
        dklen=length,
    )


def hash_password(password: bytes | str, *, params: ScryptParams = DEFAULT) -> str:
    """A new stored hash of ``password`` with a fresh random salt, in the PHC-style
    format described in the module docstring."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _kdf(_as_bytes(password), salt, params, KEY_BYTES)
    return ScryptHash(params, salt, key).encode()


def parse_hash(encoded: str) -> ScryptHash:
    """``encoded`` parsed and checked against the bounds, before any KDF runs.

    Raises :class:`PasswordHashError`, whose message never contains ``encoded``.
    """
    match = _HASH_RE.fullmatch(encoded)
    if match is None:
        raise PasswordHashError(f"not an scrypt password hash of the form {_FORMAT}")
    ln, r, p = (int(group) for group in match.group(1, 2, 3))
    problem = _bounds_problem(ln, r, p)
    if problem is not None:
        raise PasswordHashError(f"scrypt password hash refused: {problem}")
    try:
        salt = _b64decode(match.group(4))
        key = _b64decode(match.group(5))
    except ValueError:  # binascii.Error is one; never chain it, never quote the text
        raise PasswordHashError("scrypt password hash has invalid base64") from None
    if not _SALT_LIMITS[0] <= len(salt) <= _SALT_LIMITS[1]:
        raise PasswordHashError(
            f"scrypt password hash salt must be {_SALT_LIMITS[0]} to {_SALT_LIMITS[1]} bytes"
        )
    if not _KEY_LIMITS[0] <= len(key) <= _KEY_LIMITS[1]:
        raise PasswordHashError(
            f"scrypt password hash key must be {_KEY_LIMITS[0]} to {_KEY_LIMITS[1]} bytes"
        )
    return ScryptHash(ScryptParams(ln, r, p), salt, key)


def verify_password(password: bytes | str, encoded: str) -> bool:
    """Whether ``password`` matches the stored hash ``encoded``, compared in constant
    time. A malformed stored hash raises :class:`PasswordHashError` instead of
    answering False: it is a configuration fault to report, not a failed login."""
    stored = parse_hash(encoded)
    candidate = _kdf(_as_bytes(password), stored.salt, stored.params, len(stored.key))
    return hmac.compare_digest(candidate, stored.key)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT) -> bool:
    """Whether ``encoded`` was made with other parameters (or another salt or key size)
    than :func:`hash_password` uses now: replace it after the next successful verify."""
    stored = parse_hash(encoded)
    return stored.params != params or len(stored.salt) != SALT_BYTES or len(stored.key) != KEY_BYTES


class VerifiedCache:
    """Remembers successful verifications, so a charger that reconnects often costs one
    HMAC instead of one scrypt, and bounds how many scrypt runs happen at once.

    Per station it keeps HMAC-SHA256(process key, station id, stored hash, password)
    from the last successful KDF verification: never the password. The stored hash is
    part of the MAC input, so a changed hash (a new password, a rehash) misses without
    any invalidation; the key is random per process, so the entries are useless
    outside it. Failed verifications are never cached and never evict a good entry
    (which would let anyone force the legitimate charger back onto the KDF).

    Bounded LRU: with ``max_entries`` around the fleet size, every charger's
    reconnect is a hit; beyond it, the least recently seen ones fall back to the KDF.
    The semaphore keeps a burst of handshakes from allocating unbounded 16 MiB blocks
    and from queueing ahead of everything else in the default thread pool.
    """

    def __init__(self, max_entries: int = 100_000, max_concurrent_kdf: int = 4) -> None:
        if max_entries < 1 or max_concurrent_kdf < 1:
            raise ValueError("max_entries and max_concurrent_kdf must be at least 1")
        self._key = secrets.token_bytes(32)
        self._max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._kdf_slots = asyncio.Semaphore(max_concurrent_kdf)

    def __len__(self) -> int:
        return len(self._entries)

    def _mac(self, station_id: str, password: bytes | str, encoded: str) -> bytes:
        message = bytearray()
        # Length prefixes keep the fields apart: ("a", "b$c") and ("a$b", "c") differ.
        for part in (station_id.encode("utf-8"), encoded.encode("utf-8")):
            message += len(part).to_bytes(4, "big") + part
        message += _as_bytes(password)
        return hmac.digest(self._key, bytes(message), "sha256")

    def check_cached(self, station_id: str, password: bytes | str, encoded: str) -> bool:
        """True when this exact password already verified against this exact stored
        hash for this station; False means "unknown", not "wrong"."""
        remembered = self._entries.get(station_id)
        if remembered is None:
            return False
        if not hmac.compare_digest(remembered, self._mac(station_id, password, encoded)):
            return False
        self._entries.move_to_end(station_id)
        return True

    def _remember(self, station_id: str, password: bytes | str, encoded: str) -> None:
        self._entries[station_id] = self._mac(station_id, password, encoded)
        self._entries.move_to_end(station_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, station_id: str) -> None:
        """Drop the station's entry (its password was revoked, say)."""
        self._entries.pop(station_id, None)

    async def verify(self, station_id: str, password: bytes | str, encoded: str) -> bool:
        """:func:`verify_password` through the cache; the KDF runs in a worker thread.

        Raises :class:`PasswordHashError` for a malformed stored hash, before any KDF.
        """
        if self.check_cached(station_id, password, encoded):
            return True
        parse_hash(encoded)  # fail fast, without taking a KDF slot
        async with self._kdf_slots:
            ok = await asyncio.to_thread(verify_password, password, encoded)
        if ok:
            self._remember(station_id, password, encoded)
        return ok
