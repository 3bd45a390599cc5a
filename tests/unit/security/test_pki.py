"""Profile 3 on real sockets: a TLS handshake with client certificates names the charge
point by its subject CN, foreign or expired certificates are refused by the handshake
itself, and the CSRs the gateway makes for its upstream certificates are well formed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.security.pki import (
    certificate_identities,
    certificate_identity,
    generate_key,
    load_pem_certificate,
    station_csr,
    write_key_and_csr,
)
from tests.pki import CA, client_context, make_ca, server_context


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return make_ca(tmp_path, "Test CSO")


class Server:
    """A TLS server on 127.0.0.1 that answers b"ok" and keeps each peer's DER cert."""

    def __init__(self) -> None:
        self.peer_certs: list[bytes | None] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        self.peer_certs.append(ssl_object.getpeercert(binary_form=True))
        writer.write(b"ok")
        await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serving(context: ssl.SSLContext) -> AsyncIterator[Server]:
    server = Server()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=context)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


async def exchange(port: int, context: ssl.SSLContext, hostname: str = "localhost") -> bytes:
    """What the server sent before closing; raises when the handshake was refused (with
    TLS 1.3 the client learns of a refused client certificate on its first read)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=hostname
    )
    try:
        return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def assert_refused(server: Server, context: ssl.SSLContext) -> None:
    try:
        received = await exchange(server.port, context)
    except (ssl.SSLError, ConnectionError):
        received = b""
    assert received == b""
    assert server.peer_certs == []  # the handler never ran: no connection was accepted


async def test_a_client_certificate_names_the_charge_point(ca: CA, tmp_path: Path) -> None:
    server_cert, server_key = ca.issue_server(tmp_path)
    client_cert, client_key = ca.issue_client(tmp_path, "CP-1")
    context = server_context(server_cert, server_key, client_ca=ca.cert_path)
    async with serving(context) as server:
        client = client_context(ca.cert_path, client_cert, client_key)
        assert await exchange(server.port, client) == b"ok"
        assert await exchange(server.port, client, hostname="127.0.0.1") == b"ok"  # IP SAN
    der = server.peer_certs[0]
    assert der is not None
    cert = load_pem_certificate(der)
    assert certificate_identity(cert) == "CP-1"
    assert certificate_identities(cert) == {"CP-1"}
    assert cert == load_pem_certificate(client_cert.read_bytes())


async def test_a_client_certificate_from_another_ca_is_refused(ca: CA, tmp_path: Path) -> None:
    server_cert, server_key = ca.issue_server(tmp_path)
    other = make_ca(tmp_path / "other", "Other CSO")
    client_cert, client_key = other.issue_client(tmp_path, "CP-1")
    context = server_context(server_cert, server_key, client_ca=ca.cert_path)
    async with serving(context) as server:
        await assert_refused(server, client_context(ca.cert_path, client_cert, client_key))


@pytest.mark.parametrize("window", ["expired", "not yet valid"])
async def test_a_client_certificate_outside_its_validity_is_refused(
    ca: CA, tmp_path: Path, window: str
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    start, end = (now - 3 * day, now - day) if window == "expired" else (now + day, now + 3 * day)
    server_cert, server_key = ca.issue_server(tmp_path)
    client_cert, client_key = ca.issue_client(tmp_path, "CP-1", not_before=start, not_after=end)
    context = server_context(server_cert, server_key, client_ca=ca.cert_path)
    async with serving(context) as server:
        await assert_refused(server, client_context(ca.cert_path, client_cert, client_key))


async def test_profile_3_requires_a_client_certificate(ca: CA, tmp_path: Path) -> None:
    server_cert, server_key = ca.issue_server(tmp_path)
    context = server_context(server_cert, server_key, client_ca=ca.cert_path)
    async with serving(context) as server:
        await assert_refused(server, client_context(ca.cert_path))


async def test_profile_2_asks_for_no_client_certificate(ca: CA, tmp_path: Path) -> None:
    server_cert, server_key = ca.issue_server(tmp_path)
    async with serving(server_context(server_cert, server_key)) as server:
        assert await exchange(server.port, client_context(ca.cert_path)) == b"ok"
    assert server.peer_certs == [None]


def _self_signed(
    names: list[x509.NameAttribute[str]], sans: tuple[str, ...] = ()
) -> x509.Certificate:
    key = generate_key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(x509.Name(names))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if sans:
        san = x509.SubjectAlternativeName([x509.DNSName(name) for name in sans])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(key, hashes.SHA256())


def test_the_identity_is_the_single_subject_cn_and_never_a_san() -> None:
    cn = x509.NameAttribute(NameOID.COMMON_NAME, "CP-9")
    org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CPO")
    with_san = _self_signed([org, cn], sans=("CP-1",))
    assert certificate_identity(with_san) == "CP-9"
    assert certificate_identities(with_san) == {"CP-9", "CP-1"}
    assert certificate_identity(_self_signed([org])) is None
    two_cns = _self_signed([cn, x509.NameAttribute(NameOID.COMMON_NAME, "CP-1")])
    assert certificate_identity(two_cns) is None  # ambiguous: refused, not guessed
    assert certificate_identities(two_cns) == {"CP-9", "CP-1"}


def test_the_csr_names_the_station_and_is_signed() -> None:
    key = generate_key()
    assert isinstance(key.curve, ec.SECP256R1)
    csr = station_csr(key, "CP-1", organization="Example CSO", country="nl")
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    subject = csr.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["CP-1"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "Example CSO"
    ]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)] == ["NL"]
    assert csr.public_key() == key.public_key()
    assert len(csr.public_bytes(serialization.Encoding.PEM)) <= 5500  # SignCertificate csr


@pytest.mark.parametrize("station_id", ["", "x" * 65, "192.0.2.7", "::1", "wss://cp.example"])
def test_a_csr_refuses_a_cn_the_spec_forbids(station_id: str) -> None:
    with pytest.raises(ValueError):
        station_csr(generate_key(), station_id, organization="Example CSO")


def test_the_key_file_is_private_and_never_replaced_by_accident(tmp_path: Path) -> None:
    key_path, csr_path = write_key_and_csr(tmp_path, "CP-1", organization="Example CSO")
    assert (key_path.name, csr_path.name) == ("CP-1.key.pem", "CP-1.csr.pem")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key_pem = key_path.read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    key = serialization.load_pem_private_key(key_pem, password=None)
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    assert [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["CP-1"]

    with pytest.raises(FileExistsError):
        write_key_and_csr(tmp_path, "CP-1", organization="Example CSO")
    assert key_path.read_bytes() == key_pem

    write_key_and_csr(tmp_path, "CP-1", organization="Example CSO", overwrite=True)
    assert key_path.read_bytes() != key_pem
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    new_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    new_csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert new_csr.public_key() == new_key.public_key()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CP-1.csr.pem", "CP-1.key.pem"]


@pytest.mark.parametrize("station_id", ["../CP-1", ".hidden", "a/b", "a\\b"])
def test_a_station_id_cannot_escape_the_key_directory(tmp_path: Path, station_id: str) -> None:
    with pytest.raises(ValueError):
        write_key_and_csr(tmp_path / "keys", station_id, organization="Example CSO")
    assert not (tmp_path / "keys").exists()
