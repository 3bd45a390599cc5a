"""The ``ocpp-gateway`` command: serve, demo, check-config, example-csms, bench,
credentials (charger passwords for security profiles 1 and 2), csr (a station's key
and certificate signing request for security profile 3 towards the CSMS) and route (a
thin client of a running gateway's admin API: chargers, routes, waves).

Layer: top. With config.py, the only place that reads argv and the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import getpass
import json
import logging
import os
import secrets
import signal
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway import __version__
from gateway.bench.options import add_bench_arguments
from gateway.config import (
    CONFIG_ENV,
    SETTINGS_FLAGS,
    ConfigError,
    Settings,
    add_settings_arguments,
    settings_from_namespace,
    split_host_port,
)
from gateway.logs import configure_logging
from gateway.mappings import MappingError, load_tables
from gateway.state import CredentialRecord, StateError, Store, open_store
from gateway.state.base import redacted_url

log = logging.getLogger("gateway.cli")
T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when installed (DESIGN.md measured 1.3-1.8x), else asyncio."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve(settings: Settings) -> int:
    from gateway.app import Gateway  # noqa: PLC0415 - keep `--help` fast

    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down: closing chargers with 1001 and flushing state")
    await gateway.stop()
    return 0


def _check_config(settings: Settings) -> int:
    open_store(settings.state)  # the URL names a store this gateway has
    tables = load_tables(Path(settings.mappings) if settings.mappings else None)
    print(
        f"configuration OK: listen {settings.listen}, upstream {settings.upstream}, "
        f"state {settings.state.split('://', 1)[0]}, metrics {settings.metrics or 'off'}"
    )
    print(
        f"mapping tables OK: {len(tables.error_events)} error codes, "
        f"{len(tables.id_tokens.rules)} idToken rules, "
        f"{len(tables.vendor_id_tokens)} vendor overrides"
    )
    rows = tables.device_model.variables
    vendors = ", ".join(
        f"{v.vendor}/{v.model or '*'} ({len(v.variables)} variables)"
        for v in tables.vendor_device_models
    )
    print(
        f"device model OK: {len(rows)} variables, {sum(r.key is not None for r in rows)} "
        f"from 1.6 keys; vendor files: {vendors or 'none'}"
    )
    _check_security_files(settings)
    return 0


def _check_security_files(settings: Settings) -> None:
    """Load what ``serve`` loads at start-up: TLS files, keys, password hashes
    (ConfigError names the file or the charger, never a secret)."""
    # Imported here: keep `--help` fast (ssl contexts, cryptography).
    from gateway.state import open_store  # noqa: PLC0415
    from gateway.transport.charger_auth import ChargerAuthenticator  # noqa: PLC0415
    from gateway.transport.server import server_tls_context  # noqa: PLC0415
    from gateway.transport.upstream_security import UpstreamSecurityFactory  # noqa: PLC0415

    ChargerAuthenticator(settings, open_store(settings.state))  # parses every password_hash
    if settings.tls_cert is not None and settings.tls_key is not None:
        server_tls_context(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    UpstreamSecurityFactory(settings)
    profile = settings.security_profile
    print(
        f"security OK: charger listener {'wss' if settings.tls else 'ws'}, profile {profile}, "
        f"{len(settings.chargers)} [chargers] tables"
    )


_EXAMPLE_CSMS_KEEP = 1000  # received messages kept in memory by the long-running example CSMS


async def _example_csms(host: str, port: int) -> int:
    """Run the sim CSMS (accepts every boot, answers what a station sends) until SIGTERM.

    Schema violations are logged by the sim as warnings when they happen.
    """
    from gateway.sim.csms import CsmsSim  # noqa: PLC0415 - keep `--help` fast

    csms = CsmsSim(host, port)
    await csms.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"example CSMS (OCPP 2.0.1 test/demo peer, not a production CSMS) listening on "
        f"ws://{shown}:{csms.port}/ocpp",
        flush=True,
    )
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await stop.wait()
        # The sim records everything for tests (and logs violations as it finds them);
        # under docker compose it may run for days, so keep memory bounded.
        csms.violations.clear()
        del csms.messages[:-_EXAMPLE_CSMS_KEEP]
        del csms.connections[:-_EXAMPLE_CSMS_KEEP]
        del csms.security_errors[:-_EXAMPLE_CSMS_KEEP]
    log.info("example CSMS: stopping")
    await csms.stop()
    return 0


# --- credentials and csr ----------------------------------------------------------------

#: A generated password: 20 characters of A-Z a-z 0-9 (about 119 bits). 20 bytes is the
#: most a 1.6 AuthorizationKey holds (16 the least; 1.6 Security Whitepaper); 2.0.1's
#: BasicAuthPassword takes 16 to 40 characters, the bounds a given password must meet.
PASSWORD_ALPHABET: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits
GENERATED_PASSWORD_LENGTH: Final = 20
PASSWORD_LENGTHS: Final = (16, 40)
AUTHORIZATION_KEY_BYTES: Final = 20
_STDIN_LIMIT: Final = 4096  # bytes read from a pipe: one password, with room to spare


class _Refused(Exception):
    """A command refuses or fails: one line for stderr, and the exit code (2 for usage
    and configuration, 1 for "not found" and failures). Never holds a password or hash."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _charge_point_id(text: str) -> str:
    """``text`` if the charger listener would accept it as a charge point id (the last
    path segment of the URL, and the Basic auth username)."""
    from gateway.transport.server import _IDENTITY, MAX_IDENTITY_LENGTH  # noqa: PLC0415

    if _IDENTITY.fullmatch(text) is None:  # not repeated: it may be a password pasted
        raise _Refused(
            f"not a charge point id the charger listener accepts: 1 to {MAX_IDENTITY_LENGTH} "
            "characters of A-Z a-z 0-9 * - _ = + | @ ."
        )
    return text


def _read_password() -> str:
    """One password: prompted for twice without echo on a terminal (a typo would lock the
    charger out), else all of standard input, one trailing newline dropped. Never empty."""
    if sys.stdin is None:
        raise _Refused("no standard input to read the password from")
    if sys.stdin.isatty():
        try:
            password = getpass.getpass("password: ")
            if getpass.getpass("password again: ") != password:
                raise _Refused("the two passwords differ")
        except EOFError:
            raise _Refused("no password given") from None
    else:
        data = sys.stdin.buffer.read(_STDIN_LIMIT + 1)
        if len(data) > _STDIN_LIMIT:
            raise _Refused(f"standard input holds more than {_STDIN_LIMIT} bytes: not a password")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("the password on standard input is not UTF-8") from None
        password = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
        if "\n" in password or "\r" in password:
            raise _Refused("standard input holds more than one line: give one password")
    if not password:
        raise _Refused("empty password refused")
    return password


def _checked_password(password: str) -> str:
    low, high = PASSWORD_LENGTHS
    if not low <= len(password) <= high:  # the length only: never the password
        raise _Refused(
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
        raise _Refused(
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
            raise _Refused(f"{station_id} has a stored credential already: use rotate")
        if old is None and configured_hash is not None and not rotate:
            raise _Refused(
                f'{station_id} has a password_hash in [chargers."{station_id}"] of the config '
                "file: use rotate, which keeps it accepted until the charger logs in anew"
            )
        if old is None and configured_hash is None and rotate:
            raise _Refused(f"{station_id} has no stored credential to rotate: use add", 1)
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
        raise _Refused(f"{station_id} has no stored credential: nothing to revoke", 1)
    print(f"{station_id}: stored credential revoked")
    charger = settings.charger(station_id)
    if charger is not None and charger.password_hash is not None:
        print(
            f'{station_id}: note: the password_hash of [chargers."{station_id}"] in the '
            "config file still applies"
        )
    return 0


def _utc(epoch: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    except (ValueError, OverflowError, OSError):  # NaN or out of range: shown, not fatal
        return "unknown"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


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
        updated = _utc(record.updated_at)
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
        raise _Refused(
            f"{directory / (station_id + '.key.pem')} exists: pass --overwrite to replace the "
            "key (a certificate issued for the old key then no longer matches it)"
        ) from None
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    except OSError as exc:
        raise _Refused(f"cannot write to {directory}: {exc.strerror or exc}", 1) from None
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


def _add_credentials_parser(commands: Any) -> None:
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


def _add_csr_parser(commands: Any) -> None:
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


def _credentials_or_csr(args: argparse.Namespace) -> int:
    try:
        return _csr(args) if args.command == "csr" else _credentials(args)
    except _Refused as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return exc.code
    except (ConfigError, StateError) as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


# --- route: the admin API's thin client ---------------------------------------------------

ADMIN_URL_ENV: Final = "OCPP_GATEWAY_ADMIN_URL"
ADMIN_TOKEN_ENV: Final = "OCPP_GATEWAY_ADMIN_TOKEN"  # the setting admin_token's variable
DEFAULT_ADMIN_URL: Final = "http://127.0.0.1:9100"
_ADMIN_TIMEOUT: Final = 15.0
_TOKEN_FILE_LIMIT: Final = 4096
_APPLIED: Final = {
    "now": "moved now (reconnected to its new CSMS)",
    "after_transaction": "moves when its open transaction ends",
    "not_connected": "not connected here: applies when it next connects",
    "unchanged": "already routed so: nothing changes",
}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would hand the token to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _admin_token(args: argparse.Namespace) -> str:
    """The token: --token-file (first line), else the environment; never a flag."""
    if args.token_file is not None:
        try:
            with open(args.token_file, "rb") as file:
                data = file.read(_TOKEN_FILE_LIMIT + 1)
        except OSError as exc:
            raise _Refused(
                f"cannot read the token file {args.token_file}: {exc.strerror}"
            ) from None
        if len(data) > _TOKEN_FILE_LIMIT:
            raise _Refused(f"the token file {args.token_file} is too large to hold a token")
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _Refused(f"the token file {args.token_file} is not ASCII text") from None
        if not token or any(ch.isspace() for ch in token):
            raise _Refused(f"the token file {args.token_file} must hold one token, alone")
        return token
    token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if not token:
        raise _Refused(f"no admin token: set {ADMIN_TOKEN_ENV} or pass --token-file PATH")
    return token


def _admin_url(args: argparse.Namespace) -> str:
    url = str(args.admin or os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise _Refused(f"--admin must be an http:// or https:// URL, not {url!r}")
    return url


def _admin_call(args: argparse.Namespace, method: str, path: str, body: object = None) -> Any:
    """One admin API request; its JSON answer, or _Refused with one line."""
    base, token = _admin_url(args), _admin_token(args)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": f"ocpp-gateway/{__version__}",
            **({"Content-Type": "application/json"} if data is not None else {}),
        },
    )
    # No proxies from the environment (the token would pass through them), no redirects.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    try:
        with opener.open(request, timeout=_ADMIN_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            detail = _error_detail(error)
        if error.code == 401:
            raise _Refused("the admin token was refused") from None
        if error.code == 404 and not detail:
            raise _Refused(
                f"no admin API at {base}: is it the gateway's --metrics address, and is "
                "admin_token set there?"
            ) from None
        if 400 <= error.code < 500:
            raise _Refused(f"refused ({error.code}): {detail or error.reason}") from None
        failed = f"the admin API failed (HTTP {error.code}): {detail or error.reason}"
        raise _Refused(failed, 1) from None
    except urllib.error.URLError as error:
        raise _Refused(f"cannot reach the admin API at {base}: {error.reason}", 1) from None
    except (OSError, TimeoutError) as error:
        raise _Refused(f"cannot reach the admin API at {base}: {error}", 1) from None
    except ValueError:
        raise _Refused(f"the admin API at {base} did not answer JSON", 1) from None


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The ``error`` text of an admin API error answer ("" if it has none)."""
    try:
        answer = json.loads(error.read(_STDIN_LIMIT))
    except (ValueError, OSError):
        return ""
    message = answer.get("error") if isinstance(answer, dict) else None
    return " ".join(str(message).split()) if message else ""


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _route_list(args: argparse.Namespace) -> int:
    query = f"?{urllib.parse.urlencode({'route': args.route})}" if args.route else ""
    chargers = _admin_call(args, "GET", f"/chargers{query}")
    if args.json:
        _print_json(chargers)
        return 0
    if not chargers:
        which = f" on route {args.route}" if args.route else ""
        print(f"no charger connected{which}", file=sys.stderr)
        return 0
    rows = [("CHARGER", "ROUTE", "PROTOCOL", "VENDOR/MODEL", "FIRMWARE", "CONNECTED SINCE",
             "LAST MESSAGE")]  # fmt: skip
    for charger in chargers:
        route = charger["route"] + (" +shadow" if charger.get("shadow") else "")
        if charger.get("pending_route"):
            route += f" (-> {charger['pending_route']})"
        vendor = "/".join(str(charger[k]) for k in ("vendor", "model") if charger.get(k))
        last = charger.get("last_message_at")
        rows.append((
            str(charger["station_id"]), route, str(charger["protocol"]), vendor or "-",
            str(charger.get("firmware") or "-"), _utc(charger["connected_since"]),
            "-" if last is None else _utc(last),
        ))  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _change_line(change: dict[str, Any]) -> str:
    shadow = " with shadow" if change.get("shadow") else ""
    applied = _APPLIED.get(str(change.get("applied")), str(change.get("applied")))
    return f"{change['station_id']}: {change['route']}{shadow}: {applied}"


def _route_set(args: argparse.Namespace) -> int:
    body = {"route": args.route, "shadow": args.shadow}
    path = f"/chargers/{urllib.parse.quote(args.charge_point_id, safe='')}/route"
    print(_change_line(_admin_call(args, "PUT", path, body)))
    return 0


def _route_clear(args: argparse.Namespace) -> int:
    path = f"/chargers/{urllib.parse.quote(args.charge_point_id, safe='')}/route"
    change = _admin_call(args, "DELETE", path)
    print(f"{args.charge_point_id}: own rule cleared; the table routes it {_change_line(change)}")
    return 0


def _route_wave(args: argparse.Namespace) -> int:
    body = {"percent": args.percent, "route": args.route, "shadow": args.shadow}
    answer = _admin_call(args, "PUT", f"/waves/{urllib.parse.quote(args.name, safe='')}", body)
    moved = answer["moved"]
    shadow = " with shadow" if args.shadow else ""
    print(
        f"wave {args.name}: {args.percent:g}% of the chargers to {args.route}{shadow}; "
        f"{moved} connected charger{'s' if moved != 1 else ''} move{'s' if moved == 1 else ''}"
    )
    return 0


def _rule_text(rule: dict[str, Any]) -> str:
    conditions = [
        f"{key}={rule[key]:g}%" if key == "percent" else f"{key}={rule[key]}"
        for key in ("charger", "pattern", "vendor", "model", "percent")
        if key in rule
    ]
    shadow = " +shadow" if rule.get("shadow") else ""
    name = f"{rule['name']}: " if rule.get("name") else ""
    return f"{name}{' '.join(conditions)} -> {rule['route']}{shadow}"


def _route_rules(args: argparse.Namespace) -> int:
    table = _admin_call(args, "GET", "/routes")
    if args.json:
        _print_json(table)
        return 0
    for number, rule in enumerate(table["rules"], 1):
        print(f"{number:>3}. {_rule_text(rule)}")
    print(f"default: {table['default']}")
    return 0


def _route(args: argparse.Namespace) -> int:
    actions = {"list": _route_list, "set": _route_set, "clear": _route_clear,
               "wave": _route_wave, "rules": _route_rules}  # fmt: skip
    try:
        return actions[args.route_command](args)
    except _Refused as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage is 0 to 100, not {text}")
    return value


class _NoTokenFlag(argparse.Action):
    """``--token`` is refused outright (and not taken for --token-file): a token on the
    command line shows in ``ps`` and shell history. The value is not echoed."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(f"no --token flag: set {ADMIN_TOKEN_ENV} or pass --token-file PATH")


def _add_route_parser(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token", action=_NoTokenFlag, help=argparse.SUPPRESS)
    common.add_argument(
        "--admin",
        default=None,
        metavar="URL",
        help=f"the gateway's ops listener (its --metrics address) [env {ADMIN_URL_ENV}; "
        f"default {DEFAULT_ADMIN_URL}]",
    )
    common.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help=f"read the admin token from this file [default: env {ADMIN_TOKEN_ENV}]",
    )
    route = commands.add_parser(
        "route",
        help="route chargers of a running gateway (its admin API): list, set, clear, wave, rules",
        description="A thin client of a running gateway's admin API (docs/admin.md). The "
        f"token comes from {ADMIN_TOKEN_ENV} or --token-file, never a flag (other users "
        "see command lines). Exit codes: 0 done, 1 the gateway could not be reached or "
        "failed, 2 refused (usage, token, or a change the gateway refuses).",
    )
    actions = route.add_subparsers(dest="route_command", required=True)
    listing = actions.add_parser(
        "list",
        parents=[common],
        allow_abbrev=False,
        help="the connected chargers, their routes and versions",
    )
    listing.add_argument(
        "--route", choices=("translate", "legacy", "passthrough"), help="only this route"
    )
    listing.add_argument("--json", action="store_true", help="the API's JSON as is")
    set_ = actions.add_parser(
        "set",
        parents=[common],
        allow_abbrev=False,
        help="route one charger (stored; it moves at a safe point)",
        description="Give the charger a rule of its own. A connected charger moves at once "
        "when it has no open transaction, else when its transaction ends.",
    )
    set_.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    set_.add_argument("route", choices=("translate", "legacy"))
    set_.add_argument(
        "--shadow",
        action="store_true",
        help="also mirror its traffic, read-only, to the other CSMS",
    )
    clear = actions.add_parser(
        "clear",
        parents=[common],
        allow_abbrev=False,
        help="drop a charger's own rule: the table decides again",
    )
    clear.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    wave = actions.add_parser(
        "wave",
        parents=[common],
        allow_abbrev=False,
        help="create or change a percentage wave",
        description="The wave NAME takes PERCENT of the chargers (a stable hash of each id): "
        "raising it only adds chargers, lowering it gives some back.",
    )
    wave.add_argument("name", metavar="NAME")
    wave.add_argument("percent", type=_percent, metavar="PERCENT")
    wave.add_argument("--route", choices=("translate", "legacy"), default="translate")
    wave.add_argument("--shadow", action="store_true", help="with shadow (see set)")
    rules = actions.add_parser(
        "rules", parents=[common], allow_abbrev=False, help="the routing table in force"
    )
    rules.add_argument("--json", action="store_true", help="the API's JSON as is")


def _host_port(text: str) -> tuple[str, int]:
    try:
        return split_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-gateway",
        description="OCPP 1.6J to OCPP 2.0.1 gateway: presents 1.6J chargers to a 2.0.1 CSMS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    add_settings_arguments(serve)
    check = commands.add_parser("check-config", help="validate configuration and mapping tables")
    add_settings_arguments(check)
    demo = commands.add_parser(
        "demo", help="built-in CSMS + gateway + simulated 1.6 chargers, with a live view"
    )
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    demo.add_argument("--chargers", type=int, default=3, help="simulated chargers (default 3)")
    demo.add_argument(
        "--state-dir",
        default=None,
        help="directory for the SQLite state (default: a temporary one)",
    )
    demo.add_argument("--log-level", default="warning", help="gateway log level (default warning)")
    csms = commands.add_parser(
        "example-csms",
        help="run the built-in OCPP 2.0.1 CSMS simulator (a test/demo peer, not a real CSMS)",
        description="Run the built-in OCPP 2.0.1 CSMS simulator as an upstream for the "
        "gateway in demos and tests (docker compose uses it). It accepts every "
        "BootNotification, authorizes every idToken, answers the other messages a "
        "station sends and logs schema violations; it keeps no state on disk. It is a "
        "test/demo peer, NOT a production CSMS. Stops on SIGTERM or SIGINT.",
    )
    csms.add_argument(
        "--listen",
        type=_host_port,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="websocket address to listen on (default 127.0.0.1:8080; any URL path, the "
        "last segment is the station id)",
    )
    csms.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level (default info)",
    )
    bench = commands.add_parser(
        "bench",
        help="load benchmark: gateway vs direct and a naive proxy (throughput, latency, memory)",
        description="Start a stub CSMS, the gateway, a naive proxy and load generators on "
        "loopback, each in its own process, and measure round trips/s at saturation, added "
        "latency at a paced rate, memory per idle charger and connect+boot time. See "
        "docs/performance.md.",
    )
    add_bench_arguments(bench)
    _add_credentials_parser(commands)
    _add_csr_parser(commands)
    _add_route_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        from gateway.bench.command import main as bench  # noqa: PLC0415 - keep `--help` fast

        return bench(args)
    if args.command == "demo":
        from gateway.demo import run_demo  # noqa: PLC0415

        configure_logging(level=args.log_level, fmt="text", stream=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            return run_event_loop(
                run_demo(duration=args.duration, chargers=args.chargers, state_dir=args.state_dir)
            )
        return 130
    if args.command in ("credentials", "csr"):
        return _credentials_or_csr(args)
    if args.command == "route":
        return _route(args)
    if args.command == "example-csms":
        configure_logging(level=args.log_level, fmt="text", stream=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            return run_event_loop(_example_csms(*args.listen))
        return 130
    try:
        settings = settings_from_namespace(args, os.environ)
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        if args.command == "check-config":
            return _check_config(settings)
        settings.require_upstream()
        open_store(settings.state)
        # The tables are read again at start; this run names a broken file and entry
        # with exit 2 like check-config, instead of a traceback from inside the loop.
        load_tables(Path(settings.mappings) if settings.mappings else None)
    except (ConfigError, MappingError, StateError) as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return 2
    return run_event_loop(_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
