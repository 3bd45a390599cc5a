"""A throw-away PKI for tests of the TLS security profiles (2 and 3), built with
``cryptography`` in a temporary directory: a root CA, server certificates with IP and
DNS subjectAltNames, client certificates whose CN is a charge point id, and the
``ssl.SSLContext`` objects both ends of a loopback connection need.

Keys are EC P-256: generating one takes well under a millisecond, so every test can
have its own CA and nothing is shared between tests. Validity is one day around now
unless ``not_before``/``not_after`` ask for an expired or not-yet-valid certificate.
Certificates carry subject and authority key identifiers and key usages, so they pass
OpenSSL's strict verification (VERIFY_X509_STRICT, default from Python 3.13) as well.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA", "client_context", "make_ca", "server_context"]

_SLACK = datetime.timedelta(hours=1)  # tolerate clock skew between "now" and the check
_LIFETIME = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class CA:
    """A self-signed root CA; ``cert_path`` is its PEM certificate (the trust anchor
    to give ``server_context(client_ca=...)`` or ``client_context(ca)``)."""

    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path

    def _issue(
        self,
        directory: Path,
        stem: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: Iterable[x509.GeneralName],
        not_before: datetime.datetime | None,
        not_after: datetime.datetime | None,
    ) -> tuple[Path, Path]:
        key = _key()
        start = not_before if not_before is not None else _now() - _SLACK
        end = not_after if not_after is not None else _now() + _LIFETIME
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        names = list(sans)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        # The serial keeps the files of several certificates for one name apart.
        unique = f"{stem}-{cert.serial_number % 16**8:08x}"
        cert_path, key_path = directory / f"{unique}.pem", directory / f"{unique}.key.pem"
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
        return cert_path, key_path

    def issue_server(
        self,
        directory: Path,
        hosts: Iterable[str] = ("127.0.0.1", "localhost"),
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[Path, Path]:
        """(cert_path, key_path) of a serverAuth certificate for ``hosts``: IP
        addresses become IP subjectAltNames, everything else DNS ones; the CN is the
        first host (A00.FR.510: the CSMS certificate's CN is its FQDN)."""
        hosts = list(hosts)
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
                x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
            ]
        )
        return self._issue(
            directory,
            f"{self.name}-server",
            subject,
            ExtendedKeyUsageOID.SERVER_AUTH,
            sans,
            not_before,
            not_after,
        )

    def issue_client(
        self,
        directory: Path,
        cn: str,
        *,
        organization: str = "Test CPO",
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[Path, Path]:
        """(cert_path, key_path) of a clientAuth certificate with subject O=organization,
        CN=cn and no subjectAltName, as a Charge Point certificate (A00.FR.404/405/511)."""
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )
        return self._issue(
            directory,
            f"{self.name}-client-{cn}",
            subject,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            (),
            not_before,
            not_after,
        )


def make_ca(directory: Path, name: str) -> CA:
    """A new self-signed root (CA:true, keyCertSign) named ``name``, written to
    ``<directory>/<name>-ca.pem`` (its key to ``<name>-ca.key.pem``)."""
    key = _key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - _SLACK)
        .not_valid_after(_now() + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}-ca.pem"
    _write_cert(cert_path, cert)
    _write_key(directory / f"{name}-ca.key.pem", key)
    return CA(name, cert, key, cert_path)


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A TLS >= 1.2 server context presenting ``cert``; with ``client_ca`` it requires a
    client certificate chaining to it (profile 3), without it asks for none (profile 2)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A TLS >= 1.2 client context trusting only ``ca``, checking the host name, and
    presenting ``cert``/``key`` when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context
