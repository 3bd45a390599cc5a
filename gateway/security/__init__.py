"""OCPP security profiles: charger passwords (profiles 1 and 2, HTTP Basic auth) and the
keys, CSRs and certificate identities of profile 3 (TLS client certificates).

Layer: bottom; imports nothing else from ``gateway``.
"""

from __future__ import annotations

from gateway.security.passwords import (
    PasswordHashError,
    ScryptHash,
    ScryptParams,
    VerifiedCache,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)
from gateway.security.pki import (
    certificate_identities,
    certificate_identity,
    generate_key,
    load_pem_certificate,
    station_csr,
    write_key_and_csr,
)

__all__ = [
    "PasswordHashError",
    "ScryptHash",
    "ScryptParams",
    "VerifiedCache",
    "certificate_identities",
    "certificate_identity",
    "generate_key",
    "hash_password",
    "load_pem_certificate",
    "needs_rehash",
    "parse_hash",
    "station_csr",
    "verify_password",
    "write_key_and_csr",
]
