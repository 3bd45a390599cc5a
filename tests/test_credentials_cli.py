"""``ocpp-gateway credentials`` and ``ocpp-gateway csr`` as real processes, on a real
SQLite file (and one run against a real Redis): what they store, what they print, and
that no password or hash ever reaches stderr (nor stdout, but where it is the output).
"""

from __future__ import annotations

import asyncio
import getpass
import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from gateway import cli
from gateway.security.passwords import hash_password, verify_password
from gateway.state import CredentialRecord
from gateway.state.redis import RedisStore
from gateway.state.sqlite import SqliteStore
from tests.redis_server import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]  # fixtures, re-exported for this module

GIVEN = "Given-Password-0123"  # 19 characters: fits a 1.6 AuthorizationKey (20 bytes)
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def gateway(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m gateway.cli ARGS`` with ``stdin`` piped in (so never a terminal) and
    none of the caller's OCPP_GATEWAY_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        timeout=60,
        check=False,
    )


def assert_no_secrets(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    """No hash on either stream, and none of ``secrets`` on stderr."""
    assert "$scrypt$" not in result.stdout
    assert "$scrypt$" not in result.stderr
    for secret in secrets:
        assert secret not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def store_flag(state: Path) -> list[str]:
    return ["--state", f"sqlite:///{state}"]


def stored(state: Path, station_id: str) -> CredentialRecord | None:
    async def read() -> CredentialRecord | None:
        store = SqliteStore(str(state))
        await store.open()
        try:
            return await store.get_credential(station_id)
        finally:
            await store.close()

    return asyncio.run(read())


def generated(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The password and its hex form as printed by add or rotate."""
    password = re.search(r"^password: (\S+)$", result.stdout, re.MULTILINE)
    hex_form = re.search(r"^AuthorizationKey \(hex\): (\S+)$", result.stdout, re.MULTILINE)
    assert password is not None and hex_form is not None, result.stdout
    return password.group(1), hex_form.group(1)


def add(state: Path, station_id: str) -> str:
    """``credentials add`` with a generated password; returns the password."""
    result = gateway("credentials", "add", station_id, *store_flag(state))
    assert result.returncode == 0, result.stderr
    return generated(result)[0]


# --- hash ---------------------------------------------------------------------------------


def test_hash_prints_one_hash_of_the_password_on_standard_input() -> None:
    """One line on stdout, the hash of the input minus its one trailing newline."""
    result = gateway("credentials", "hash", stdin="correct horse battery staple\n")

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert verify_password("correct horse battery staple", line)
    assert not verify_password("correct horse battery staple\n", line)
    assert line not in result.stderr
    assert "correct horse" not in result.stderr


def test_hash_strips_one_trailing_newline_only() -> None:
    """A password ending in a space or a CR-LF line keeps everything but the newline."""
    result = gateway("credentials", "hash", stdin="ends with a space \r\n")

    assert result.returncode == 0, result.stderr
    assert verify_password("ends with a space ", result.stdout.strip())


@pytest.mark.parametrize("stdin", ["", "\n", "two\nlines\n"], ids=["empty", "newline", "two"])
def test_hash_refuses_an_empty_or_multi_line_input(stdin: str) -> None:
    """Nothing, or more than one password, is a usage error with one line on stderr."""
    result = gateway("credentials", "hash", stdin=stdin)

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert_no_secrets(result, "lines")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hash_prompts_twice_without_echo_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal the password is asked with getpass, twice, and never read as text."""
    prompts: list[str] = []

    def typed(prompt: str = "") -> str:
        prompts.append(prompt)
        return "typed-at-a-terminal"

    monkeypatch.setattr(sys, "stdin", _Terminal("not this\n"))
    monkeypatch.setattr(getpass, "getpass", typed)

    assert cli.main(["credentials", "hash"]) == 0

    assert len(prompts) == 2
    out, err = capsys.readouterr()
    assert verify_password("typed-at-a-terminal", out.strip())
    assert "typed-at" not in err


def test_hash_refuses_two_different_passwords_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in one of the two prompts: exit 2, no hash, neither password shown."""
    answers = iter(["first-typed-password", "second-typed-password"])
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))

    assert cli.main(["credentials", "hash"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "differ" in err
    assert "typed-password" not in err


# --- add ----------------------------------------------------------------------------------


def test_add_generates_a_password_whose_hashes_are_stored(state: Path) -> None:
    """20 characters of A-Z a-z 0-9, printed once with its hex form; the stored hashes
    verify the password (and the hex text some chargers send); no rotation pending."""
    result = gateway("credentials", "add", "CP-1", *store_flag(state))

    assert result.returncode == 0, result.stderr
    password, hex_form = generated(result)
    assert re.fullmatch(r"[A-Za-z0-9]{20}", password)
    assert bytes.fromhex(hex_form) == password.encode()
    assert result.stdout.count(password) == 1
    assert_no_secrets(result, password, hex_form)
    record = stored(state, "CP-1")
    assert record is not None
    assert len(record.password_hashes) == 2
    assert verify_password(password, record.password_hashes[0])
    assert verify_password(hex_form, record.password_hashes[1])
    assert record.previous_hashes == ()
    assert record.updated_at > 0


def test_two_generated_passwords_differ(state: Path) -> None:
    """Each station gets its own random password."""
    assert add(state, "CP-1") != add(state, "CP-2")


def test_add_twice_is_refused_and_keeps_the_first_record(state: Path) -> None:
    """A station with a record: exit 2, pointing at rotate; nothing changes."""
    password = add(state, "CP-1")
    before = stored(state, "CP-1")

    result = gateway("credentials", "add", "CP-1", *store_flag(state))

    assert result.returncode == 2
    assert "rotate" in result.stderr
    assert "password:" not in result.stdout
    assert stored(state, "CP-1") == before
    assert before is not None and verify_password(password, before.password_hashes[0])


def test_add_takes_a_given_password_from_standard_input(state: Path) -> None:
    """--password-stdin: the password is stored as hashes and never printed."""
    result = gateway(
        "credentials", "add", "CP-1", "--password-stdin", *store_flag(state), stdin=GIVEN + "\n"
    )

    assert result.returncode == 0, result.stderr
    assert GIVEN not in result.stdout
    assert GIVEN.encode().hex() not in result.stdout
    assert_no_secrets(result, GIVEN)
    record = stored(state, "CP-1")
    assert record is not None
    assert verify_password(GIVEN, record.password_hashes[0])
    assert verify_password(GIVEN.encode().hex(), record.password_hashes[1])


def test_a_password_too_long_for_an_authorization_key_gets_one_hash(state: Path) -> None:
    """Over 20 bytes there is no 1.6 hex form to accept: the password's hash only."""
    password = "a-given-password-of-thirty-ch!"

    result = gateway(
        "credentials", "add", "CP-1", "--password-stdin", *store_flag(state), stdin=password
    )

    assert result.returncode == 0, result.stderr
    record = stored(state, "CP-1")
    assert record is not None and len(record.password_hashes) == 1
    assert verify_password(password, record.password_hashes[0])


@pytest.mark.parametrize(
    "password", ["Too-Short-Pw15c", "x" * 41], ids=["15-characters", "41-characters"]
)
def test_a_password_of_the_wrong_length_is_refused_without_echoing_it(
    state: Path, password: str
) -> None:
    """16 to 40 characters: otherwise exit 2, the rule stated, the password nowhere."""
    result = gateway(
        "credentials", "add", "CP-1", "--password-stdin", *store_flag(state), stdin=password
    )

    assert result.returncode == 2
    assert "16 to 40 characters" in result.stderr
    assert password not in result.stdout
    assert_no_secrets(result, password)
    assert stored(state, "CP-1") is None


@pytest.mark.parametrize("station_id", ["a/b", "has space", "x" * 49, "", "CP{1}"])
def test_a_charge_point_id_the_listener_refuses_is_refused(state: Path, station_id: str) -> None:
    """The charger listener's own rule: exit 2 before anything is stored or asked."""
    result = gateway("credentials", "add", station_id, *store_flag(state))

    assert result.returncode == 2
    assert "charge point id" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not state.exists()


@pytest.mark.parametrize("action", ["rotate", "revoke"])
def test_rotate_and_revoke_check_the_charge_point_id_too(state: Path, action: str) -> None:
    """Same rule for every command naming a charger."""
    result = gateway("credentials", action, "a/b", *store_flag(state))

    assert result.returncode == 2
    assert "charge point id" in result.stderr
    assert not state.exists()


def test_the_state_comes_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    """--state, OCPP_GATEWAY_STATE and the config file's state are read as serve reads them."""
    by_env, by_file = tmp_path / "env.db", tmp_path / "file.db"
    config = tmp_path / "gateway.toml"
    config.write_text(f'state = "sqlite:///{by_file}"\n')

    env_run = gateway(
        "credentials", "add", "CP-ENV", env={"OCPP_GATEWAY_STATE": f"sqlite:///{by_env}"}
    )
    file_run = gateway("credentials", "add", "CP-FILE", "--config", str(config))

    assert env_run.returncode == 0, env_run.stderr
    assert file_run.returncode == 0, file_run.stderr
    assert stored(by_env, "CP-ENV") is not None
    assert stored(by_file, "CP-FILE") is not None


def test_a_memory_state_is_refused(tmp_path: Path) -> None:
    """memory:// would forget the record at exit: a usage error, not a silent no-op."""
    result = gateway("credentials", "add", "CP-1", "--state", "memory://")

    assert result.returncode == 2
    assert "memory://" in result.stderr
    assert result.stdout == ""


# --- rotate -------------------------------------------------------------------------------


def test_rotate_makes_the_new_password_current_and_keeps_the_old_as_previous(
    state: Path,
) -> None:
    """The old hashes move to previous_hashes (still accepted); the new password verifies."""
    old_password = add(state, "CP-1")
    old = stored(state, "CP-1")

    result = gateway("credentials", "rotate", "CP-1", *store_flag(state))

    assert result.returncode == 0, result.stderr
    new_password, hex_form = generated(result)
    assert new_password != old_password
    assert_no_secrets(result, new_password, hex_form, old_password)
    record = stored(state, "CP-1")
    assert old is not None and record is not None
    assert record.previous_hashes == old.password_hashes
    assert verify_password(old_password, record.previous_hashes[0])
    assert verify_password(new_password, record.password_hashes[0])
    assert not verify_password(old_password, record.password_hashes[0])
    assert record.updated_at >= old.updated_at


def test_rotate_with_a_given_password(state: Path) -> None:
    """--password-stdin works for rotate too, and prints no password."""
    add(state, "CP-1")

    result = gateway(
        "credentials", "rotate", "CP-1", "--password-stdin", *store_flag(state), stdin=GIVEN
    )

    assert result.returncode == 0, result.stderr
    assert GIVEN not in result.stdout
    record = stored(state, "CP-1")
    assert record is not None and verify_password(GIVEN, record.password_hashes[0])


def test_a_config_file_password_hash_is_rotated_not_cut_off(tmp_path: Path) -> None:
    """A station with password_hash in the config file: add refuses (the stored record
    would win over it at once); rotate keeps it as the previous hash."""
    state = tmp_path / "state.db"
    configured = hash_password("config-file-password")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'state = "sqlite:///{state}"\n[chargers."CP-C"]\npassword_hash = \'{configured}\'\n'
    )

    refused = gateway("credentials", "add", "CP-C", "--config", str(config))
    rotated = gateway("credentials", "rotate", "CP-C", "--config", str(config))

    assert refused.returncode == 2
    assert "rotate" in refused.stderr
    assert_no_secrets(refused)
    assert rotated.returncode == 0, rotated.stderr
    password, _ = generated(rotated)
    record = stored(state, "CP-C")
    assert record is not None
    assert record.previous_hashes == (configured,)
    assert verify_password(password, record.password_hashes[0])


def test_rotate_without_a_record_is_refused(state: Path) -> None:
    """Nothing to rotate: exit 1, pointing at add; nothing stored."""
    result = gateway("credentials", "rotate", "CP-1", *store_flag(state))

    assert result.returncode == 1
    assert "add" in result.stderr
    assert "password:" not in result.stdout
    assert stored(state, "CP-1") is None


# --- revoke and list ----------------------------------------------------------------------


def test_revoke_deletes_and_a_second_revoke_exits_1(state: Path) -> None:
    """The record is gone; revoking again says there was nothing to revoke."""
    add(state, "CP-1")

    first = gateway("credentials", "revoke", "CP-1", *store_flag(state))
    second = gateway("credentials", "revoke", "CP-1", *store_flag(state))

    assert first.returncode == 0, first.stderr
    assert stored(state, "CP-1") is None
    assert second.returncode == 1
    assert "nothing to revoke" in second.stderr
    assert len(second.stderr.splitlines()) == 1


def test_list_shows_counts_times_and_pending_rotations_never_hashes(state: Path) -> None:
    """One line per station, by id: hash count, UTC time, 'rotation pending' if so."""
    add(state, "CP-B")
    add(state, "CP-A")
    rotated = gateway("credentials", "rotate", "CP-B", *store_flag(state))
    assert rotated.returncode == 0, rotated.stderr

    result = gateway("credentials", "list", *store_flag(state))

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.split()[0] == "CP-A" and second.split()[0] == "CP-B"
    assert "2 hashes" in first and "2 hashes" in second
    assert re.search(rf"updated {ISO_UTC}", first)
    assert "rotation pending" not in first
    assert second.endswith("rotation pending")
    assert_no_secrets(result)


def test_list_of_an_empty_store_prints_nothing_on_stdout(state: Path) -> None:
    """No records: exit 0, empty stdout (a note on stderr)."""
    result = gateway("credentials", "list", *store_flag(state))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


# --- redis --------------------------------------------------------------------------------


def test_add_and_list_against_redis(redis_url: str, redis_prefix: str) -> None:
    """The same commands on a shared Redis store (--state redis://...?prefix=...)."""
    separator = "&" if urlsplit(redis_url).query else "?"
    flag = ["--state", f"{redis_url}{separator}prefix={redis_prefix}"]

    added = gateway("credentials", "add", "CP-R", *flag)
    listed = gateway("credentials", "list", *flag)

    assert added.returncode == 0, added.stderr
    password, hex_form = generated(added)
    assert_no_secrets(added, password, hex_form)
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.split()[0] == "CP-R" and "2 hashes" in line
    assert_no_secrets(listed)

    async def read() -> CredentialRecord | None:
        store = RedisStore(redis_url, prefix=redis_prefix)
        await store.open()
        try:
            return await store.get_credential("CP-R")
        finally:
            await store.close()

    record = asyncio.run(read())
    assert record is not None and verify_password(password, record.password_hashes[0])


# --- csr ----------------------------------------------------------------------------------


def test_csr_writes_a_private_key_and_a_csr_naming_the_station(tmp_path: Path) -> None:
    """<id>.key.pem (0600) and <id>.csr.pem: a signed CSR, CN the id, O and C as given,
    for that key; stdout names both files and the config keys to set."""
    out = tmp_path / "pki"

    result = gateway(
        "csr", "CP-1", "--organization", "Acme CSO", "--country", "de", "--out", str(out)
    )

    assert result.returncode == 0, result.stderr
    key_path, csr_path = out / "CP-1.key.pem", out / "CP-1.csr.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    subject = csr.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["CP-1"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "Acme CSO"
    ]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)] == ["DE"]
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert csr.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) == key.public_key().public_bytes(serialization.Encoding.DER, public)
    assert str(key_path.resolve()) in result.stdout
    assert str(csr_path.resolve()) in result.stdout
    assert "upstream_cert" in result.stdout and "upstream_key" in result.stdout
    assert "PRIVATE KEY" not in result.stdout + result.stderr


def test_csr_keeps_an_existing_key_unless_told_to_overwrite(tmp_path: Path) -> None:
    """A second run refuses (exit 2) and leaves the key; --overwrite replaces it."""
    args = ["csr", "CP-1", "--organization", "Acme CSO", "--out", str(tmp_path)]
    assert gateway(*args).returncode == 0
    first_key = (tmp_path / "CP-1.key.pem").read_bytes()

    refused = gateway(*args)
    replaced = gateway(*args, "--overwrite")

    assert refused.returncode == 2
    assert "--overwrite" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert replaced.returncode == 0, replaced.stderr
    assert (tmp_path / "CP-1.key.pem").read_bytes() != first_key


@pytest.mark.parametrize(
    ("station_id", "extra"),
    [("a/b", []), ("192.168.1.10", []), ("CP-1", ["--country", "DEU"])],
    ids=["bad-id", "ip-address", "bad-country"],
)
def test_csr_refuses_bad_input_with_one_line(
    tmp_path: Path, station_id: str, extra: list[str]
) -> None:
    """Ids the listener refuses, IP-address CNs (A00.FR.511), bad countries: exit 2."""
    result = gateway(
        "csr", station_id, "--organization", "Acme CSO", "--out", str(tmp_path), *extra
    )

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
