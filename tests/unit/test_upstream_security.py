"""UpstreamSecurityFactory: Basic auth headers, shared TLS contexts, start-up errors,
and passwords kept out of reprs, exceptions and logs."""

from __future__ import annotations

import base64
import logging
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.config import ChargerConfig, ConfigError, Secret, Settings
from gateway.transport.upstream_security import (
    WEBSOCKETS_LOGGER,
    UpstreamSecurity,
    UpstreamSecurityFactory,
    basic_authorization,
)
from tests.pki import CA, make_ca

PASSWORD = "pässwörd-0123456789-xyz"  # 2.0.1 BasicAuthPassword: 16 to 40 characters
TOKEN = base64.b64encode(f"CP-1:{PASSWORD}".encode()).decode("ascii")
WSS = "wss://csms.example.com/ocpp"


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return make_ca(tmp_path, "cpo")


def settings(upstream: str = WSS, **fields: object) -> Settings:
    return Settings(upstream=upstream, state="memory://", **fields)  # type: ignore[arg-type]


def station(station_id: str = "CP-1", **fields: object) -> ChargerConfig:
    return ChargerConfig(charge_point_id=station_id, **fields)  # type: ignore[arg-type]


def with_password(station_id: str = "CP-1", password: str = PASSWORD) -> ChargerConfig:
    return station(station_id, upstream_password=Secret(password))


# ---------------------------------------------------------------------- Basic auth


def test_the_authorization_header_is_basic_base64_of_id_colon_password_in_utf8() -> None:
    security = UpstreamSecurityFactory(settings(chargers=(with_password(),))).for_station("CP-1")
    assert security.headers == (("Authorization", f"Basic {TOKEN}"),)
    scheme, token = security.headers[0][1].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode("utf-8") == f"CP-1:{PASSWORD}"


def test_stations_without_a_password_send_no_header() -> None:
    factory = UpstreamSecurityFactory(settings(chargers=(with_password(),)))
    assert factory.for_station("CP-2").headers == ()
    assert factory.for_station("CP-1").headers != ()


def test_a_basic_auth_username_cannot_contain_a_colon() -> None:
    with pytest.raises(ValueError, match="':'") as refused:
        basic_authorization("CP:1", PASSWORD)
    assert PASSWORD not in str(refused.value)
    with pytest.raises(ConfigError, match="RFC 7617") as failed:
        UpstreamSecurityFactory(settings(chargers=(with_password("CP:1"),)))
    assert PASSWORD not in str(failed.value)


# ----------------------------------------------------------------------------- TLS


def test_ws_upstream_has_no_tls_context() -> None:
    factory = UpstreamSecurityFactory(settings("ws://csms:8080/ocpp", chargers=(with_password(),)))
    assert factory.for_station("CP-1").ssl is None
    assert factory.for_station("CP-2") == UpstreamSecurity()
    assert factory.contexts == {}


def test_wss_upstream_verifies_the_csms_with_tls_1_2_or_later(ca: CA) -> None:
    factory = UpstreamSecurityFactory(settings(upstream_ca=str(ca.cert_path)))
    context = factory.for_station("CP-1").ssl
    assert isinstance(context, ssl.SSLContext)
    assert context.protocol is ssl.PROTOCOL_TLS_CLIENT
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # Only the configured CA is trusted, not the system store as well.
    assert context.cert_store_stats()["x509_ca"] == 1


def test_without_upstream_ca_the_system_trust_store_is_used() -> None:
    context = UpstreamSecurityFactory(settings()).for_station("CP-1").ssl
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_stations_without_their_own_certificate_share_one_context(ca: CA, tmp_path: Path) -> None:
    shared_cert, shared_key = ca.issue_client(tmp_path, "gateway")
    own_cert, own_key = ca.issue_client(tmp_path, "CP-OWN")
    own = {"upstream_cert": str(own_cert), "upstream_key": str(own_key)}
    factory = UpstreamSecurityFactory(
        settings(
            upstream_ca=str(ca.cert_path),
            upstream_cert=str(shared_cert),
            upstream_key=str(shared_key),
            chargers=(
                with_password("CP-1"),
                station("CP-OWN", **own),
                station("CP-OWN-TOO", **own),  # the same files: the same context
            ),
        )
    )
    one, two, unknown = (factory.for_station(i).ssl for i in ("CP-1", "CP-2", "CP-9"))
    assert one is two is unknown is not None
    assert factory.for_station("CP-OWN").ssl is not one
    assert factory.for_station("CP-OWN").ssl is factory.for_station("CP-OWN-TOO").ssl
    assert len(factory.contexts) == 2
    assert factory.for_station("CP-2") is factory.for_station("CP-9")  # nothing per station


def test_thousands_of_stations_share_the_shared_context(ca: CA) -> None:
    chargers = tuple(with_password(f"CP-{n}", f"password-{n:06d}-abcdefgh") for n in range(2000))
    factory = UpstreamSecurityFactory(settings(upstream_ca=str(ca.cert_path), chargers=chargers))
    assert len({id(factory.for_station(f"CP-{n}").ssl) for n in range(2000)}) == 1
    assert len(factory.contexts) == 1


# ------------------------------------------------------------------ start-up errors


def shared_pair(ca: CA, tmp_path: Path) -> tuple[Path, Path]:
    return ca.issue_client(tmp_path, "gateway")


def factory_error(**fields: object) -> str:
    with pytest.raises(ConfigError) as failed:
        UpstreamSecurityFactory(settings(WSS, **fields))
    return str(failed.value)


def test_a_key_of_another_certificate_names_both_files(ca: CA, tmp_path: Path) -> None:
    cert, _ = shared_pair(ca, tmp_path)
    _, other_key = ca.issue_client(tmp_path, "other")
    message = factory_error(upstream_cert=str(cert), upstream_key=str(other_key))
    assert message.startswith("upstream_key:")
    assert str(other_key) in message and str(cert) in message
    assert "PRIVATE KEY" not in message


def test_a_station_key_that_is_not_pem_names_the_station_and_the_file(
    ca: CA, tmp_path: Path
) -> None:
    cert, key = ca.issue_client(tmp_path, "CP-1")
    key.write_text("sensitive-looking garbage\n", encoding="utf-8")
    message = factory_error(
        chargers=(station("CP-1", upstream_cert=str(cert), upstream_key=str(key)),)
    )
    assert message.startswith('chargers."CP-1": upstream_key:') and str(key) in message
    assert "garbage" not in message


def test_a_certificate_file_that_holds_no_certificate_is_named(ca: CA, tmp_path: Path) -> None:
    cert, key = shared_pair(ca, tmp_path)
    cert.write_bytes(key.read_bytes())  # a key where the certificate should be
    message = factory_error(upstream_cert=str(cert), upstream_key=str(key))
    assert message.startswith("upstream_cert:") and str(cert) in message
    assert "PRIVATE KEY" not in message


def test_an_encrypted_key_fails_instead_of_prompting_for_a_passphrase(
    ca: CA, tmp_path: Path
) -> None:
    cert, key = shared_pair(ca, tmp_path)
    loaded = serialization.load_pem_private_key(key.read_bytes(), None)
    key.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    message = factory_error(upstream_cert=str(cert), upstream_key=str(key))
    assert "encrypted" in message and str(key) in message


def test_a_ca_bundle_without_certificates_is_named(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("no certificates here\n", encoding="utf-8")
    message = factory_error(upstream_ca=str(bundle))
    assert message.startswith("upstream_ca:") and str(bundle) in message


def test_certificates_are_not_loaded_for_a_ws_upstream_but_a_warning_says_so(
    ca: CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = shared_pair(ca, tmp_path)
    caplog.set_level(logging.WARNING, logger="gateway")
    UpstreamSecurityFactory(
        settings("ws://csms/ocpp", upstream_cert=str(cert), upstream_key=str(key))
    )
    assert any("not used" in record.getMessage() for record in caplog.records)


# --------------------------------------------------------------------- no leaking


def test_reprs_mask_the_password(ca: CA) -> None:
    config = settings(upstream_ca=str(ca.cert_path), chargers=(with_password(),))
    security = UpstreamSecurityFactory(config).for_station("CP-1")
    for text in (repr(config), str(config), repr(security), str(security)):
        assert PASSWORD not in text and TOKEN not in text
    assert "('Authorization', '***')" in repr(security)


def test_basic_auth_over_ws_warns_once_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    chargers = (with_password("CP-1"), with_password("CP-2"), station("CP-3"))
    UpstreamSecurityFactory(settings("ws://csms/ocpp", chargers=chargers))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "plain ws://" in warnings[0] and "CP-1, CP-2" in warnings[0]
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_no_warning_for_basic_auth_over_wss(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    UpstreamSecurityFactory(settings(chargers=(with_password(),)))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_an_odd_password_length_warns_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    UpstreamSecurityFactory(settings(chargers=(with_password("CP-1", "short"),)))
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "16 to 40" in warning and "short" not in warning


def test_websockets_header_dump_masks_authorization(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets.client")
    WEBSOCKETS_LOGGER.debug("> %s: %s", "Authorization", f"Basic {TOKEN}")
    WEBSOCKETS_LOGGER.debug("> %s: %s", "proxy-authorization", f"Basic {TOKEN}")
    WEBSOCKETS_LOGGER.debug("> %s: %s", "Host", "csms.example.com")
    assert [r.getMessage() for r in caplog.records] == [
        "> Authorization: ***",
        "> proxy-authorization: ***",
        "> Host: csms.example.com",
    ]
    assert all(r.name == "websockets.client" for r in caplog.records)
