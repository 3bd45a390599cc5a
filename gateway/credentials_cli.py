"""``ocpp-gateway credentials`` (charger passwords for security profiles 1 and 2, kept in
the state store) and ``ocpp-gateway csr`` (a station's key and certificate signing
request for security profile 3 towards the CSMS).

Layer: top (a command; ``gateway.cli`` registers it). Never prints or logs a password or
a hash, but the password a command generates and ``credentials hash``'s own output.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import string
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.commands import Refused, utc_text
from gateway.config import (
    CONFIG_ENV,
    SETTINGS_FLAGS,
    ConfigError,
    Settings,
    settings_from_namespace,
)
from gateway.state import CredentialRecord, StateError, Store, open_store
from gateway.state.base import redacted_url

T = TypeVar("T")

log = logging.getLogger("gateway.cli")


#: A generated password: 20 characters of A-Z a-z 0-9 (about 119 bits). 20 bytes is the
#: most a 1.6 AuthorizationKey holds (16 the least; 1.6 Security Whitepaper); 2.0.1's
#: BasicAuthPassword takes 16 to 40 characters, the bounds a given password must meet.
PASSWORD_ALPHABET: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits
GENERATED_PASSWORD_LENGTH: Final = 20
PASSWORD_LENGTHS: Final = (16, 40)
AUTHORIZATION_KEY_BYTES: Final = 20
_STDIN_LIMIT: Final = 4096  # bytes read from a pipe: one password, with room to spare


def _charge_point_id(text: str) -> str:
    """``text`` if the charger listener would accept it as a charge point id (the last
    path segment of the URL, and the Basic auth username)."""
    from gateway.transport.server import _IDENTITY, MAX_IDENTITY_LENGTH  # noqa: PLC0415

    if _IDENTITY.fullmatch(text) is None:  # not repeated: it may be a password pasted
        raise Refused(
            f"not a charge point id the charger listener accepts: 1 to {MAX_IDENTITY_LENGTH} "
            "characters of A-Z a-z 0-9 * - _ = + | @ ."
        )
    return text


def _read_password() -> str:
    """One password: prompted for twice without echo on a terminal (a typo would lock the
    charger out), else all of standard input, one trailing newline dropped. Never empty."""
    if sys.stdin is None:
        raise Refused("no standard input to read the password from")
    if sys.stdin.isatty():
        try:
            password = getpass.getpass("password: ")
            if getpass.getpass("password again: ") != password:
                raise Refused("the two passwords differ")
        except EOFError:
            raise Refused("no password given") from None
    else:
        data = sys.stdin.buffer.read(_STDIN_LIMIT + 1)
        if len(data) > _STDIN_LIMIT:
            raise Refused(f"standard input holds more than {_STDIN_LIMIT} bytes: not a password")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("the password on standard input is not UTF-8") from None
        password = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
        if "\n" in password or "\r" in password:
            raise Refused("standard input holds more than one line: give one password")
    if not password:
        raise Refused("empty password refused")
    return password


def _checked_password(password: str) -> str:
    low, high = PASSWORD_LENGTHS
    if not low <= len(password) <= high:  # the length only: never the password
        raise Refused(
            f"the password must be {low} to {high} characters (OCPP 2.0.1 BasicAuthPassword; "
            f"a 1.6 AuthorizationKey holds at most {AUTHORIZATION_KEY_BYTES} bytes), "
            f"got {len(password)}"
        )
    return password


def _generated_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))


def _hashes_for(password: str) -> tuple[str, ...]:
    """The hashes a charger holding ``password`` logs in with: the password itself (1.6J:
    the AuthorizationKey's bytes) and, when it fits an AuthorizationKey, also its hex text,
    which some chargers send instead (see CredentialRecord)."""
    from gateway.security.passwords import hash_password  # noqa: PLC0415 - no KDF on --help

    raw = password.encode("utf-8")
    if len(raw) > AUTHORIZATION_KEY_BYTES:
        return (hash_password(raw),)
    return hash_password(raw), hash_password(raw.hex())


def _store_settings(args: argparse.Namespace) -> Settings:
    """The settings of the gateway this command works for (flags, env, config file); its
    state must outlive the command."""
    settings = settings_from_namespace(args, os.environ)
    if settings.state.startswith("memory:"):
        raise Refused(
            "state memory:// keeps nothing after this command: give the gateway's "
            "--state (sqlite:///path or redis://...)"
        )
    return settings


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the gateway's store, do ``work``, close it."""
    store = open_store(settings.state)
    try:
        await store.open()
        return await work(store)
    finally:
        await store.close()


def _credentials_hash() -> int:
    from gateway.security.passwords import hash_password  # noqa: PLC0415

    print(hash_password(_read_password()))
    if sys.stdout.isatty():
        hint = 'config file: password_hash = "<the line above>" in [chargers."<id>"]'
        print(hint, file=sys.stderr)
    return 0


def _credentials_set(args: argparse.Namespace, *, rotate: bool) -> int:
    """``add`` (no record yet) and ``rotate`` (the current hashes become previous)."""
    station_id = _charge_point_id(args.charge_point_id)
    settings = _store_settings(args)

    # A stored record wins over the config file's password_hash, so a station that has
    # one is rotated away from it (kept as previous), never silently cut off by add.
    configured = settings.charger(station_id)
    configured_hash = None if configured is None else configured.password_hash

    async def store_new(store: Store) -> tuple[str | None, CredentialRecord]:
        old = await store.get_credential(station_id)
        if old is not None and not rotate:
            raise Refused(f"{station_id} has a stored credential already: use rotate")
        if old is None and configured_hash is not None and not rotate:
            raise Refused(
                f'{station_id} has a password_hash in [chargers."{station_id}"] of the config '
                "file: use rotate, which keeps it accepted until the charger logs in anew"
            )
        if old is None and configured_hash is None and rotate:
            raise Refused(f"{station_id} has no stored credential to rotate: use add", 1)
        generated = None if args.password_stdin else _generated_password()
        password = _checked_password(_read_password()) if generated is None else generated
        if old is None:
            previous: tuple[str, ...] = () if configured_hash is None else (configured_hash,)
        else:
            # A rotation still pending keeps its previous hashes too: the charger may
            # not have applied the password being replaced either.
            previous = old.password_hashes + tuple(
                h for h in old.previous_hashes if h not in old.password_hashes
            )
        record = CredentialRecord(station_id, _hashes_for(password), previous, time.time())
        await store.put_credential(record)
        return generated, record

    generated, record = asyncio.run(_with_store(settings, store_new))
    if generated is not None:
        print(f"password: {generated}")
        print(f"AuthorizationKey (hex): {generated.encode('utf-8').hex()}")
    count = len(record.password_hashes)
    forms = "the password and its hex text" if count > 1 else "the password"
    shown = ", nor shown again" if generated else ""
    print(
        f"{station_id}: stored {count} password hash{'es' if count > 1 else ''} ({forms}); "
        f"the password itself is not stored{shown}"
    )
    if rotate:
        print(
            f"{station_id}: the previous password stays accepted until the charger first logs "
            "in with the new one (1.6: ChangeConfiguration AuthorizationKey = the hex form)"
        )
    return 0


def _credentials_revoke(args: argparse.Namespace) -> int:
    station_id = _charge_point_id(args.charge_point_id)
    settings = _store_settings(args)

    async def revoke(store: Store) -> bool:
        return await store.delete_credential(station_id)

    if not asyncio.run(_with_store(settings, revoke)):
        raise Refused(f"{station_id} has no stored credential: nothing to revoke", 1)
    print(f"{station_id}: stored credential revoked")
    charger = settings.charger(station_id)
    if charger is not None and charger.password_hash is not None:
        print(
            f'{station_id}: note: the password_hash of [chargers."{station_id}"] in the '
            "config file still applies"
        )
    return 0


def _credentials_list(args: argparse.Namespace) -> int:
    settings = _store_settings(args)

    async def listed(store: Store) -> list[CredentialRecord]:
        return await store.list_credentials()

    records = asyncio.run(_with_store(settings, listed))
    if not records:
        print(f"no stored charger credentials in {redacted_url(settings.state)}", file=sys.stderr)
    width = max((len(record.station_id) for record in records), default=0)
    for record in records:  # counts and times only: never a hash
        count = len(record.password_hashes)
        hashes = f"{count} hash{'es' if count != 1 else ''}"
        pending = "  rotation pending" if record.previous_hashes else ""
        updated = utc_text(record.updated_at)
        print(f"{record.station_id:<{width}}  {hashes:<9}  updated {updated}{pending}")
    return 0


def _credentials(args: argparse.Namespace) -> int:
    action = args.credentials_command
    if action == "hash":
        return _credentials_hash()
    if action in ("add", "rotate"):
        return _credentials_set(args, rotate=action == "rotate")
    if action == "revoke":
        return _credentials_revoke(args)
    return _credentials_list(args)


def _csr(args: argparse.Namespace) -> int:
    from gateway.security.pki import write_key_and_csr  # noqa: PLC0415 - keep --help fast

    station_id = _charge_point_id(args.station_id)
    directory = Path(args.out)
    try:
        key, csr = write_key_and_csr(
            directory,
            station_id,
            organization=args.organization,
            country=args.country,
            overwrite=args.overwrite,
        )
    except FileExistsError:
        raise Refused(
            f"{directory / (station_id + '.key.pem')} exists: pass --overwrite to replace the "
            "key (a certificate issued for the old key then no longer matches it)"
        ) from None
    except ValueError as exc:
        raise Refused(str(exc)) from None
    except OSError as exc:
        raise Refused(f"cannot write to {directory}: {exc.strerror or exc}", 1) from None
    key, csr = key.resolve(), csr.resolve()
    print(f"key: {key} (mode 0600: it stays on this host)")
    print(f"CSR: {csr}")
    print(
        f"next: have the CSO's CA (the one the CSMS trusts for station certificates) sign "
        f"{csr.name}, then set in the config file:\n"
        f'  [chargers."{station_id}"]\n'
        f"  upstream_cert = {json.dumps(str(key.with_name(station_id + '.cert.pem')))}\n"
        f"  upstream_key = {json.dumps(str(key))}"
    )
    return 0


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--state``, read as ``serve`` reads them (flag > env > file)."""
    (state,) = (spec for spec in SETTINGS_FLAGS if spec.name == "state")
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=f"the gateway's TOML config file (for its state) [env {CONFIG_ENV}]",
    )
    parser.add_argument(
        state.flag,
        dest=state.name,
        default=argparse.SUPPRESS,
        metavar=state.metavar,
        help=f"{state.help} [env {state.env_var}; default {state.default}]".replace("%", "%%"),
    )


def add_credentials_parser(commands: Any) -> None:
    credentials = commands.add_parser(
        "credentials",
        help="charger passwords (security profiles 1 and 2): hash, add, rotate, revoke, list",
        description="Charger passwords for HTTP Basic auth (security profiles 1 and 2). "
        "Only scrypt hashes are stored, in the gateway's state store (or, from 'hash', in "
        "the config file); a password is printed once, when it is generated.",
    )
    actions = credentials.add_subparsers(dest="credentials_command", required=True)
    actions.add_parser(
        "hash",
        help="hash one password from standard input for password_hash in the config file",
        description="Read one password from standard input (a prompt without echo on a "
        "terminal; one trailing newline is dropped) and print its hash, for "
        'password_hash = "..." in a [chargers."<id>"] table of the config file.',
    )
    password_help = (
        "read the password from standard input (16 to 40 characters) instead of "
        "generating one: 20 random characters of A-Z a-z 0-9, printed once with its hex "
        "form for a 1.6 ChangeConfiguration(AuthorizationKey)"
    )
    add = actions.add_parser(
        "add",
        help="store a new charger's password hash (refused if it has one: use rotate)",
        description="Store the hashes of a new password for a charger that has none "
        "(the password and, when it fits a 1.6 AuthorizationKey, its hex text).",
    )
    add.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    add.add_argument("--password-stdin", action="store_true", help=password_help)
    _add_store_arguments(add)
    rotate = actions.add_parser(
        "rotate",
        help="replace a charger's password; the old one is accepted until it logs in anew",
        description="Store a new password's hashes for a charger that has a record; "
        "the current hashes become previous ones, still accepted until the charger's "
        "first login with the new password.",
    )
    rotate.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    rotate.add_argument("--password-stdin", action="store_true", help=password_help)
    _add_store_arguments(rotate)
    revoke = actions.add_parser("revoke", help="forget a charger's stored password hashes")
    revoke.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    _add_store_arguments(revoke)
    listing = actions.add_parser(
        "list", help="chargers with stored credentials (counts and times, never hashes)"
    )
    _add_store_arguments(listing)


def add_csr_parser(commands: Any) -> None:
    csr = commands.add_parser(
        "csr",
        help="make a station's upstream client key and CSR (security profile 3 to the CSMS)",
        description="Write <STATION_ID>.key.pem (mode 0600) and <STATION_ID>.csr.pem: a "
        "P-256 key and a certificate signing request with subject O=ORGANIZATION, "
        "CN=STATION_ID, for the client certificate the gateway presents to the CSMS as "
        "this station. The CSO's CA signs the CSR.",
    )
    csr.add_argument("station_id", metavar="STATION_ID")
    csr.add_argument(
        "--organization",
        required=True,
        metavar="NAME",
        help="subject O: the CSO name the CSMS checks (2.0.1 SecurityCtrlr.OrganizationName)",
    )
    csr.add_argument("--country", default=None, metavar="CC", help="subject C (ISO 3166)")
    csr.add_argument("--out", default=".", metavar="DIR", help="directory (default: current)")
    csr.add_argument(
        "--overwrite", action="store_true", help="replace an existing key of the station"
    )


def credentials_or_csr(args: argparse.Namespace) -> int:
    try:
        return _csr(args) if args.command == "csr" else _credentials(args)
    except Refused as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return exc.code
    except (ConfigError, StateError) as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
