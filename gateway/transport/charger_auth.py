"""Who may connect as which charger: OCPP 1.6 security profiles 0-3 at the handshake.

Layer: transport. Decides one websocket handshake from its path identity, its
``Authorization`` header and its TLS client certificate; the server turns a refusal
into the HTTP answer, a metric and a log line.

The profiles (OCPP 1.6 Security Whitepaper ed. 2, §2; 2.0.1 Part 2 A00):

- 0: no authentication (only when chosen, or when no charger credential exists at all);
- 1: HTTP Basic auth over plain ws, username = the charge point id;
- 2: the same over TLS (the listener's certificate authenticates the gateway);
- 3: TLS with a client certificate whose subject CN is the charge point id; no password.

Passwords are compared as KDF hashes (:mod:`gateway.security.passwords`): the stored
record of ``ocpp-gateway credentials`` wins over ``password_hash`` in the config file.
An unknown charger costs the same KDF as a wrong password, so the answer time does
not tell an attacker which ids exist, and both get the same 401.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Final

from gateway.config import ConfigError, Settings
from gateway.security import PasswordHashError, VerifiedCache, certificate_identity, parse_hash
from gateway.security import hash_password as _hash_password
from gateway.security.pki import load_pem_certificate
from gateway.state import CredentialRecord, StateError, Store

log = logging.getLogger(__name__)

TLS_PROFILES: Final = frozenset({2, 3})
BASIC_AUTH_PROFILES: Final = frozenset({1, 2})
# Verified against when the charger is unknown: the same work as a real check.
_DUMMY_HASH: Final = _hash_password(b"no charger has this password")
_REALM: Final = 'Basic realm="ocpp-gateway", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused: the HTTP status, the metric outcome label, the log
    text (never a secret) and the body the charger gets."""

    status: HTTPStatus
    outcome: str
    reason: str
    body: str

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("WWW-Authenticate", _REALM),) if self.status is HTTPStatus.UNAUTHORIZED else ()


def _unauthorized(reason: str) -> Refusal:
    # One body for every 401: it must not tell which part was wrong.
    return Refusal(
        HTTPStatus.UNAUTHORIZED,
        "refused_unauthorized",
        reason,
        "HTTP Basic authentication with the charge point id and its password is required.\n",
    )


def basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """(username, password bytes) of a ``Basic`` Authorization header; None if absent or
    malformed. The password stays bytes: a 1.6 AuthorizationKey is binary (1.6J §7)."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class ChargerAuthenticator:
    def __init__(self, settings: Settings, store: Store, cache: VerifiedCache | None = None):
        self._settings = settings
        self._store = store
        self._cache = cache or VerifiedCache()
        self.default_profile = 0  # settled by resolve_default_profile()
        for charger in settings.chargers:
            if charger.password_hash is not None:
                try:
                    parse_hash(charger.password_hash)
                except PasswordHashError as exc:
                    raise ConfigError(
                        f'chargers."{charger.charge_point_id}": password_hash: {exc}'
                    ) from None

    async def resolve_default_profile(self) -> int:
        """Settle ``--security-profile auto``: 2 on a TLS listener, else 1 when any
        charger credential exists (config or store), else 0. Call once at start-up."""
        chosen = self._settings.security_profile
        if chosen != "auto":
            self.default_profile = int(chosen)
        elif self._settings.tls:
            self.default_profile = 2
        elif any(c.password_hash for c in self._settings.chargers) or (
            await self._store.list_credentials()
        ):
            self.default_profile = 1
        else:
            self.default_profile = 0
        return self.default_profile

    def profile_for(self, station_id: str) -> int:
        charger = self._settings.charger(station_id)
        if charger is not None and charger.security_profile is not None:
            return charger.security_profile
        return self.default_profile

    async def check(
        self,
        station_id: str,
        authorization: str | None,
        peer_certificate: bytes | None,
        *,
        tls: bool,
    ) -> Refusal | None:
        """None when the charger may connect as ``station_id``; else why not.

        ``peer_certificate`` is the DER client certificate the TLS layer verified against
        ``tls_client_ca`` (None when none was presented).
        """
        profile = self.profile_for(station_id)
        if (profile in TLS_PROFILES) != tls:
            return Refusal(
                HTTPStatus.FORBIDDEN,
                "refused_profile",
                f"security profile {profile} does not allow {'TLS' if tls else 'plain ws'}",
                f"This charger must connect with security profile {profile}.\n",
            )
        if profile == 0:
            return None
        if profile == 3:
            return self._check_certificate(station_id, peer_certificate)
        return await self._check_password(station_id, authorization)

    def _check_certificate(self, station_id: str, der: bytes | None) -> Refusal | None:
        if der is None:
            return Refusal(
                HTTPStatus.FORBIDDEN,
                "refused_certificate",
                "no client certificate (security profile 3)",
                "A client certificate is required (security profile 3).\n",
            )
        identity = certificate_identity(load_pem_certificate(der))
        if identity != station_id:
            return Refusal(
                HTTPStatus.FORBIDDEN,
                "refused_certificate",
                f"the client certificate is for {identity!r}, not for this charge point",
                "The client certificate is not for this charge point.\n",
            )
        return None

    async def _check_password(self, station_id: str, authorization: str | None) -> Refusal | None:
        credentials = basic_credentials(authorization)
        if credentials is None:
            return _unauthorized(
                "no Authorization header" if authorization is None else "malformed Basic auth"
            )
        username, password = credentials
        record = await self._record(station_id)
        if record is None or username != station_id:
            # Same KDF cost as a real check (no timing oracle for which ids exist).
            await self._cache.verify(station_id, password, _DUMMY_HASH)
            if record is None:
                return _unauthorized("no password is registered for this charge point")
            return _unauthorized("the Basic auth username is not the charge point id")
        for encoded in record.password_hashes:
            if await self._verified(station_id, password, encoded):
                if record.previous_hashes:
                    await self._finish_rotation(record)
                return None
        for encoded in record.previous_hashes:
            if await self._verified(station_id, password, encoded):
                log.info("charger logged in with its previous password: rotation pending")
                return None
        return _unauthorized("wrong password")

    async def _verified(self, station_id: str, password: bytes, encoded: str) -> bool:
        try:
            return await self._cache.verify(station_id, password, encoded)
        except PasswordHashError as exc:
            log.error("the stored password hash of this charger is unusable: %s", exc)
            return False

    async def _record(self, station_id: str) -> CredentialRecord | None:
        """The stored record, else one made of the config file's password_hash."""
        record = await self._store.get_credential(station_id)
        if record is not None:
            return record
        charger = self._settings.charger(station_id)
        if charger is not None and charger.password_hash is not None:
            return CredentialRecord(station_id, (charger.password_hash,))
        return None

    async def _finish_rotation(self, record: CredentialRecord) -> None:
        """The charger proved it has the new password: the old one stops working."""
        try:
            await self._store.put_credential(
                replace(record, previous_hashes=(), updated_at=time.time())
            )
        except StateError:
            log.warning("cannot drop the previous password of this charger; retried next login")
        else:
            log.info("charger logged in with its new password: rotation complete")


def store_unavailable() -> Refusal:
    return Refusal(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "refused_state_unavailable",
        "the state store is unreachable, so the credentials cannot be checked",
        "The gateway cannot check credentials right now; connect again later.\n",
    )


__all__ = ["ChargerAuthenticator", "Refusal", "basic_credentials", "store_unavailable"]
