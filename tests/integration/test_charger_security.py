"""Charger-side security profiles (1.6 Security Whitepaper) and abuse limits, over real
websockets and real TLS on loopback, with certificates made in the test.

Every refusal path has a test here: the handshake answer, the metric, and the log line,
which never carries a secret (checked on every captured record, see ``no_secrets``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from gateway.app import Gateway
from gateway.config import ChargerConfig, ConfigError, Settings
from gateway.security import hash_password, verify_password
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.state import CredentialRecord
from tests.pki import CA, client_context, make_ca
from tests.redis_server import redis_server

from .conftest import gateway_settings
from .helpers import metric

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Passw0rd-17"
OTHER_PASSWORD = "an0ther-Passw0rd-22"
NEW_PASSWORD = "rotated-Passw0rd-33"
SECRETS = (PASSWORD, OTHER_PASSWORD, NEW_PASSWORD, NEW_PASSWORD.encode().hex())


@pytest.fixture(autouse=True)
def no_secrets(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No log line of any test here contains a password, its hex form or a Basic token."""
    caplog.set_level(logging.DEBUG, logger="gateway")
    yield
    tokens = [
        base64.b64encode(f"{cp}:{secret}".encode()).decode()
        for cp in ("CP-1", "CP-2", "CP-3")
        for secret in SECRETS
    ]
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for secret in (*SECRETS, *tokens):
            assert secret not in text, f"a secret leaked into the log: {record.getMessage()!r}"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def pki(tmp_path: Path) -> CA:
    return make_ca(tmp_path / "pki", "CPO")


def refusals(gateway: Gateway, outcome: str) -> float:
    return metric(gateway, "ocpp_gateway_charger_handshakes_total", outcome=outcome)


async def status_of_handshake(url: str, **kwargs: object) -> int:
    """The HTTP status a refused handshake got (fails the test if it was accepted)."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=["ocpp1.6"], **kwargs):  # type: ignore[list-item,arg-type]
            pass
    return refused.value.response.status_code


def url_of(gateway: Gateway, *, tls: bool = False) -> str:
    return f"{'wss' if tls else 'ws'}://127.0.0.1:{gateway.charger_port}/ocpp"


def basic(charge_point_id: str, password: str) -> tuple[str, str]:
    token = base64.b64encode(f"{charge_point_id}:{password}".encode()).decode()
    return ("Authorization", f"Basic {token}")


# ------------------------------------------------------------------ profile 1: Basic auth


async def test_profile_1_admits_the_right_password_and_refuses_everything_else(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
) -> None:
    gateway = await make_gateway(
        security_profile="1",
        chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),),
    )
    url = url_of(gateway)
    charger = chargers(url, "CP-1", password=PASSWORD)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"

    cases = {
        "wrong password": [basic("CP-1", OTHER_PASSWORD)],
        "no header": [],
        "unknown charger": [basic("CP-2", PASSWORD)],
        "username is another charger": [basic("CP-2", PASSWORD)],
        "not Basic": [("Authorization", "Bearer abc")],
        "malformed token": [("Authorization", "Basic !!!")],
    }
    paths = {"unknown charger": "CP-2", "username is another charger": "CP-1"}
    for case, headers in cases.items():
        before = refusals(gateway, "refused_unauthorized")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{url}/{paths.get(case, 'CP-1')}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
            ):
                pass
        response = refused.value.response
        assert response.status_code == 401, case
        assert response.headers["WWW-Authenticate"].startswith("Basic realm="), case
        assert refusals(gateway, "refused_unauthorized") == before + 1, case
    assert charger.connected, "the refusals did not touch the admitted charger"
    await charger.heartbeat()


async def test_a_stored_credential_wins_over_the_config_file(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
) -> None:
    """`ocpp-gateway credentials` writes the store; a rotation there survives the old file."""
    gateway = await make_gateway(
        security_profile="1",
        chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),),
    )
    await gateway.store.put_credential(CredentialRecord("CP-1", (hash_password(OTHER_PASSWORD),)))
    url = url_of(gateway)
    assert (
        await status_of_handshake(f"{url}/CP-1", additional_headers=[basic("CP-1", PASSWORD)])
        == 401
    )
    charger = chargers(url, "CP-1", password=OTHER_PASSWORD)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"


async def test_auto_is_profile_0_without_credentials_and_1_with_them(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    open_gateway = await make_gateway()  # security_profile auto, no credential anywhere
    assert open_gateway.authenticator.default_profile == 0
    assert any("authentication is off" in r.getMessage() for r in caplog.records)
    anyone = chargers(url_of(open_gateway), "CP-3")
    await anyone.connect()
    assert (await anyone.boot())["status"] == "Accepted"

    guarded = await make_gateway(
        chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),)
    )
    assert guarded.authenticator.default_profile == 1
    assert await status_of_handshake(f"{url_of(guarded)}/CP-3") == 401


async def test_a_charger_can_be_left_on_profile_0_explicitly(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
) -> None:
    gateway = await make_gateway(
        security_profile="1",
        chargers=(
            ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),
            ChargerConfig(charge_point_id="CP-3", security_profile=0),
        ),
    )
    legacy = chargers(url_of(gateway), "CP-3")
    await legacy.connect()
    assert (await legacy.boot())["status"] == "Accepted"
    assert await status_of_handshake(f"{url_of(gateway)}/CP-2") == 401


# ---------------------------------------------------------- rotation of AuthorizationKey


async def test_a_new_basic_auth_password_from_the_csms_rotates_without_lock_out(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    password_hash: str,
) -> None:
    """SetVariables(SecurityCtrlr.BasicAuthPassword) reaches the charger as
    ChangeConfiguration(AuthorizationKey, hex); the gateway's stored hash follows. Until
    the charger logs in with the new password the old one still works; after, only the
    new one does (both its raw and hex forms, as chargers differ)."""
    gateway = await make_gateway(
        security_profile="1",
        chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),),
    )
    url = url_of(gateway)
    charger = chargers(url, "CP-1", password=PASSWORD)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    answer = await csms.call(
        "CP-1",
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "attributeValue": NEW_PASSWORD,
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert (
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": NEW_PASSWORD.encode().hex()},
    ) in charger.received_calls

    record = await gateway.store.get_credential("CP-1")
    assert record is not None
    assert verify_password(NEW_PASSWORD, record.password_hashes[0])
    assert verify_password(NEW_PASSWORD.encode().hex(), record.password_hashes[1])
    assert [verify_password(PASSWORD, h) for h in record.previous_hashes] == [True]

    # The charger reconnects before applying the key: the old password still works.
    await charger.close()
    await charger.connect()
    await charger.heartbeat()
    # Then with the key's raw bytes (1.6J §7): accepted, and the rotation completes.
    await charger.close()
    charger.password = bytes.fromhex(NEW_PASSWORD.encode().hex())
    await charger.connect()
    await charger.heartbeat()
    record = await gateway.store.get_credential("CP-1")
    assert record is not None and record.previous_hashes == ()
    assert (
        await status_of_handshake(f"{url}/CP-1", additional_headers=[basic("CP-1", PASSWORD)])
        == 401
    )


# ------------------------------------------------------------------ profiles 2 and 3: TLS


def tls_settings(pki: CA, tmp_path: Path, **more: object) -> dict[str, object]:
    cert, key = pki.issue_server(tmp_path / "pki")
    return {"tls_cert": str(cert), "tls_key": str(key), **more}


async def test_profile_2_is_basic_auth_over_tls(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
    pki: CA,
    tmp_path: Path,
) -> None:
    gateway = await make_gateway(
        security_profile="2",
        chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),),
        **tls_settings(pki, tmp_path),
    )
    url = url_of(gateway, tls=True)
    trusting = client_context(pki.cert_path)
    charger = chargers(url, "CP-1", password=PASSWORD, ssl=trusting)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    assert (
        await status_of_handshake(
            f"{url}/CP-1", ssl=trusting, additional_headers=[basic("CP-1", OTHER_PASSWORD)]
        )
        == 401
    )
    # A charger that does not trust the gateway's CA stops at the TLS handshake.
    stranger = make_ca(tmp_path / "other", "Elsewhere")
    with pytest.raises(ssl.SSLCertVerificationError):
        async with connect(f"{url}/CP-1", ssl=client_context(stranger.cert_path)):
            pass
    # Plain ws to a TLS listener is not a websocket handshake at all.
    with pytest.raises(InvalidMessage):  # the TLS listener answers no HTTP
        async with connect(f"ws://127.0.0.1:{gateway.charger_port}/ocpp/CP-1", open_timeout=5):
            pass


async def test_profile_3_admits_the_certificate_of_the_charge_point_only(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    pki: CA,
    tmp_path: Path,
) -> None:
    gateway = await make_gateway(
        security_profile="3",
        **tls_settings(pki, tmp_path, tls_client_ca=str(pki.cert_path)),
    )
    url = url_of(gateway, tls=True)
    own = pki.issue_client(tmp_path / "pki", "CP-1")
    charger = chargers(url, "CP-1", ssl=client_context(pki.cert_path, *own))
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"

    before = refusals(gateway, "refused_certificate")
    other = pki.issue_client(tmp_path / "pki", "CP-2")
    assert (
        await status_of_handshake(f"{url}/CP-1", ssl=client_context(pki.cert_path, *other)) == 403
    )
    assert await status_of_handshake(f"{url}/CP-1", ssl=client_context(pki.cert_path)) == 403
    assert refusals(gateway, "refused_certificate") == before + 2
    # A certificate from a CA the gateway does not trust fails the TLS handshake itself.
    rogue_ca = make_ca(tmp_path / "rogue", "Rogue")
    rogue = rogue_ca.issue_client(tmp_path / "rogue", "CP-1")
    with pytest.raises((ssl.SSLError, ConnectionClosed, OSError, InvalidMessage)):
        async with connect(
            f"{url}/CP-1", ssl=client_context(pki.cert_path, *rogue), open_timeout=5
        ) as ws:
            await ws.recv()  # TLS 1.3: the refusal arrives on the first read


async def test_one_tls_listener_serves_profile_2_and_a_profile_3_override(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
    pki: CA,
    tmp_path: Path,
) -> None:
    gateway = await make_gateway(
        security_profile="2",
        chargers=(
            ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),
            ChargerConfig(charge_point_id="CP-3", security_profile=3),
        ),
        **tls_settings(pki, tmp_path, tls_client_ca=str(pki.cert_path)),
    )
    url = url_of(gateway, tls=True)
    by_password = chargers(url, "CP-1", password=PASSWORD, ssl=client_context(pki.cert_path))
    await by_password.connect()
    by_certificate = chargers(
        url, "CP-3", ssl=client_context(pki.cert_path, *pki.issue_client(tmp_path / "pki", "CP-3"))
    )
    await by_certificate.connect()
    assert (await by_password.boot())["status"] == "Accepted"
    assert (await by_certificate.boot())["status"] == "Accepted"
    # CP-3 with a password but no certificate: its profile wants the certificate.
    assert (
        await status_of_handshake(
            f"{url}/CP-3",
            ssl=client_context(pki.cert_path),
            additional_headers=[basic("CP-3", PASSWORD)],
        )
        == 403
    )


def test_profiles_and_listener_transport_must_agree(csms: CsmsSim, tmp_path: Path, pki: CA) -> None:
    with pytest.raises(ConfigError, match="profile 2 cannot be served"):
        gateway_settings(csms, tmp_path, security_profile="2")
    with pytest.raises(ConfigError, match="profile 1 cannot be served"):
        gateway_settings(csms, tmp_path, security_profile="1", **tls_settings(pki, tmp_path))
    with pytest.raises(ConfigError, match="needs tls_client_ca"):
        gateway_settings(csms, tmp_path, security_profile="3", **tls_settings(pki, tmp_path))
    with pytest.raises(ConfigError, match="password_hash"):
        Gateway(
            gateway_settings(
                csms,
                tmp_path,
                chargers=(ChargerConfig(charge_point_id="CP-1", password_hash="$scrypt$broken"),),
            )
        )


# ------------------------------------------------------------------------------ limits


async def test_connections_per_address_and_overall_are_capped(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
) -> None:
    per_address = await make_gateway(max_connections_per_address=1)
    first = chargers(url_of(per_address), "CP-1")
    await first.connect()
    assert await status_of_handshake(f"{url_of(per_address)}/CP-2") == 429
    assert (
        metric(per_address, "ocpp_gateway_limit_breaches_total", limit="connections_per_address")
        == 1
    )

    overall = await make_gateway(max_connections=1)
    one = chargers(url_of(overall), "CP-4")
    await one.connect()
    assert await status_of_handshake(f"{url_of(overall)}/CP-5") == 503
    assert metric(overall, "ocpp_gateway_limit_breaches_total", limit="connections") == 1
    # The one connected charger is unaffected; once it has left, another gets in.
    assert (await one.boot())["status"] == "Accepted"
    await one.close()
    await overall.wait_until_gone("CP-4")
    later = chargers(url_of(overall), "CP-5")
    await later.connect()
    assert (await later.boot())["status"] == "Accepted"


async def test_a_charger_flooding_frames_is_closed_with_1008_alone(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
) -> None:
    gateway = await make_gateway(max_message_rate=1.0, message_burst=5)
    flooder = chargers(url_of(gateway), "CP-1")
    bystander = chargers(url_of(gateway), "CP-2")
    await flooder.connect()
    await bystander.connect()
    async with connect(f"{url_of(gateway)}/CP-3", subprotocols=["ocpp1.6"]) as raw:  # type: ignore[list-item]
        for index in range(20):
            try:
                await raw.send(f'[2,"{index}","Heartbeat",{{}}]')
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await raw.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert metric(gateway, "ocpp_gateway_limit_breaches_total", limit="message_rate") == 1
    assert (await bystander.boot())["status"] == "Accepted"


async def test_an_oversized_frame_is_counted_as_a_limit_breach(
    make_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    gateway = await make_gateway(max_frame_bytes=1024)
    async with connect(f"{url_of(gateway)}/CP-1", subprotocols=["ocpp1.6"]) as raw:  # type: ignore[list-item]
        await raw.send('[2,"0","Heartbeat",{}]')
        assert '"currentTime"' in str(await raw.recv())  # the session is up
        await raw.send('[2,"1","DataTransfer",{"vendorId":"' + "x" * 2048 + '"}]')
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # whatever the gateway had already sent comes first
                await raw.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await gateway.wait_until_gone("CP-1")
    assert metric(gateway, "ocpp_gateway_limit_breaches_total", limit="frame_size") == 1


async def test_a_handshake_that_never_comes_is_cut_off(
    make_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    """A client that connects and sends nothing is dropped after handshake_timeout (the
    read below returns only because the server closed the socket)."""
    gateway = await make_gateway(handshake_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.charger_port)
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()
    assert metric(gateway, "ocpp_gateway_limit_breaches_total", limit="handshake_timeout") == 1


def test_settings_refuse_negative_limits(csms: CsmsSim, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        gateway_settings(csms, tmp_path, max_connections=-1)
    with pytest.raises(ConfigError):
        gateway_settings(csms, tmp_path, handshake_timeout=0)
    assert isinstance(gateway_settings(csms, tmp_path, max_message_rate=0), Settings)


def test_check_config_loads_the_tls_files_and_password_hashes(
    tmp_path: Path, pki: CA, password_hash: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check-config` fails where `serve` would: a key that is not the certificate's, a
    broken password_hash (named by charger, never echoed)."""
    from gateway.cli import main  # noqa: PLC0415

    cert, key = pki.issue_server(tmp_path / "pki")
    _, other_key = pki.issue_server(tmp_path / "pki")
    base = ["check-config", "--upstream", "ws://127.0.0.1:1", "--state", "memory://"]
    good = tmp_path / "good.toml"
    good.write_text(f'[chargers."CP-1"]\npassword_hash = "{password_hash}"\n')
    assert main([*base, "--config", str(good), "--tls-cert", str(cert), "--tls-key", str(key),
                 "--security-profile", "2"]) == 0  # fmt: skip
    assert "security OK: charger listener wss, profile 2" in capsys.readouterr().out
    assert main([*base, "--tls-cert", str(cert), "--tls-key", str(other_key)]) == 2
    assert "tls_cert/tls_key" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text('[chargers."CP-1"]\npassword_hash = "$scrypt$ln=99,r=8,p=1$AAAA$AAAA"\n')
    assert main([*base, "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert 'chargers."CP-1": password_hash' in err and "AAAA" not in err


async def test_credentials_that_cannot_be_read_refuse_the_charger_for_now(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    password_hash: str,
    tmp_path: Path,
) -> None:
    """The state store (a real private Redis) goes away: a charger whose password cannot
    be checked gets 503, counted, and is not let in unchecked."""
    with redis_server(tmp_path) as url:
        gateway = await make_gateway(
            state=url,
            security_profile="1",
            chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),),
        )
        admitted = chargers(url_of(gateway), "CP-2", password=PASSWORD)
        await gateway.store.put_credential(CredentialRecord("CP-2", (password_hash,)))
        await admitted.connect()
    # The server is stopped: the store cannot be read any more.
    status = await status_of_handshake(
        f"{url_of(gateway)}/CP-1", additional_headers=[basic("CP-1", PASSWORD)]
    )
    assert status == 503
    assert refusals(gateway, "refused_state_unavailable") == 1


async def test_a_profile_the_transport_cannot_carry_is_refused(
    csms: CsmsSim, tmp_path: Path, password_hash: str
) -> None:
    """Defensive: the config refuses such a setup, but the check does not rely on it. A
    profile 1 charger arriving over TLS, or a profile 2 one over plain ws, gets 403."""
    settings = gateway_settings(
        csms,
        tmp_path,
        state="memory://",
        security_profile="1",
        chargers=(ChargerConfig(charge_point_id="CP-1", password_hash=password_hash),),
    )
    gateway = Gateway(settings)
    await gateway.store.open()
    await gateway.authenticator.resolve_default_profile()
    refusal = await gateway.authenticator.check("CP-1", None, None, tls=True)
    assert refusal is not None
    assert (refusal.status, refusal.outcome) == (403, "refused_profile")
    await gateway.store.close()
