"""A station's credentials towards the CSMS: TLS context and HTTP headers.

Layer: transport. Towards the CSMS the gateway *is* each 2.0.1 Charging Station, so it
presents each station's credentials (2.0.1 Part 2 A00, security profiles):

- profile 1 (ws://) and 2 (wss://): HTTP Basic auth, username = the station identity
  (the last path segment of the URL), password = the station's BasicAuthPassword
  (``[chargers."<id>"] upstream_password``, ``_file`` or ``_env``);
- profile 2 and 3: TLS, verifying the CSMS's certificate against ``upstream_ca`` (or
  the system trust store); for profile 3 a client certificate, the station's own
  (``[chargers."<id>"] upstream_cert``/``upstream_key``) or else the gateway's shared
  one (``upstream_cert``/``upstream_key``).

Everything is built once, in :class:`UpstreamSecurityFactory`'s constructor: a bad CA,
certificate or key fails start-up with a :class:`~gateway.config.ConfigError` naming the
file (never the key's content), not a station's connection later. TLS contexts are
shared by every station with the same (CA, certificate, key): thousands of stations on
the shared certificate hold one context between them.

Passwords never reach a log line, a repr or an exception text: the Authorization
header is built here, kept in :class:`UpstreamSecurity` (whose repr masks it), and
:data:`WEBSOCKETS_LOGGER` keeps websockets' own DEBUG header dump from printing it.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from gateway.config import ChargerConfig, ConfigError, Settings

__all__ = [
    "WEBSOCKETS_LOGGER",
    "UpstreamSecurity",
    "UpstreamSecurityFactory",
    "basic_authorization",
]

log = logging.getLogger(__name__)

_MASK = "***"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})
# 2.0.1 Part 4 / SecurityCtrlr.BasicAuthPassword: a passwordString of 16 to 40 characters.
_PASSWORD_LENGTHS = range(16, 41)

#: (CA bundle, client certificate, client key): what makes two TLS contexts differ.
_ContextKey = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class UpstreamSecurity:
    """What one station's upstream connection presents: the TLS context (None: the
    default for wss://, nothing for ws://) and extra handshake headers (Authorization)."""

    ssl: ssl.SSLContext | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        shown = tuple(
            (name, _MASK if name.lower() in _SECRET_HEADERS else value)
            for name, value in self.headers
        )
        return f"UpstreamSecurity(ssl={self.ssl!r}, headers={shown!r})"


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic auth (RFC 7617), UTF-8."""
    if ":" in username:
        # RFC 7617: the user-id cannot contain a colon; the server would split it wrongly.
        raise ValueError("a Basic auth username cannot contain ':'")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class _RedactingAdapter(logging.LoggerAdapter[logging.Logger]):
    """websockets' client logger, minus credentials: at DEBUG websockets logs every
    request header as ``("> %s: %s", name, value)``; an Authorization value is masked."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in _SECRET_HEADERS:
            args = (args[0], _MASK)
        super().log(level, msg, *args, **kwargs)

    def process(
        self, msg: object, kwargs: MutableMapping[str, Any]
    ) -> tuple[object, MutableMapping[str, Any]]:
        return msg, kwargs


#: The ``logger`` to give websockets' ``connect`` for upstream connections.
WEBSOCKETS_LOGGER = _RedactingAdapter(logging.getLogger("websockets.client"), {})


def _check_readable(name: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path!r}: {exc.strerror or exc}") from None


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal and hang start-up.
    raise _EncryptedKey


class _EncryptedKey(Exception):
    pass


def _load_client_certificate(context: ssl.SSLContext, where: str, cert: str, key: str) -> None:
    """``load_cert_chain`` with errors that say which file is wrong, never its content."""
    _check_readable(f"{where}upstream_cert", cert)
    _check_readable(f"{where}upstream_key", key)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            f"{where}upstream_key: {key!r} is encrypted; the gateway needs an unencrypted "
            "key (protect it with file permissions or a secret store mount)"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"{where}upstream_key: {key!r} is not the key of upstream_cert {cert!r}"
            ) from None
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert)
        except ssl.SSLError:
            raise ConfigError(f"{where}upstream_cert: {cert!r} holds no PEM certificate") from None
        raise ConfigError(
            f"{where}upstream_key: {key!r} holds no usable PEM private key "
            f"(or not the key of upstream_cert {cert!r})"
        ) from None


def _tls_context(ca: str | None, cert: str | None, key: str | None, where: str) -> ssl.SSLContext:
    """A client context: TLS >= 1.2, CERT_REQUIRED, host name checked, trusting ``ca``
    (else the system store), presenting ``cert``/``key`` when given."""
    if ca is not None:
        _check_readable("upstream_ca", ca)
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"upstream_ca: {ca!r} holds no usable PEM CA certificate ({exc.reason})"
            ) from None
    else:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # create_default_context already does all of this; stated so that it stays so.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if cert is not None and key is not None:
        _load_client_certificate(context, where, cert, key)
    return context


def _where(charger: ChargerConfig) -> str:
    return f'chargers."{charger.charge_point_id}": '


class UpstreamSecurityFactory:
    """Builds each station's :class:`UpstreamSecurity` from the settings; TLS contexts
    are built once per distinct (CA, certificate, key) and shared."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        upstream = settings.upstream or ""
        self._tls = upstream.lower().startswith("wss:")
        self._contexts: dict[_ContextKey, ssl.SSLContext] = {}
        shared: ssl.SSLContext | None = None
        if self._tls:
            shared = self._context(settings.upstream_cert, settings.upstream_key, "")
        self._default = UpstreamSecurity(ssl=shared)
        self._stations: dict[str, UpstreamSecurity] = {}
        plain_passwords: list[str] = []
        ignored_certs = settings.upstream_cert is not None and not self._tls
        short_or_long: list[str] = []
        for charger in settings.chargers:
            station_id = charger.charge_point_id
            context = shared
            if charger.upstream_cert is not None:
                if self._tls:
                    context = self._context(
                        charger.upstream_cert, charger.upstream_key, _where(charger)
                    )
                else:
                    ignored_certs = True
            headers: tuple[tuple[str, str], ...] = ()
            password = charger.upstream_password
            if password is not None:
                if ":" in station_id:
                    raise ConfigError(
                        f"{_where(charger)}upstream_password: a station id containing ':' "
                        "cannot be a Basic auth username (RFC 7617)"
                    )
                text = password.reveal()
                headers = (("Authorization", basic_authorization(station_id, text)),)
                if len(text) not in _PASSWORD_LENGTHS:
                    short_or_long.append(station_id)
                if not self._tls:
                    plain_passwords.append(station_id)
            if context is not shared or headers:
                self._stations[station_id] = UpstreamSecurity(ssl=context, headers=headers)
        self._warn(plain_passwords, short_or_long, ignored_certs=ignored_certs)

    def _context(self, cert: str | None, key: str | None, where: str) -> ssl.SSLContext:
        triple = (self._settings.upstream_ca, cert, key)
        context = self._contexts.get(triple)
        if context is None:
            context = _tls_context(*triple, where)
            self._contexts[triple] = context
        return context

    @staticmethod
    def _warn(plain: list[str], odd_length: list[str], *, ignored_certs: bool) -> None:
        if plain:
            log.warning(
                "%d station(s) (%s) send their Basic auth password to the CSMS over plain "
                "ws:// (2.0.1 security profile 1): anyone on the network path can read it; "
                "use a wss:// upstream (profile 2)",
                len(plain),
                _some(plain),
            )
        if odd_length:
            log.warning(
                "the upstream password of %d station(s) (%s) is not 16 to 40 characters "
                "long, as 2.0.1 BasicAuthPassword is; a strict CSMS may refuse it",
                len(odd_length),
                _some(odd_length),
            )
        if ignored_certs:
            log.warning(
                "upstream client certificates are configured but the upstream is ws://: "
                "they are not used (security profile 3 needs a wss:// upstream)"
            )

    @property
    def contexts(self) -> Mapping[_ContextKey, ssl.SSLContext]:
        """The distinct TLS contexts, by (CA, certificate, key)."""
        return dict(self._contexts)

    def for_station(self, station_id: str) -> UpstreamSecurity:
        """The station's own credentials if configured, else the shared ones."""
        return self._stations.get(station_id, self._default)


def _some(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"
