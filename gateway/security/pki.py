"""Keys, CSRs and certificate identities for security profile 3 (TLS client certificates).

Layer: bottom; imports nothing from ``gateway``. File I/O only in
:func:`write_key_and_csr`.

Two directions use it. Downstream, a 1.6 charger presents its Charge Point certificate
and :func:`certificate_identity` says which charge point it names. Upstream, the gateway
is the 2.0.1 Charging Station towards the CSMS and needs a client certificate per
station: :func:`write_key_and_csr` makes the key and the CSR the CSMS's CA signs.

The spec rules followed (1.6 Security Whitepaper edition 2, section 2.5 and 2.6; the
2.0.1 Part 2 A00 tables carry the same numbers as far as we could check):

- A00.FR.404/405: the CSMS checks that the subject O contains the CPO/CSO name and the
  subject CN the unique serial number of the station; A00.FR.511: that CN is not a URL
  or an IP address, and a dNSName subjectAltName SHOULD NOT be used for it.
- A00.FR.501-503: keys worth at least 112 symmetric bits, i.e. EC >= 224 bits or
  RSA >= 2048; A00.FR.506: SHA-256. P-256 satisfies both and keeps handshakes cheap.

The gateway assumes the station id (the last path segment of the OCPP URL, and the
Basic auth username) is that serial number/identity, as the whitepaper's profile 3
does: one identity per station, in the URL and in the certificate.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

_UB_NAME = 64  # X.520 upper bound of commonName and organizationName (RFC 5280 App. A)


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 (secp256r1) key: allowed by A00.FR.503 (EC >= 224 bits) and by the
    cipher suites both specs require (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)."""
    return ec.generate_private_key(ec.SECP256R1())


def _check_station_id(station_id: str) -> None:
    if not 1 <= len(station_id) <= _UB_NAME:
        raise ValueError(f"a station id in a certificate CN must be 1 to {_UB_NAME} characters")
    if "://" in station_id:
        raise ValueError("a Charging Station certificate CN must not be a URL (A00.FR.511)")
    try:
        ipaddress.ip_address(station_id)
    except ValueError:
        return
    raise ValueError("a Charging Station certificate CN must not be an IP address (A00.FR.511)")


def station_csr(
    key: ec.EllipticCurvePrivateKey,
    station_id: str,
    *,
    organization: str,
    country: str | None = None,
) -> x509.CertificateSigningRequest:
    """A CSR (RFC 2986) for the station's Charging Station certificate, signed SHA-256.

    Subject: [C=country,] O=organization, CN=station_id. O is the CSO name the CSMS
    checks (A00.FR.404; in 2.0.1 the station's SecurityCtrlr.OrganizationName), CN the
    station identity (A00.FR.405). No subjectAltName (A00.FR.511) and no extension
    requests: key usage is the CA's to set (A00.FR.512), and some CAs refuse CSRs whose
    requested extensions they do not know. A P-256 CSR in PEM is about 450 characters,
    well inside SignCertificateRequest's 5500.
    """
    _check_station_id(station_id)
    if not 1 <= len(organization) <= _UB_NAME:
        raise ValueError(f"organization must be 1 to {_UB_NAME} characters")
    attributes: list[x509.NameAttribute[str]] = []
    if country is not None:
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            raise ValueError("country must be a two-letter ISO 3166 code")
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country.upper()))
    attributes += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, station_id),
    ]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    return builder.sign(key, hashes.SHA256())


def _station_file(directory: Path, station_id: str, suffix: str) -> Path:
    # The id becomes a file name: refuse what would leave the directory or hide the file.
    if not station_id or station_id.startswith(".") or any(c in station_id for c in "/\\\0"):
        raise ValueError("station id cannot be used as a file name")
    return directory / f"{station_id}{suffix}"


def write_key_and_csr(
    directory: Path,
    station_id: str,
    *,
    organization: str,
    country: str | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Generate a key and a CSR for ``station_id``: ``<id>.key.pem`` and ``<id>.csr.pem``.

    The key is PKCS#8 PEM, unencrypted, mode 0600 from the moment it exists (created
    with O_EXCL, never chmod-ed afterwards): the gateway must read it unattended at
    every start, so a passphrase would only move the secret next to it. Encrypt at rest
    with the platform instead (encrypted volume, secret store mount).

    An existing key is not replaced unless ``overwrite``: it may be the one a signed
    certificate belongs to. With ``overwrite``, the new key is written under a
    temporary name and renamed over the old one, so a crash leaves one or the other.
    """
    key_path = _station_file(directory, station_id, ".key.pem")
    csr_path = _station_file(directory, station_id, ".csr.pem")
    if not overwrite and key_path.exists():
        raise FileExistsError(f"{key_path} exists; pass overwrite=True to replace the key")
    key = generate_key()
    csr = station_csr(key, station_id, organization=organization, country=country)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # only if missing: no chmod
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    target = key_path.with_name(key_path.name + ".tmp") if overwrite else key_path
    if overwrite:
        target.unlink(missing_ok=True)  # a leftover from a crash: its mode is unknown
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
        out.flush()
        os.fsync(out.fileno())
    if overwrite:
        os.replace(target, key_path)
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return key_path, csr_path


def load_pem_certificate(der_or_pem: bytes) -> x509.Certificate:
    """The first certificate in ``der_or_pem``: PEM when it has a PEM header, else DER
    (what ``SSLObject.getpeercert(binary_form=True)`` returns)."""
    if b"-----BEGIN" in der_or_pem:
        return x509.load_pem_x509_certificate(der_or_pem)
    return x509.load_der_x509_certificate(der_or_pem)


def certificate_identity(cert: x509.Certificate) -> str | None:
    """The charge point identity a client certificate names, for profile 3: its subject
    CN, or None when the subject has no CN or more than one.

    The rule is strict on purpose (A00.FR.405/511): the charge point id must equal this
    value exactly, case and all. subjectAltNames are ignored: the spec says a dNSName
    SHOULD NOT be used in a Charge Point certificate, and honouring one would let a
    certificate issued for a host name stand in for a station. Two CNs are refused
    rather than one picked, since "first" and "most specific" (RFC 6125) disagree.
    """
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def certificate_identities(cert: x509.Certificate) -> frozenset[str]:
    """Every name in ``cert``: subject CNs and dNSName subjectAltNames. For diagnostics
    ("the certificate names X, not Y"), never for authorisation; that is
    :func:`certificate_identity`'s single CN."""
    names = {
        attribute.value
        for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if isinstance(attribute.value, str)
    }
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return frozenset(names)
    if isinstance(san.value, x509.SubjectAlternativeName):
        names.update(san.value.get_values_for_type(x509.DNSName))
    return frozenset(names)
