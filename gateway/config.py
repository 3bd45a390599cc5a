"""Gateway settings: the one place that reads environment variables and the TOML config file.

Precedence is command-line flag > environment variable ``OCPP_GATEWAY_<NAME>`` > TOML file
(``--config PATH`` or ``OCPP_GATEWAY_CONFIG``) > built-in default.  Argument *parsing* lives in
``gateway.cli``; this module only contributes the options (``add_settings_arguments``) and turns
parsed flags, an environment mapping and the file into one validated, immutable ``Settings``.

Every error is a ``ConfigError`` whose message names where the bad value came from, e.g.
``OCPP_GATEWAY_RESPONSE_TIMEOUT: expected a number, got 'abc'``.

This module imports nothing from the rest of the gateway but ``gateway.routing`` (the
``[[routes]]`` rules, a bottom-layer, standard-library-only module like this one): never
session, translate, transport, state, sim or cli.  It sits at the bottom of the dependency
graph.  Standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import fnmatch
import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from gateway.routing import Route, RouteRule, RoutingTable, rules_from_data

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "SETTINGS_FLAGS",
    "ChargerConfig",
    "ConfigError",
    "EvseLayout",
    "Secret",
    "SettingSpec",
    "Settings",
    "add_settings_arguments",
    "load_settings",
    "masked_url",
    "settings_from_namespace",
    "split_host_port",
]

ENV_PREFIX = "OCPP_GATEWAY_"
CONFIG_ENV = "OCPP_GATEWAY_CONFIG"

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
LOG_FORMATS: tuple[str, ...] = ("text", "json")
OFFLINE_MODES: tuple[str, ...] = ("buffer", "mirror")
OFFLINE_AUTHORIZATIONS: tuple[str, ...] = ("cache", "accept", "reject")
IMMEDIATE_RESETS: tuple[str, ...] = ("soft", "hard")
STATE_SCHEMES: tuple[str, ...] = ("sqlite", "redis", "rediss", "memory")
UPSTREAM_SCHEMES: tuple[str, ...] = ("ws", "wss")
SECURITY_PROFILES: tuple[str, ...] = ("auto", "0", "1", "2", "3")
ROUTES: tuple[str, ...] = tuple(route.value for route in Route)

_TOML_LAYOUT_KEYS: tuple[str, ...] = ("evse_layout", "evse_layouts")
_TOML_CHARGERS_KEY = "chargers"
_TOML_ROUTES_KEY = "routes"
_CHARGER_KEYS: tuple[str, ...] = (
    "password_hash",
    "security_profile",
    "upstream_password",
    "upstream_password_file",
    "upstream_password_env",
    "upstream_cert",
    "upstream_key",
)
_DISABLED_WORDS: frozenset[str] = frozenset({"", "off"})
_TRUE_WORDS: frozenset[str] = frozenset({"true", "1", "yes"})
_FALSE_WORDS: frozenset[str] = frozenset({"false", "0", "no"})


class ConfigError(Exception):
    """A setting is missing, malformed or out of range; the message names its source and key."""


class _Problem(Exception):
    """Internal: a value is wrong; the text reads after the setting's name ("must be > 0...")."""


# --------------------------------------------------------------------------------------------
# EVSE layouts
# --------------------------------------------------------------------------------------------


class _ConnectorMap(Mapping[int, tuple[int, int]]):
    """Immutable, hashable mapping of 1.6 connectorId -> (evseId, connectorId)."""

    __slots__ = ("_items", "_lookup")

    def __init__(self, items: Mapping[int, tuple[int, int]]) -> None:
        self._items: tuple[tuple[int, tuple[int, int]], ...] = tuple(sorted(items.items()))
        self._lookup: dict[int, tuple[int, int]] = dict(self._items)

    def __getitem__(self, key: int) -> tuple[int, int]:
        return self._lookup[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._lookup)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ConnectorMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._lookup == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k}: {v!r}' for k, v in self._items)}}}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvseLayout:
    """How the 1.6 connectors of matching charge points map onto 2.0.1 EVSEs and connectors.

    ``pattern`` is an fnmatch glob (case-sensitive) on the charge point id; ``connectors`` maps
    the 1.6 connectorId to ``(evseId, connectorId)``.  The mapping is stored immutably, so
    layouts (and therefore ``Settings``) stay hashable.
    """

    pattern: str
    connectors: Mapping[int, tuple[int, int]]

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ConfigError(f"pattern must be a non-empty string, got {self.pattern!r}")
        if not isinstance(self.connectors, Mapping):
            raise ConfigError(f"connectors must be a mapping, got {self.connectors!r}")
        if not self.connectors:
            raise ConfigError("connectors must map at least one 1.6 connector")
        normalised: dict[int, tuple[int, int]] = {}
        seen: dict[tuple[int, int], int] = {}
        for legacy, target in self.connectors.items():
            if not _is_int(legacy) or legacy < 1:
                raise ConfigError(f"1.6 connector id must be an integer >= 1, got {legacy!r}")
            if (
                not isinstance(target, tuple | list)
                or len(target) != 2
                or not all(_is_int(part) and part >= 1 for part in target)
            ):
                raise ConfigError(
                    f"1.6 connector {legacy} must map to [evseId, connectorId] with both "
                    f"integers >= 1, got {target!r}"
                )
            pair = (int(target[0]), int(target[1]))
            if pair in seen:
                raise ConfigError(
                    f"1.6 connectors {seen[pair]} and {legacy} both map to "
                    f"evse {pair[0]} connector {pair[1]}"
                )
            seen[pair] = legacy
            normalised[legacy] = pair
        object.__setattr__(self, "connectors", _ConnectorMap(normalised))

    def matches(self, charge_point_id: str) -> bool:
        """True when this rule applies to ``charge_point_id``."""
        return fnmatch.fnmatchcase(charge_point_id, self.pattern)


# --------------------------------------------------------------------------------------------
# Per-charger security
# --------------------------------------------------------------------------------------------


class Secret(str):
    """A string whose repr and str never show it (upstream passwords and the admin token
    in ``Settings``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        """The secret itself: only for the Authorization header."""
        return str.__str__(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerConfig:
    """``[chargers."<id>"]`` in the config file: one charger's own security settings.

    ``password_hash`` is the output of ``ocpp-gateway credentials hash`` (never a password);
    a hash stored with ``ocpp-gateway credentials`` in the state store wins over it, so a
    rotation survives a restart with the old file. ``security_profile`` overrides
    ``--security-profile`` for this charger. The ``upstream_*`` keys give the station's
    own credentials towards the CSMS: a password (inline, from a file or from an
    environment variable; resolved at start-up) and a client certificate and key.
    """

    charge_point_id: str
    password_hash: str | None = None
    security_profile: int | None = None
    upstream_password: Secret | None = None
    upstream_cert: str | None = None
    upstream_key: str | None = None


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every gateway setting, validated.  Build variants with ``dataclasses.replace``."""

    listen: str = "0.0.0.0:9000"
    upstream: str | None = None
    state: str = "sqlite:///ocpp-gateway-state.db"
    metrics: str | None = "0.0.0.0:9100"
    log_level: str = "info"
    log_format: str = "text"
    response_timeout: float = 30.0
    upstream_wait: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    max_frame_bytes: int = 1048576
    max_queued_calls: int = 16
    ping_interval: float = 60.0
    validate_inbound: bool = True
    validate_outbound: bool = False
    mappings: str | None = None
    shutdown_grace: float = 10.0
    offline_mode: str = "buffer"
    offline_grace: float = 60.0
    offline_authorization: str = "cache"
    immediate_reset: str = "soft"
    lease_ttl: float = 30.0
    security_profile: str = "auto"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    upstream_ca: str | None = None
    upstream_cert: str | None = None
    upstream_key: str | None = None
    max_connections: int = 0
    max_connections_per_address: int = 0
    handshake_timeout: float = 10.0
    max_message_rate: float = 200.0
    message_burst: int = 1000
    legacy_upstream: str | None = None
    default_route: str = "translate"
    admin_token: Secret | None = None
    evse_layouts: tuple[EvseLayout, ...] = field(default=())
    chargers: tuple[ChargerConfig, ...] = field(default=())
    routes: tuple[RouteRule, ...] = field(default=())

    def __post_init__(self) -> None:
        for spec in SETTINGS_FLAGS:
            raw = getattr(self, spec.name)
            if not _has_kind(raw, spec.kind):
                raise ConfigError(f"{spec.name}: expected {_KIND_WORDS[spec.kind]}, got {raw!r}")
            try:
                value = _normalise(spec.name, raw)
            except _Problem as exc:
                raise ConfigError(f"{spec.name} {exc}") from None
            if value is not raw:
                object.__setattr__(self, spec.name, value)
        layouts = self.evse_layouts
        if not isinstance(layouts, tuple | list) or not all(
            isinstance(item, EvseLayout) for item in layouts
        ):
            raise ConfigError(f"evse_layouts must be a tuple of EvseLayout, got {layouts!r}")
        if isinstance(layouts, list):
            object.__setattr__(self, "evse_layouts", tuple(layouts))
        if self.backoff_initial > self.backoff_max:
            raise ConfigError(
                f"backoff_initial ({self.backoff_initial}) must not exceed "
                f"backoff_max ({self.backoff_max})"
            )
        chargers = self.chargers
        if not isinstance(chargers, tuple | list) or not all(
            isinstance(item, ChargerConfig) for item in chargers
        ):
            raise ConfigError(f"chargers must be a tuple of ChargerConfig, got {chargers!r}")
        if isinstance(chargers, list):
            object.__setattr__(self, "chargers", tuple(chargers))
        routes = self.routes
        if not isinstance(routes, tuple | list) or not all(
            isinstance(item, RouteRule) for item in routes
        ):
            raise ConfigError(f"routes must be a tuple of RouteRule, got {routes!r}")
        if isinstance(routes, list):
            object.__setattr__(self, "routes", tuple(routes))
        _check_security(self)
        _check_routes(self.legacy_upstream, self.default_route, self.routes)

    def __repr__(self) -> str:
        """Like the dataclass repr, but passwords in the upstream/state URLs are masked
        (and ``admin_token``, a :class:`Secret`, shows as ``Secret('***')``)."""
        shown = []
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in _URL_FIELDS and isinstance(value, str):
                value = masked_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def require_upstream(self) -> str:
        """The upstream CSMS URL; ConfigError when it was not configured (``serve`` needs it)."""
        if self.upstream is None:
            raise ConfigError(
                "upstream is required: pass --upstream ws://host:port/path, set "
                f"{ENV_PREFIX}UPSTREAM, or set upstream in the config file"
            )
        return self.upstream

    def routing_table(self) -> RoutingTable:
        """The config file's ``[[routes]]`` with ``default_route``: the table the admin
        API's stored rules are merged into (``RoutingTable.merged``)."""
        return RoutingTable(rules=self.routes, default=Route(self.default_route))

    def listen_host_port(self) -> tuple[str, int]:
        """``listen`` as ``(host, port)``; IPv6 brackets are removed (``[::]:9000`` -> ``::``)."""
        return split_host_port(self.listen)

    def metrics_host_port(self) -> tuple[str, int] | None:
        """``metrics`` as ``(host, port)``, or None when the ops HTTP server is disabled."""
        return None if self.metrics is None else split_host_port(self.metrics)

    @property
    def tls(self) -> bool:
        """The charger listener speaks TLS (wss://): security profiles 2 and 3."""
        return self.tls_cert is not None

    def charger(self, charge_point_id: str) -> ChargerConfig | None:
        """The ``[chargers."<id>"]`` table of this charger, if any."""
        for item in self.chargers:
            if item.charge_point_id == charge_point_id:
                return item
        return None

    def layout_for(self, charge_point_id: str) -> Mapping[int, tuple[int, int]] | None:
        """The connector map of the first layout rule matching the id; None = default 1:1."""
        for layout in self.evse_layouts:
            if layout.matches(charge_point_id):
                return layout.connectors
        return None


# --------------------------------------------------------------------------------------------
# The flag-settable fields
# --------------------------------------------------------------------------------------------

SettingKind = Literal["str", "optional_str", "float", "int", "bool"]

_KIND_WORDS: Mapping[SettingKind, str] = {
    "str": "a string",
    "optional_str": "a string",
    "float": "a number",
    "int": "an integer",
    "bool": "a boolean (true/false, yes/no, 1/0)",
}

_DEFAULTS: Mapping[str, object] = {
    f.name: f.default
    for f in dataclasses.fields(Settings)
    if f.name not in ("evse_layouts", "chargers", "routes")
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingSpec:
    """One flag/env/TOML-settable field of ``Settings``: enough for cli.py to build argparse."""

    name: str = ""
    kind: SettingKind = "str"
    help: str = ""
    metavar: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The command-line option, e.g. ``--response-timeout``."""
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        """The environment variable, e.g. ``OCPP_GATEWAY_RESPONSE_TIMEOUT``."""
        return ENV_PREFIX + self.name.upper()

    @property
    def default(self) -> str | float | int | bool | None:
        """The built-in default (taken from ``Settings`` itself, so they cannot drift)."""
        value = _DEFAULTS[self.name]
        assert value is None or isinstance(value, str | float | int | bool)
        return value


SETTINGS_FLAGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        name="listen",
        metavar="HOST:PORT",
        help="charger-facing websocket address host:port",
    ),
    SettingSpec(
        name="upstream",
        kind="optional_str",
        metavar="URL",
        help="OCPP 2.0.1 CSMS base URL (ws:// or wss://); the station id is appended as a "
        "path segment; required by serve",
    ),
    SettingSpec(
        name="state",
        metavar="URL",
        help="state store URL: sqlite:///relative/path, sqlite:////absolute/path, "
        "redis://host:port/db, rediss://... or memory://",
    ),
    SettingSpec(
        name="metrics",
        kind="optional_str",
        metavar="HOST:PORT",
        help="ops HTTP address for /metrics /healthz /readyz; 'off' or '' disables it",
    ),
    SettingSpec(
        name="log_level",
        metavar="LEVEL",
        choices=LOG_LEVELS,
        help="log level: debug, info, warning or error",
    ),
    SettingSpec(
        name="log_format",
        metavar="FORMAT",
        choices=LOG_FORMATS,
        help="log format: text or json (one JSON object per line)",
    ),
    SettingSpec(
        name="response_timeout",
        kind="float",
        metavar="SECONDS",
        help="seconds to wait for a CALLRESULT from either side",
    ),
    SettingSpec(
        name="upstream_wait",
        kind="float",
        metavar="SECONDS",
        help="seconds a charger message waits for the upstream connection before it gets a "
        "CALLERROR",
    ),
    SettingSpec(
        name="backoff_initial",
        kind="float",
        metavar="SECONDS",
        help="first upstream reconnect delay (jittered exponential backoff)",
    ),
    SettingSpec(
        name="backoff_max",
        kind="float",
        metavar="SECONDS",
        help="longest upstream reconnect delay",
    ),
    SettingSpec(
        name="max_frame_bytes",
        kind="int",
        metavar="BYTES",
        help="largest websocket message accepted on either side",
    ),
    SettingSpec(
        name="max_queued_calls",
        kind="int",
        metavar="N",
        help="per station and direction, CALLs waiting behind the outstanding one",
    ),
    SettingSpec(
        name="ping_interval",
        kind="float",
        metavar="SECONDS",
        help="websocket ping interval towards chargers; 0 disables",
    ),
    SettingSpec(
        name="validate_inbound",
        kind="bool",
        help="validate every payload received from chargers and the CSMS against the "
        "official schema before translating it (--no-validate-inbound trades that for speed)",
    ),
    SettingSpec(
        name="validate_outbound",
        kind="bool",
        help="also validate every emitted payload against the official schema",
    ),
    SettingSpec(
        name="mappings",
        kind="optional_str",
        metavar="DIR",
        help="directory of mapping tables (default: the packaged tables)",
    ),
    SettingSpec(
        name="shutdown_grace",
        kind="float",
        metavar="SECONDS",
        help="seconds from SIGTERM/SIGINT to exit: outboxes drain for up to half, then "
        "chargers are closed with 1001",
    ),
    SettingSpec(
        name="offline_mode",
        metavar="MODE",
        choices=OFFLINE_MODES,
        help="while the CSMS is unreachable: 'buffer' answers chargers and replays later; "
        "'mirror' closes the charger after offline_grace so it queues its own messages",
    ),
    SettingSpec(
        name="offline_grace",
        kind="float",
        metavar="SECONDS",
        help="mirror mode: seconds without the CSMS before the charger is disconnected",
    ),
    SettingSpec(
        name="offline_authorization",
        metavar="POLICY",
        choices=OFFLINE_AUTHORIZATIONS,
        help="idTags while the CSMS is unreachable: 'cache' accepts those the CSMS accepted "
        "before, 'accept' accepts all, 'reject' rejects all",
    ),
    SettingSpec(
        name="immediate_reset",
        metavar="TYPE",
        choices=IMMEDIATE_RESETS,
        help="1.6 Reset type for a CSMS Reset(Immediate): 'soft' ends transactions first, "
        "as 2.0.1 B12.FR.04 requires; 'hard' restarts at once",
    ),
    SettingSpec(
        name="lease_ttl",
        kind="float",
        metavar="SECONDS",
        help="shared (Redis) state: seconds a replica's hold on a station lasts unrenewed; "
        "renewed every third of it while the charger is connected",
    ),
    SettingSpec(
        name="security_profile",
        metavar="PROFILE",
        choices=SECURITY_PROFILES,
        help="charger side: 0 no authentication, 1 Basic auth, 2 TLS + Basic auth, 3 TLS "
        "client certificates; 'auto' is 2 with --tls-cert, else 1, and 0 only when no "
        "charger credential exists at all",
    ),
    SettingSpec(
        name="tls_cert",
        kind="optional_str",
        metavar="PEM",
        help="charger listener: server certificate chain (the listener then speaks wss://)",
    ),
    SettingSpec(
        name="tls_key",
        kind="optional_str",
        metavar="PEM",
        help="charger listener: private key of --tls-cert",
    ),
    SettingSpec(
        name="tls_client_ca",
        kind="optional_str",
        metavar="PEM",
        help="charger listener: CA bundle that signs charger certificates (profile 3)",
    ),
    SettingSpec(
        name="upstream_ca",
        kind="optional_str",
        metavar="PEM",
        help="CA bundle to verify the CSMS's certificate on wss:// (default: the system's)",
    ),
    SettingSpec(
        name="upstream_cert",
        kind="optional_str",
        metavar="PEM",
        help="client certificate the gateway presents to the CSMS for every station without "
        "its own (2.0.1 security profile 3)",
    ),
    SettingSpec(
        name="upstream_key",
        kind="optional_str",
        metavar="PEM",
        help="private key of --upstream-cert",
    ),
    SettingSpec(
        name="max_connections",
        kind="int",
        metavar="N",
        help="charger connections held at once; 0 = (open-files limit - 64) / 2, two "
        "sockets per charger",
    ),
    SettingSpec(
        name="max_connections_per_address",
        kind="int",
        metavar="N",
        help="charger connections from one IP address; 0 = no limit (chargers behind "
        "carrier NAT share addresses)",
    ),
    SettingSpec(
        name="handshake_timeout",
        kind="float",
        metavar="SECONDS",
        help="a charger must complete TLS and the websocket handshake within this",
    ),
    SettingSpec(
        name="max_message_rate",
        kind="float",
        metavar="PER_SECOND",
        help="sustained frames per second one charger may send; 0 = no limit",
    ),
    SettingSpec(
        name="message_burst",
        kind="int",
        metavar="N",
        help="frames one charger may send at once above max_message_rate",
    ),
    SettingSpec(
        name="legacy_upstream",
        kind="optional_str",
        metavar="URL",
        help="OCPP 1.6 CSMS base URL (ws:// or wss://) of the migration: chargers routed "
        "'legacy' pass through to it untouched, subprotocol ocpp1.6, with the station id "
        "appended as a path segment; translated chargers with shadow are mirrored to it",
    ),
    SettingSpec(
        name="default_route",
        metavar="ROUTE",
        choices=ROUTES,
        help="where a 1.6 charger no [[routes]] rule matches goes: 'translate' to the "
        "2.0.1 upstream, 'legacy' to legacy_upstream (which it then needs)",
    ),
    SettingSpec(
        name="admin_token",
        kind="optional_str",
        metavar="TOKEN",
        help="bearer token of the admin API (routing changes); never printed; prefer the "
        "environment variable to the flag, which other local users can see",
    ),
)

_SPECS: Mapping[str, SettingSpec] = {spec.name: spec for spec in SETTINGS_FLAGS}


# --------------------------------------------------------------------------------------------
# Parsing and validating single values
# --------------------------------------------------------------------------------------------


def _has_kind(value: object, kind: SettingKind) -> bool:
    match kind:
        case "str":
            return isinstance(value, str)
        case "optional_str":
            return value is None or isinstance(value, str)
        case "float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "int":
            return _is_int(value)
        case "bool":
            return isinstance(value, bool)


def _from_text(text: str, kind: SettingKind) -> object:
    """Parse an environment/flag string into the field's type; None when it does not parse."""
    stripped = text.strip()
    match kind:
        case "str" | "optional_str":
            return text
        case "float":
            try:
                return float(stripped)
            except ValueError:
                return None
        case "int":
            try:
                return int(stripped, 10)
            except ValueError:
                return None
        case "bool":
            word = stripped.lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
            return None


def _coerce(value: object, kind: SettingKind, where: str) -> object:
    """Type-check (and, for strings, parse) one value; ConfigError naming ``where`` on failure."""
    if isinstance(value, str) and kind not in ("str", "optional_str"):
        parsed = _from_text(value, kind)
        if parsed is None:
            raise ConfigError(f"{where}: expected {_KIND_WORDS[kind]}, got {value!r}")
        return parsed
    if not _has_kind(value, kind):
        raise ConfigError(f"{where}: expected {_KIND_WORDS[kind]}, got {value!r}")
    return value


_HOST_FORBIDDEN = frozenset(" \t\r\n/@?#[]")


def split_host_port(text: str) -> tuple[str, int]:
    """Split ``host:port`` (or ``[ipv6]:port``) into ``(host, port)``; ValueError if malformed.

    Port 0 is accepted (bind to any free port), which tests rely on.
    """
    problem = f"must be host:port such as 0.0.0.0:9000 or [::]:9000, got {text!r}"
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or text[end + 1 : end + 2] != ":":
            raise ValueError(problem)
        host, port_text = text[1:end], text[end + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(problem) from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host or _HOST_FORBIDDEN.intersection(host):
            raise ValueError(problem)
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ValueError(problem)
    return host, int(port_text)


def _check_host_port(text: str) -> None:
    try:
        split_host_port(text)
    except ValueError as exc:
        raise _Problem(str(exc)) from None


def masked_url(url: str) -> str:
    """``wss://user:secret@host/x`` -> ``wss://user:***@host/x``; other URLs unchanged
    (for reprs and log lines: DESIGN.md, secrets are never logged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()


def _url_port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - evaluating .port validates it
    except ValueError:
        return False
    return True


def _check_upstream(url: str) -> None:
    problem = f"must be a ws:// or wss:// URL such as ws://csms:8080/ocpp, got {url!r}"
    if any(ch.isspace() for ch in url):
        raise _Problem(problem)
    parts = urlsplit(url)
    if parts.scheme.lower() not in UPSTREAM_SCHEMES or not parts.hostname:
        raise _Problem(problem)
    if not _url_port_ok(parts):
        raise _Problem(f"has an invalid port: {url!r}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _Problem(
            f"must not have a query or fragment (the station id is appended as a path "
            f"segment), got {url!r}"
        )


def _check_state(url: str) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in STATE_SCHEMES or "://" not in url:
        raise _Problem(
            "must be sqlite:///path, redis://host:port/db, rediss://host:port/db or "
            f"memory://, got {url!r}"
        )
    if scheme == "sqlite":
        if parts.netloc or not url.lower().startswith("sqlite:///") or not parts.path[1:]:
            raise _Problem(
                "must be sqlite:///relative/path or sqlite:////absolute/path (no host), "
                f"got {url!r}"
            )
    elif scheme in ("redis", "rediss"):
        db = parts.path.lstrip("/")
        if not parts.hostname or not _url_port_ok(parts) or (db and not db.isdigit()):
            raise _Problem(f"must be {scheme}://host:port/db with a numeric db, got {url!r}")


def _check_positive(name: str, value: float, *, allow_zero: bool) -> None:
    if not math.isfinite(value):
        raise _Problem(f"must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise _Problem(f"must be {bound}, got {value!r}")


def _both_or_neither(first: str, a: object, second: str, b: object, where: str = "") -> None:
    if (a is None) != (b is None):
        given, missing = (first, second) if a is not None else (second, first)
        raise ConfigError(f"{where}{given} needs {missing} too")


def _check_file(name: str, path: str | None) -> None:
    if path is not None and not os.path.isfile(path):
        raise ConfigError(f"{name}: no such file {path!r}")


def _admin_token(value: str) -> Secret:
    # Never echo the value, not even in an error: it is a credential.
    if not (value.isascii() and value.isprintable()) or any(ch.isspace() for ch in value):
        raise _Problem(
            "must be printable ASCII without whitespace (it is sent as a bearer token); "
            "the value is not shown"
        )
    return value if isinstance(value, Secret) else Secret(value)


def _check_routes(
    legacy_upstream: str | None,
    default_route: str,
    routes: tuple[RouteRule, ...],
    *,
    default_source: str = "",
    file: str = "",
) -> None:
    """Everything the routing asks of the legacy CSMS has one: the legacy route, and the
    shadow of a translated charger (mirrored to the legacy CSMS; the shadow of a legacy
    charger goes to ``upstream``, which serve requires anyway)."""
    if legacy_upstream is not None:
        return
    how = f"set --legacy-upstream ws://old-csms/ocpp or {ENV_PREFIX}LEGACY_UPSTREAM"
    if default_route == Route.LEGACY:
        source = f" (from {default_source})" if default_source else ""
        raise ConfigError(f"default_route legacy{source} needs legacy_upstream: {how}")
    for index, rule in enumerate(routes):
        if rule.route is Route.LEGACY:
            what = "route legacy"
        elif rule.shadow:
            what = "shadow (a translated charger is mirrored to the legacy CSMS)"
        else:
            continue
        where = f"{file}: " if file else ""
        raise ConfigError(f"{where}routes[{index}]: {what} needs legacy_upstream: {how}")


def _check_security(settings: Settings) -> None:
    """The security settings fit together (docs/security.md); files exist."""
    _both_or_neither("tls_cert", settings.tls_cert, "tls_key", settings.tls_key)
    _both_or_neither("upstream_cert", settings.upstream_cert, "upstream_key", settings.upstream_key)
    if settings.tls_client_ca is not None and not settings.tls:
        raise ConfigError("tls_client_ca needs tls_cert and tls_key (profile 3 is over TLS)")
    for name in ("tls_cert", "tls_key", "tls_client_ca", "upstream_ca"):
        _check_file(name, getattr(settings, name))
    for name in ("upstream_cert", "upstream_key"):
        _check_file(name, getattr(settings, name))
    upstream = settings.upstream
    if settings.upstream_ca is not None and upstream and not upstream.lower().startswith("wss:"):
        raise ConfigError("upstream_ca applies to a wss:// upstream only")
    profiles = {settings.security_profile}
    for charger in settings.chargers:
        where = f'chargers."{charger.charge_point_id}": '
        _both_or_neither("upstream_cert", charger.upstream_cert, "upstream_key",
                         charger.upstream_key, where)  # fmt: skip
        _check_file(where + "upstream_cert", charger.upstream_cert)
        _check_file(where + "upstream_key", charger.upstream_key)
        if charger.security_profile is not None:
            profiles.add(str(charger.security_profile))
    plain, tls = {"0", "1"}, {"2", "3"}
    wrong = sorted(profiles & (plain if settings.tls else tls))
    if wrong:
        transport = "TLS (tls_cert is set)" if settings.tls else "plain ws (no tls_cert)"
        raise ConfigError(
            f"security profile {wrong[0]} cannot be served by a charger listener on "
            f"{transport}: profiles 0 and 1 are plain ws, 2 and 3 need tls_cert and tls_key"
        )
    if "3" in profiles and settings.tls_client_ca is None:
        raise ConfigError("security profile 3 needs tls_client_ca to verify charger certificates")


# Fields for which 0 is meaningful: ping 0 disables, grace 0 means no drain, wait 0 fails fast,
# queue 0 means only the outstanding CALL.
_ZERO_OK: frozenset[str] = frozenset(
    {
        "upstream_wait",
        "ping_interval",
        "shutdown_grace",
        "max_queued_calls",
        "offline_grace",
        "max_connections",
        "max_connections_per_address",
        "max_message_rate",
    }
)


_OPTIONAL_STR: frozenset[str] = frozenset(
    s.name for s in SETTINGS_FLAGS if s.kind == "optional_str"
)
#: URL settings whose password ``Settings.__repr__`` masks.
_URL_FIELDS: frozenset[str] = frozenset({"upstream", "legacy_upstream", "state"})


def _normalise(name: str, value: object) -> object:
    """Canonicalise and range-check a type-correct value; raise _Problem with the reason."""
    off_words = _DISABLED_WORDS if name == "metrics" else frozenset({""})
    if name in _OPTIONAL_STR and isinstance(value, str) and value.strip().lower() in off_words:
        return None
    if _SPECS[name].choices and isinstance(value, str):
        choices = _SPECS[name].choices
        lowered = value.strip().lower()
        if lowered not in choices:
            raise _Problem(f"must be one of {', '.join(choices)}, got {value!r}")
        return value if lowered == value else lowered
    if isinstance(value, str):
        if name in ("listen", "metrics"):
            _check_host_port(value)
        elif name in ("upstream", "legacy_upstream"):
            _check_upstream(value)
        elif name == "admin_token":
            return _admin_token(value)
        elif name == "state":
            _check_state(value)
        elif name == "mappings" and not os.path.isdir(value):
            raise _Problem(f"must be an existing directory, got {value!r}")
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        _check_positive(name, value, allow_zero=name in _ZERO_OK)
        if _SPECS[name].kind == "float" and not isinstance(value, float):
            return float(value)
    return value


# --------------------------------------------------------------------------------------------
# argparse integration
# --------------------------------------------------------------------------------------------


def _argparse_type(spec: SettingSpec) -> Callable[[str], object]:
    def convert(text: str) -> object:
        parsed = _from_text(text, spec.kind)
        if parsed is None:
            raise argparse.ArgumentTypeError(f"expected {_KIND_WORDS[spec.kind]}, got {text!r}")
        return parsed

    convert.__name__ = spec.kind
    return convert


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one option per field of ``SETTINGS_FLAGS`` to ``parser``.

    Every option uses ``default=argparse.SUPPRESS``: an absent flag is absent from the
    namespace, so the env/file/default layers can show through.  Numbers and booleans are
    parsed by argparse (a bad value is a usage error); strings are validated by
    ``load_settings``.
    """
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=f"TOML config file; keys are the setting names [env {CONFIG_ENV}]",
    )
    for spec in SETTINGS_FLAGS:
        shown = "off" if spec.name == "metrics" and spec.default is None else spec.default
        default_text = "none" if shown is None else str(shown).lower()
        text = f"{spec.help} [env {spec.env_var}; default {default_text}]".replace("%", "%%")
        if spec.kind == "bool":
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=text,
            )
        elif spec.kind in ("str", "optional_str"):
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                default=argparse.SUPPRESS,
                metavar=spec.metavar,
                help=text,
            )
        else:
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                type=_argparse_type(spec),
                default=argparse.SUPPRESS,
                metavar=spec.metavar,
                help=text,
            )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _unknown_key_error(path: str, unknown: list[str]) -> ConfigError:
    known = [*_SPECS, "evse_layout", _TOML_CHARGERS_KEY, _TOML_ROUTES_KEY]
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        parts.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    noun = "key" if len(unknown) == 1 else "keys"
    return ConfigError(f"{path}: unknown {noun} {', '.join(parts)}")


def _layout_from_toml(raw: object, where: str) -> EvseLayout:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table with chargers and connectors")
    extra = sorted(set(raw) - {"chargers", "connectors"})
    if extra:
        raise ConfigError(f"{where}: unknown key '{extra[0]}' (expected chargers, connectors)")
    chargers = raw.get("chargers")
    if not isinstance(chargers, str) or not chargers:
        raise ConfigError(f"{where}: chargers must be a non-empty glob string, got {chargers!r}")
    table = raw.get("connectors")
    if not isinstance(table, dict):
        raise ConfigError(
            f'{where}: connectors must be a table like {{ "1" = [1, 1] }}, got {table!r}'
        )
    connectors: dict[int, tuple[int, int]] = {}
    for key, value in table.items():
        if not (key.isascii() and key.isdigit()):
            raise ConfigError(f"{where}: connectors key {key!r} is not a 1.6 connector id")
        if not isinstance(value, list) or len(value) != 2 or not all(_is_int(v) for v in value):
            raise ConfigError(
                f"{where}: connectors.{key} must be [evseId, connectorId], got {value!r}"
            )
        connectors[int(key)] = (value[0], value[1])
    try:
        return EvseLayout(pattern=chargers, connectors=connectors)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _charger_from_toml(
    charge_point_id: str, raw: object, where: str, env: Mapping[str, str]
) -> ChargerConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    extra = sorted(set(raw) - set(_CHARGER_KEYS))
    if extra:
        raise ConfigError(
            f"{where}: unknown key '{extra[0]}' (expected {', '.join(_CHARGER_KEYS)})"
        )
    for key in _CHARGER_KEYS:
        if key != "security_profile" and key in raw and not isinstance(raw[key], str):
            raise ConfigError(f"{where}: {key} must be a string")
    password_hash = raw.get("password_hash")
    if password_hash is not None and not password_hash.startswith("$scrypt$"):
        # Never echo the value: it may be a password pasted by mistake.
        raise ConfigError(
            f"{where}: password_hash must be the output of 'ocpp-gateway credentials hash' "
            "(it starts with $scrypt$), not a password"
        )
    profile = raw.get("security_profile")
    if profile is not None and (not _is_int(profile) or not 0 <= profile <= 3):
        raise ConfigError(f"{where}: security_profile must be 0, 1, 2 or 3, got {profile!r}")
    sources = [key for key in _CHARGER_KEYS[2:5] if key in raw]
    if len(sources) > 1:
        raise ConfigError(f"{where}: give one of {', '.join(sources)}, not several")
    password: str | None = raw.get("upstream_password")
    if "upstream_password_file" in raw:
        file = raw["upstream_password_file"]
        try:
            with open(file, encoding="utf-8") as handle:
                password = handle.read().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"{where}: upstream_password_file: cannot read {file!r}: {exc.strerror or exc}"
            ) from None
    elif "upstream_password_env" in raw:
        name = raw["upstream_password_env"]
        if name not in env:
            raise ConfigError(f"{where}: upstream_password_env: {name} is not set")
        password = env[name]
    if password is not None and not password:
        raise ConfigError(f"{where}: the upstream password is empty")
    return ChargerConfig(
        charge_point_id=charge_point_id,
        password_hash=password_hash,
        security_profile=profile,
        upstream_password=None if password is None else Secret(password),
        upstream_cert=raw.get("upstream_cert"),
        upstream_key=raw.get("upstream_key"),
    )


def _chargers_from_toml(
    data: dict[str, object], path: str, env: Mapping[str, str]
) -> tuple[ChargerConfig, ...]:
    raw = data.get(_TOML_CHARGERS_KEY, {})
    if not isinstance(raw, dict):
        raise ConfigError(f'{path}: chargers must be tables like [chargers."CP-1"]')
    return tuple(
        _charger_from_toml(str(cp_id), table, f'{path}: chargers."{cp_id}"', env)
        for cp_id, table in raw.items()
    )


def _routes_from_toml(data: dict[str, object], path: str) -> tuple[RouteRule, ...]:
    raw = data.get(_TOML_ROUTES_KEY, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: routes must be an array of tables ([[routes]])")
    try:
        return rules_from_data(raw, f"{path}: routes")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _file_layers(path: str) -> tuple[dict[str, object], tuple[EvseLayout, ...] | None]:
    data = _read_toml(path)
    unknown = sorted(
        key
        for key in data
        if key not in _SPECS
        and key not in _TOML_LAYOUT_KEYS
        and key not in (_TOML_CHARGERS_KEY, _TOML_ROUTES_KEY)
    )
    if unknown:
        raise _unknown_key_error(path, unknown)
    present = [key for key in _TOML_LAYOUT_KEYS if key in data]
    if len(present) > 1:
        raise ConfigError(f"{path}: use either evse_layout or evse_layouts, not both")
    layouts: tuple[EvseLayout, ...] | None = None
    if present:
        key = present[0]
        raw = data[key]
        if not isinstance(raw, list):
            raise ConfigError(f"{path}: {key} must be an array of tables ([[{key}]])")
        layouts = tuple(
            _layout_from_toml(item, f"{path}: {key}[{index}]") for index, item in enumerate(raw)
        )
    values = {key: value for key, value in data.items() if key in _SPECS}
    return values, layouts


def load_settings(
    flags: Mapping[str, object],
    env: Mapping[str, str],
    *,
    config_path: str | os.PathLike[str] | None = None,
) -> Settings:
    """Merge default < TOML file < environment < flags into a validated ``Settings``.

    ``flags`` maps field names (argparse dests, e.g. ``response_timeout``) and ``config`` to
    values, either already typed or as strings; a key that is absent means "not given", while
    ``None`` is an explicit value (valid for optional fields only).  Unknown keys are an error.
    ``env`` is usually ``os.environ``; only ``OCPP_GATEWAY_<NAME>`` variables of known
    settings and ``OCPP_GATEWAY_CONFIG`` are read, other variables are ignored.

    The config file is ``config_path`` if given, else ``flags["config"]``, else
    ``env["OCPP_GATEWAY_CONFIG"]``, else none.  Only the winning value of each setting is
    parsed and checked, so a higher layer can override a bad lower one.
    """
    unknown = sorted(key for key in flags if key not in _SPECS and key != "config")
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in flags")

    path: str | None = None
    if config_path is not None:
        path = os.fspath(config_path)
    elif flags.get("config") is not None:
        flag_path = flags["config"]
        if not isinstance(flag_path, str | os.PathLike):
            raise ConfigError(f"--config: expected a path, got {flag_path!r}")
        path = os.fspath(flag_path)
    elif env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]

    file_values: dict[str, object] = {}
    layouts: tuple[EvseLayout, ...] = ()
    chargers: tuple[ChargerConfig, ...] = ()
    routes: tuple[RouteRule, ...] = ()
    if path is not None:
        file_values, file_layouts = _file_layers(path)
        layouts = file_layouts or ()
        data = _read_toml(path)
        chargers = _chargers_from_toml(data, path, env)
        routes = _routes_from_toml(data, path)

    chosen: dict[str, object] = {}
    sources: dict[str, str] = {}
    for spec in SETTINGS_FLAGS:
        if spec.name in flags:
            where, value = spec.flag, flags[spec.name]
        elif spec.env_var in env:
            where, value = spec.env_var, env[spec.env_var]
        elif spec.name in file_values:
            where, value = f"{path}: {spec.name}", file_values[spec.name]
        else:
            where, value = f"default {spec.name}", spec.default
        value = _coerce(value, spec.kind, where)
        try:
            chosen[spec.name] = _normalise(spec.name, value)
        except _Problem as exc:
            raise ConfigError(f"{where} {exc}") from None
        sources[spec.name] = where

    initial, maximum = chosen["backoff_initial"], chosen["backoff_max"]
    assert isinstance(initial, float) and isinstance(maximum, float)
    if initial > maximum:
        raise ConfigError(
            f"backoff_initial ({initial}, from {sources['backoff_initial']}) must not exceed "
            f"backoff_max ({maximum}, from {sources['backoff_max']})"
        )
    legacy_upstream, default_route = chosen["legacy_upstream"], chosen["default_route"]
    assert legacy_upstream is None or isinstance(legacy_upstream, str)
    assert isinstance(default_route, str)
    _check_routes(
        legacy_upstream,
        default_route,
        routes,
        default_source=sources["default_route"],
        file=path or "",
    )
    tables = {"evse_layouts": layouts, "chargers": chargers, "routes": routes}
    settings = Settings(**chosen, **tables)  # type: ignore[arg-type]
    return settings


def settings_from_namespace(ns: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """``load_settings`` for a namespace from a parser set up by ``add_settings_arguments``.

    Namespace entries that are not settings (sub-command name, handler, ...) are ignored.
    """
    flags = {key: value for key, value in vars(ns).items() if key in _SPECS or key == "config"}
    return load_settings(flags, env)
