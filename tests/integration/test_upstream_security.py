"""The upstream (CSMS-facing) security profiles over real TLS on loopback.

A test PKI (tests/pki.py) is generated in each test's tmp_path; the CSMS sim listens on
wss:// with it, requires Basic auth (profile 2) or client certificates (profile 3), and a
real gateway connects to it for a 1.6 charger on plain ws. Every test also checks that
no captured log record (gateway and websockets' client at DEBUG) shows a password or its
base64 form.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import ChargerConfig, ConfigError, Secret, Settings, load_settings
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived
from tests.pki import CA, make_ca, server_context

from .conftest import gateway_settings
from .helpers import charger_url_of, metric

pytestmark = pytest.mark.integration

RECONNECTS = "ocpp_gateway_upstream_reconnects_total"
#: The settings of ``gateway_settings`` the profile 2 test passes to load_settings as flags.
SETTINGS_TAKEN = (
    "listen", "upstream", "state", "metrics", "validate_outbound", "backoff_initial",
    "backoff_max", "response_timeout", "upstream_wait", "ping_interval", "upstream_ca",
)  # fmt: skip
POLL_INTERVAL = 0.02
POLL_BOUND = 5.0


@dataclass
class Pki:
    """The CSMS's CA and server certificate, and a CA that signs station certificates."""

    directory: Path
    csms_ca: CA
    server: tuple[Path, Path]
    stations: CA

    def csms_context(self, *, client_certificates: bool = False) -> ssl.SSLContext:
        client_ca = self.stations.cert_path if client_certificates else None
        return server_context(*self.server, client_ca=client_ca)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    csms_ca = make_ca(directory, "csms")
    return Pki(directory, csms_ca, csms_ca.issue_server(directory), make_ca(directory, "cpo"))


class Secrets:
    """The passwords a test uses; at teardown no log record may contain any of them."""

    def __init__(self) -> None:
        self.forbidden: set[str] = set()

    def add(self, station_id: str, password: str) -> str:
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode("ascii")
        self.forbidden.update({password, token, f"Basic {token}"})
        return password


@pytest.fixture
def secrets(caplog: pytest.LogCaptureFixture) -> Iterator[Secrets]:
    caplog.set_level(logging.DEBUG, logger="gateway")
    # websockets' client dumps every request header at DEBUG: the gateway must mask it.
    caplog.set_level(logging.DEBUG, logger="websockets.client")
    used = Secrets()
    yield used
    records = [record for when in ("setup", "call") for record in caplog.get_records(when)]
    assert records or not used.forbidden, "nothing was logged: the check proves nothing"
    for record in records:
        text = record.getMessage()
        if record.exc_text:
            text += record.exc_text
        leaked = [secret for secret in used.forbidden if secret in text]
        assert not leaked, f"{record.name} logged a secret: {text!r}"


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@asynccontextmanager
async def charger_of(gateway: Gateway, station_id: str) -> AsyncIterator[ChargerSim]:
    charger = ChargerSim(charger_url_of(gateway), station_id, call_timeout=5.0)
    await charger.connect()
    try:
        yield charger
    finally:
        await charger.close()
        assert charger.violations == []


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` (log records and counters have no event to wait on)."""
    deadline = asyncio.get_running_loop().time() + POLL_BOUND
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(POLL_INTERVAL)


def logged(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == level and text in record.getMessage()
    ]


# ------------------------------------------------------------------------ profile 2


async def test_profile_2_basic_auth_over_tls_with_passwords_from_a_file_and_the_env(
    pki: Pki, tmp_path: Path, secrets: Secrets
) -> None:
    """wss:// verified against upstream_ca; each station sends its own Basic auth, the
    password read at start-up from a secrets file or an environment variable."""
    from_file = secrets.add("CP-FILE", "file-password-0123456789")
    from_env = secrets.add("CP-ENV", "env-pässwörd-0123456789")  # UTF-8 (RFC 7617)
    password_file = tmp_path / "cp-file.password"
    password_file.write_text(from_file + "\n", encoding="utf-8")  # as `echo` writes it
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[chargers."CP-FILE"]\nupstream_password_file = "{password_file}"\n'
        '[chargers."CP-ENV"]\nupstream_password_env = "CP_ENV_UPSTREAM_PASSWORD"\n',
        encoding="utf-8",
    )
    passwords = {"CP-FILE": from_file, "CP-ENV": from_env}
    async with CsmsSim(ssl=pki.csms_context(), passwords=passwords) as csms:
        assert csms.url.startswith("wss://127.0.0.1:")
        # The test defaults as flags; the passwords come through the file and the env.
        base = gateway_settings(csms, tmp_path, upstream_ca=str(pki.csms_ca.cert_path))
        flags = {name: getattr(base, name) for name in SETTINGS_TAKEN}
        env = {"CP_ENV_UPSTREAM_PASSWORD": from_env}
        settings = load_settings(flags, env, config_path=config)
        assert settings.charger("CP-FILE") is not None
        assert from_file not in repr(settings) and from_env not in repr(settings)
        async with running(settings) as gateway:
            for station_id in passwords:
                async with charger_of(gateway, station_id) as charger:
                    assert (await charger.boot())["status"] == "Accepted"
                    await csms.wait_for("BootNotification", station_id=station_id)
        assert csms.refused == []  # the sim refuses any other password with HTTP 401
        assert csms.registered == {"CP-FILE", "CP-ENV"}
        assert csms.violations == []


async def test_a_station_without_a_password_is_refused_by_a_csms_requiring_one(
    pki: Pki, tmp_path: Path, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    async with CsmsSim(ssl=pki.csms_context(), passwords={}) as csms:
        settings = gateway_settings(csms, tmp_path, upstream_ca=str(pki.csms_ca.cert_path))
        async with running(settings) as gateway, charger_of(gateway, "CP-NONE"):
            await eventually(lambda: bool(csms.refused), "a refused handshake")
            await eventually(
                lambda: bool(logged(caplog, logging.ERROR, "no upstream password")), "the log"
            )
        assert csms.refused[0] == ("CP-NONE", 401)
        assert csms.connections == []


# ------------------------------------------------------------------------ profile 3


async def test_profile_3_client_certificates_per_station_or_shared(
    pki: Pki, tmp_path: Path, secrets: Secrets
) -> None:
    """A station with its own certificate presents it (CN = its id); every other one
    presents the gateway's shared certificate."""
    own_cert, own_key = pki.stations.issue_client(pki.directory, "CP-OWN")
    shared_cert, shared_key = pki.stations.issue_client(pki.directory, "gateway-shared")
    async with CsmsSim(ssl=pki.csms_context(client_certificates=True)) as csms:
        settings = gateway_settings(
            csms,
            tmp_path,
            upstream_ca=str(pki.csms_ca.cert_path),
            upstream_cert=str(shared_cert),
            upstream_key=str(shared_key),
            chargers=(
                ChargerConfig(
                    charge_point_id="CP-OWN", upstream_cert=str(own_cert), upstream_key=str(own_key)
                ),
            ),
        )
        async with running(settings) as gateway:
            for station_id in ("CP-OWN", "CP-SHARED"):
                async with charger_of(gateway, station_id) as charger:
                    assert (await charger.boot())["status"] == "Accepted"
        assert csms.client_identities == {"CP-OWN": "CP-OWN", "CP-SHARED": "gateway-shared"}
        assert csms.violations == []


async def test_profile_3_without_a_client_certificate_does_not_connect(
    pki: Pki, tmp_path: Path, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    async with CsmsSim(ssl=pki.csms_context(client_certificates=True)) as csms:
        settings = gateway_settings(csms, tmp_path, upstream_ca=str(pki.csms_ca.cert_path))
        async with running(settings) as gateway, charger_of(gateway, "CP-1"):
            await eventually(
                lambda: bool(logged(caplog, logging.WARNING, "requiring client certificates")),
                "a hint at the missing client certificate",
            )
        assert csms.connections == []


async def test_a_client_certificate_from_an_untrusted_ca_is_refused(
    pki: Pki, tmp_path: Path, secrets: Secrets
) -> None:
    rogue = make_ca(pki.directory, "rogue")
    cert, key = rogue.issue_client(pki.directory, "CP-1")
    async with CsmsSim(ssl=pki.csms_context(client_certificates=True)) as csms:
        settings = gateway_settings(
            csms,
            tmp_path,
            upstream_ca=str(pki.csms_ca.cert_path),
            upstream_cert=str(cert),
            upstream_key=str(key),
            upstream_wait=0.5,
        )
        async with running(settings) as gateway, charger_of(gateway, "CP-1") as charger:
            with pytest.raises(CallErrorReceived):
                await charger.boot()
        assert csms.connections == [] and csms.messages == []


# ------------------------------------------------------------------- wrong CSMS CA


async def test_a_csms_certificate_from_another_ca_is_not_trusted(
    pki: Pki, tmp_path: Path, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway trusts upstream_ca only: a CSMS certificate from another CA fails
    verification, nothing (no password either) is sent, the charger's boot is not
    accepted, and the log says why."""
    password = secrets.add("CP-1", "never-sent-password-0123")
    impostor = make_ca(pki.directory, "impostor")
    cert, key = impostor.issue_server(pki.directory)
    async with CsmsSim(ssl=server_context(cert, key), passwords={"CP-1": password}) as csms:
        settings = gateway_settings(
            csms,
            tmp_path,
            upstream_ca=str(pki.csms_ca.cert_path),
            upstream_wait=0.5,
            chargers=(ChargerConfig(charge_point_id="CP-1", upstream_password=Secret(password)),),
        )
        async with running(settings) as gateway, charger_of(gateway, "CP-1") as charger:
            with pytest.raises(CallErrorReceived) as refused:
                await charger.boot()
            assert refused.value.code == "InternalError"  # buffer mode: no CSMS, no boot
            assert metric(gateway, RECONNECTS, outcome="failed") >= 1
        errors = logged(caplog, logging.ERROR, "cannot verify the CSMS's certificate")
        assert errors and "unable to get local issuer certificate" in errors[0]
        assert csms.connections == [] and csms.refused == [] and csms.messages == []


async def test_a_csms_certificate_for_another_host_is_not_trusted(
    pki: Pki, tmp_path: Path, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = pki.csms_ca.issue_server(pki.directory, hosts=("csms.example.com",))
    async with CsmsSim(ssl=server_context(cert, key)) as csms:
        settings = gateway_settings(csms, tmp_path, upstream_ca=str(pki.csms_ca.cert_path))
        async with running(settings) as gateway, charger_of(gateway, "CP-1"):
            await eventually(
                lambda: bool(logged(caplog, logging.ERROR, "cannot verify the CSMS's")), "log"
            )
        assert "127.0.0.1" in logged(caplog, logging.ERROR, "cannot verify the CSMS's")[0]
        assert csms.connections == []


# ------------------------------------------------------------------ wrong password


async def test_a_wrong_password_is_refused_logged_counted_and_retried(
    pki: Pki, tmp_path: Path, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    right = secrets.add("CP-1", "the-right-password-0123")
    wrong = secrets.add("CP-1", "the-wrong-password-4567")
    async with CsmsSim(ssl=pki.csms_context(), passwords={"CP-1": right}) as csms:
        settings = gateway_settings(
            csms,
            tmp_path,
            upstream_ca=str(pki.csms_ca.cert_path),
            chargers=(ChargerConfig(charge_point_id="CP-1", upstream_password=Secret(wrong)),),
        )
        async with running(settings) as gateway, charger_of(gateway, "CP-1") as charger:
            await eventually(
                lambda: metric(gateway, RECONNECTS, outcome="unauthorized") >= 2,
                "reconnects counted as unauthorized",
            )
            assert len(csms.refused) >= 3 and set(csms.refused) == {("CP-1", 401)}
            assert metric(gateway, RECONNECTS, outcome="failed") == 0
            assert logged(
                caplog, logging.ERROR, "the CSMS refused station CP-1's credentials (HTTP 401)"
            )
            # Still retrying: once the CSMS accepts that password, the station comes up.
            assert csms.passwords is not None
            csms.passwords["CP-1"] = wrong
            await csms.wait_connected("CP-1")
            assert (await charger.boot())["status"] == "Accepted"
            assert metric(gateway, RECONNECTS, outcome="connected") == 1


async def test_profile_1_basic_auth_over_plain_ws_works_and_warns_once(
    tmp_path: Path, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    password = secrets.add("CP-1", "plain-ws-password-01234")
    async with CsmsSim(passwords={"CP-1": password}) as csms:
        settings = gateway_settings(
            csms,
            tmp_path,
            chargers=(ChargerConfig(charge_point_id="CP-1", upstream_password=Secret(password)),),
        )
        async with running(settings) as gateway, charger_of(gateway, "CP-1") as charger:
            assert (await charger.boot())["status"] == "Accepted"
        warnings = logged(caplog, logging.WARNING, "over plain ws://")
        assert len(warnings) == 1 and "CP-1" in warnings[0]
        assert csms.refused == []


# ------------------------------------------------------------------------ start-up


def test_a_key_that_does_not_match_its_certificate_fails_start_up(
    pki: Pki, tmp_path: Path, secrets: Secrets
) -> None:
    cert, _ = pki.stations.issue_client(pki.directory, "CP-1")
    _, other_key = pki.stations.issue_client(pki.directory, "CP-2")
    settings = Settings(
        upstream="wss://127.0.0.1:1/ocpp",
        state="memory://",
        upstream_ca=str(pki.csms_ca.cert_path),
        chargers=(
            ChargerConfig(
                charge_point_id="CP-1", upstream_cert=str(cert), upstream_key=str(other_key)
            ),
        ),
    )
    with pytest.raises(ConfigError) as failed:
        Gateway(settings)
    message = str(failed.value)
    assert 'chargers."CP-1": upstream_key' in message and str(other_key) in message
    assert "PRIVATE KEY" not in message and other_key.read_text() not in message


def test_an_unreadable_shared_key_fails_start_up(
    pki: Pki, tmp_path: Path, secrets: Secrets
) -> None:
    cert, key = pki.stations.issue_client(pki.directory, "gateway")
    garbage = "not a key: s3cr3t-material"
    key.write_text(garbage, encoding="utf-8")
    settings = Settings(
        upstream="wss://127.0.0.1:1/ocpp",
        state="memory://",
        upstream_ca=str(pki.csms_ca.cert_path),
        upstream_cert=str(cert),
        upstream_key=str(key),
    )
    with pytest.raises(ConfigError) as failed:
        Gateway(settings)
    message = str(failed.value)
    assert message.startswith("upstream_key:") and str(key) in message
    assert garbage not in message
