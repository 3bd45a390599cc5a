"""Charger password hashes: scrypt round trips, refusals that never echo their input,
bounded parameters, and the verified cache that spares reconnecting chargers the KDF."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from gateway.security import passwords
from gateway.security.passwords import (
    DEFAULT,
    PasswordHashError,
    ScryptParams,
    VerifiedCache,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)

# Cheap parameters for the tests that are not about the defaults (about 1 ms).
FAST = ScryptParams(ln=10, r=8, p=1)
PASSWORD = "correct horse battery"


def _replace_part(encoded: str, index: int, value: str) -> str:
    parts = encoded.split("$")
    parts[index] = value
    return "$".join(parts)


def test_round_trip_with_the_default_parameters() -> None:
    encoded = hash_password(PASSWORD)
    assert encoded.startswith("$scrypt$ln=14,r=8,p=1$")
    assert "=" not in encoded.split("$", 3)[3]  # base64 without padding
    parsed = parse_hash(encoded)
    assert (parsed.params, len(parsed.salt), len(parsed.key)) == (DEFAULT, 16, 32)
    assert parsed.encode() == encoded
    assert verify_password(PASSWORD, encoded)
    assert PASSWORD not in repr(parsed) and parsed.encode() not in repr(parsed)


def test_a_wrong_password_fails() -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    assert not verify_password("correct horse battery ", encoded)
    assert not verify_password("", encoded)


def test_the_same_password_gets_a_new_salt_each_time() -> None:
    first, second = hash_password(PASSWORD, params=FAST), hash_password(PASSWORD, params=FAST)
    assert first != second
    assert parse_hash(first).salt != parse_hash(second).salt
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)


@pytest.mark.parametrize(
    ("index", "edit"),
    [
        (3, lambda part: ("B" if part[0] == "A" else "A") + part[1:]),  # salt
        (4, lambda part: ("B" if part[0] == "A" else "A") + part[1:]),  # key
        (2, lambda part: part.replace("ln=10", "ln=11")),  # parameters
        (2, lambda part: part.replace("r=8", "r=4")),
    ],
    ids=["salt", "key", "ln", "r"],
)
def test_a_tampered_hash_fails(index: int, edit: Callable[[str], str]) -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    tampered = _replace_part(encoded, index, edit(encoded.split("$")[index]))
    assert tampered != encoded
    assert not verify_password(PASSWORD, tampered)


def _malformed() -> list[str]:
    valid = hash_password(PASSWORD, params=FAST)
    return [
        "",
        "hunter2-is-my-password",  # a password pasted where the hash belongs
        valid + "\n",
        valid + "$extra",
        valid.rsplit("$", 1)[0],  # no key
        valid.replace("$scrypt$", "$argon2id$"),
        valid.replace("ln=10,r=8,p=1", "r=8,ln=10,p=1"),
        valid.replace("ln=10", "ln=+9"),
        valid.replace("ln=10", "ln=1_0"),
        _replace_part(valid, 3, "not*base64"),
        _replace_part(valid, 3, "QUJD="),  # padding is not part of the format
        _replace_part(valid, 3, "QUJDR"),  # a length no byte string encodes to
        _replace_part(valid, 3, "QUJD"),  # a 3-byte salt
        _replace_part(valid, 4, "QUJDREVGR0g"),  # an 8-byte key
        "$scrypt$ln=10,r=8,p=1$" + "A" * 200 + "$" + "A" * 43,  # a 150-byte salt
    ]


@pytest.mark.parametrize("encoded", _malformed())
def test_a_malformed_hash_is_refused_without_echoing_it(encoded: str) -> None:
    with pytest.raises(PasswordHashError) as refused:
        parse_hash(encoded)
    message = str(refused.value)
    assert message
    for piece in {encoded, *encoded.split("$")} - {"", "scrypt"}:
        if len(piece) > 3:  # short pieces ("p=1") may occur in the format description
            assert piece not in message
    assert refused.value.__cause__ is None
    assert isinstance(refused.value, ValueError)
    with pytest.raises(PasswordHashError):
        verify_password(PASSWORD, encoded)


@pytest.mark.parametrize(
    "params",
    [
        "ln=21,r=8,p=1",  # above MAX_LN
        "ln=25,r=1,p=1",
        "ln=0,r=8,p=1",
        "ln=14,r=1024,p=1",  # 2 GiB of memory
        "ln=18,r=8,p=1",  # 256 MiB
        "ln=14,r=8,p=99999",  # cheap in memory, hours of CPU
        "ln=14,r=0,p=1",
        "ln=14,r=8,p=0",
    ],
)
def test_oversize_parameters_are_refused_before_any_kdf(
    params: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded = _replace_part(hash_password(PASSWORD, params=FAST), 2, params)

    def no_kdf(*args: object) -> bytes:
        raise AssertionError("the KDF ran for a refused hash")

    monkeypatch.setattr(passwords, "_kdf", no_kdf)
    with pytest.raises(PasswordHashError):
        verify_password(PASSWORD, encoded)


def test_parameters_beyond_the_bounds_cannot_be_constructed_either() -> None:
    with pytest.raises(ValueError):
        ScryptParams(ln=21, r=8, p=1)
    with pytest.raises(ValueError):
        ScryptParams(ln=17, r=16, p=1)
    assert ScryptParams(ln=17, r=8, p=1).n == 2**17  # OWASP's recommendation fits


def test_needs_rehash_compares_with_the_current_parameters() -> None:
    old = hash_password(PASSWORD, params=FAST)
    assert needs_rehash(old)
    assert not needs_rehash(old, FAST)
    assert not needs_rehash(hash_password(PASSWORD))
    assert needs_rehash(hash_password(PASSWORD), ScryptParams(ln=15, r=8, p=1))
    short_salt = _replace_part(old, 3, "QUJDREVGR0g")  # 8 bytes: parseable, not current
    assert needs_rehash(short_salt, FAST)


def test_a_str_password_is_its_utf8_bytes() -> None:
    word = "pässwörd-€"
    from_str = hash_password(word, params=FAST)
    from_bytes = hash_password(word.encode("utf-8"), params=FAST)
    assert verify_password(word.encode("utf-8"), from_str)
    assert verify_password(word, from_bytes)
    assert not verify_password(word.encode("latin-1", errors="replace"), from_str)


def test_a_password_need_not_be_utf8() -> None:
    raw = bytes(range(256))
    encoded = hash_password(raw, params=FAST)
    assert verify_password(raw, encoded)
    assert not verify_password(raw[:-1], encoded)


@pytest.fixture
def kdf_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The passwords every KDF run was given, in order (counts the runs)."""
    calls: list[bytes] = []
    real = passwords._kdf

    def counting(password: bytes, salt: bytes, params: ScryptParams, length: int) -> bytes:
        calls.append(password)
        return real(password, salt, params, length)

    monkeypatch.setattr(passwords, "_kdf", counting)
    return calls


async def test_a_second_verify_of_the_same_password_skips_the_kdf(
    kdf_calls: list[bytes],
) -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    kdf_calls.clear()
    cache = VerifiedCache()
    assert not cache.check_cached("CP-1", PASSWORD, encoded)
    assert await cache.verify("CP-1", PASSWORD, encoded)
    assert len(kdf_calls) == 1
    assert await cache.verify("CP-1", PASSWORD, encoded)
    assert await cache.verify("CP-1", PASSWORD.encode(), encoded)  # the same password
    assert cache.check_cached("CP-1", PASSWORD, encoded)
    assert len(kdf_calls) == 1
    assert not any(PASSWORD.encode() in mac for mac in cache._entries.values())


async def test_a_changed_stored_hash_is_not_served_from_the_cache(
    kdf_calls: list[bytes],
) -> None:
    cache = VerifiedCache()
    before = hash_password(PASSWORD, params=FAST)
    assert await cache.verify("CP-1", PASSWORD, before)
    after = hash_password("a new password", params=FAST)  # the operator changed it
    kdf_calls.clear()
    assert not cache.check_cached("CP-1", PASSWORD, after)
    assert not await cache.verify("CP-1", PASSWORD, after)
    assert len(kdf_calls) == 1
    rehashed = hash_password(PASSWORD)  # same password, new hash: verified once more
    kdf_calls.clear()
    assert await cache.verify("CP-1", PASSWORD, rehashed)
    assert len(kdf_calls) == 1


async def test_a_wrong_password_is_never_cached(kdf_calls: list[bytes]) -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    cache = VerifiedCache()
    kdf_calls.clear()
    assert not await cache.verify("CP-1", "guess", encoded)
    assert not await cache.verify("CP-1", "guess", encoded)
    assert len(kdf_calls) == 2
    assert not cache.check_cached("CP-1", "guess", encoded)
    assert len(cache) == 0
    assert await cache.verify("CP-1", PASSWORD, encoded)
    assert not await cache.verify("CP-1", "guess", encoded)  # does not evict the good one
    assert cache.check_cached("CP-1", PASSWORD, encoded)


async def test_entries_are_per_station_and_bounded(kdf_calls: list[bytes]) -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    cache = VerifiedCache(max_entries=2)
    assert await cache.verify("CP-1", PASSWORD, encoded)
    assert not cache.check_cached("CP-2", PASSWORD, encoded)  # same hash, other station
    assert await cache.verify("CP-2", PASSWORD, encoded)
    assert cache.check_cached("CP-1", PASSWORD, encoded)  # CP-1 is now the most recent
    assert await cache.verify("CP-3", PASSWORD, encoded)
    assert len(cache) == 2
    assert not cache.check_cached("CP-2", PASSWORD, encoded)  # least recently used
    assert cache.check_cached("CP-1", PASSWORD, encoded)
    cache.forget("CP-1")
    assert not cache.check_cached("CP-1", PASSWORD, encoded)


async def test_a_malformed_hash_raises_before_taking_a_kdf_slot(
    kdf_calls: list[bytes],
) -> None:
    cache = VerifiedCache()
    with pytest.raises(PasswordHashError):
        await cache.verify("CP-1", PASSWORD, "hunter2")
    assert kdf_calls == []


async def test_concurrent_kdf_runs_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    lock = threading.Lock()
    running, peak = 0, 0
    real = passwords._kdf

    def tracking(password: bytes, salt: bytes, params: ScryptParams, length: int) -> bytes:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real(password, salt, params, length)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "_kdf", tracking)
    cache = VerifiedCache(max_concurrent_kdf=2)
    results = await asyncio.gather(*(cache.verify(f"CP-{n}", PASSWORD, encoded) for n in range(12)))
    assert all(results)
    assert 1 <= peak <= 2
