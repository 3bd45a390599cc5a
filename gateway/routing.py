"""Which CSMS a 1.6 charger talks to: the routing table of a migration in waves.

Layer: bottom (standard library only; no I/O). Rules are data: the config file's
``[[routes]]`` tables and the admin API's changes (kept in the state store) build one
:class:`RoutingTable`; :meth:`RoutingTable.decide` is a pure function of the table and
what is known of the charger.

Routes (issue 9): ``translate`` sends the 1.6 charger, translated, to the 2.0.1 CSMS
(``--upstream``); ``legacy`` passes it through untouched to the 1.6 CSMS
(``--legacy-upstream``). ``shadow`` also mirrors the charger's traffic, read-only, to
the other CSMS. Native 2.0.1 chargers are not routed: they always pass through.

How a charger is decided (:meth:`RoutingTable.decide`):

1. the rules naming the charger exactly (``charger``): the last one that matches wins;
2. then every other rule, in table order: the first that matches wins;
3. no rule matches: the table's ``default`` route (``--default-route``), no shadow.

A rule matches when every condition it sets matches; one with a ``vendor`` or
``model`` condition never matches a charger whose BootNotification is not known yet.

Config rules and stored rules (:meth:`RoutingTable.merged`): the table in force is the
config file's table merged with the rules the admin API stored. The stored (runtime)
rules come FIRST, as they are the operator's newer decisions, then the config file's, so
a stored rule wins over a config rule both match. A stored rule also replaces outright
the config file's rule of the same ``name`` (a wave the admin API lowered must not go
on catching chargers through the file's wider one) and the config file's exact rules
for the same charger (exact rules are consulted last-one-wins, so without that the
file's would win). The admin side edits the stored rules alone: it builds
``RoutingTable(rules=stored)``, applies :meth:`~RoutingTable.with_charger_rule`,
:meth:`~RoutingTable.without_charger_rule` or :meth:`~RoutingTable.with_wave`, stores
the result with :func:`document_from_rules` (compare-and-set in the store), and puts
``config_table.merged(new_stored)`` in force. Clearing a stored rule lets the config
file's rules decide again.

Percentage waves: :func:`bucket` places each charger id at a stable point in [0, 100)
(from SHA-256 of the id, the same in every process, replica and version); a wave of
``percent`` p takes the chargers whose bucket is below p, so raising p only ever adds
chargers and lowering it only ever gives some back.

Serialised forms: :func:`rules_from_data` / :func:`rules_to_data` for TOML and JSON
tables (the keys are :data:`RULE_KEYS`); :func:`document_from_rules` /
:func:`rules_from_document` for the text the state store keeps (JSON with a
``"version": 1`` format marker).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Final

__all__ = [
    "DOCUMENT_VERSION",
    "RULE_KEYS",
    "Decision",
    "Route",
    "RouteRule",
    "RoutingTable",
    "bucket",
    "document_from_rules",
    "rules_from_data",
    "rules_from_document",
    "rules_to_data",
]


class Route(StrEnum):
    TRANSLATE = "translate"
    LEGACY = "legacy"


#: The keys of a rule's table (TOML ``[[routes]]``, JSON), in their canonical order.
RULE_KEYS: Final = ("route", "shadow", "name", "charger", "pattern", "vendor", "model", "percent")
#: The conditions: a rule sets at least one.
_CONDITIONS: Final = ("charger", "pattern", "vendor", "model", "percent")
_TEXT_KEYS: Final = ("name", "charger", "pattern", "vendor", "model")
#: The format marker of :func:`document_from_rules`; a newer one is refused.
DOCUMENT_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule:
    """One rule; it matches a charger when every condition it sets matches.

    ``charger``: the exact charge point id. ``pattern``: an fnmatch glob on the id.
    ``vendor``/``model``: fnmatch globs on the charger's last BootNotification
    (chargePointVendor, chargePointModel), known from an earlier connection.
    ``percent``: a wave: the charger's stable bucket (from a hash of its id, in
    [0, 100)) is below it, so raising the percent only ever adds chargers.

    Globs are case-sensitive (``fnmatchcase``). ``route`` may be given as the string
    ``"translate"`` or ``"legacy"``; ``percent`` is kept as a float. A rule without any
    condition, or with a bad value, is a ValueError.
    """

    route: Route
    shadow: bool = False
    name: str = ""
    charger: str | None = None
    pattern: str | None = None
    vendor: str | None = None
    model: str | None = None
    percent: float | None = None

    def __post_init__(self) -> None:
        route: object = self.route
        if not isinstance(route, Route):
            if not isinstance(route, str) or route not in {r.value for r in Route}:
                raise ValueError(f"route must be translate or legacy, got {route!r}")
            object.__setattr__(self, "route", Route(route))
        if not isinstance(self.shadow, bool):
            raise ValueError(f"shadow must be true or false, got {self.shadow!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        for key in ("charger", "pattern", "vendor", "model"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{key} must be a non-empty string, got {value!r}")
        percent: object = self.percent
        if percent is not None:
            if (
                not isinstance(percent, int | float)
                or isinstance(percent, bool)
                or not math.isfinite(percent)
                or not 0 <= percent <= 100
            ):
                raise ValueError(f"percent must be a number from 0 to 100, got {percent!r}")
            object.__setattr__(self, "percent", float(percent))
        if all(getattr(self, key) is None for key in _CONDITIONS):
            raise ValueError(
                "a rule needs at least one condition (charger, pattern, vendor, model or "
                "percent): one without any would catch every charger; use default_route "
                "for that"
            )

    @property
    def label(self) -> str:
        """What :class:`Decision` names the rule by: its name; ``charger:<id>`` for an
        exact rule without one; otherwise its conditions, e.g. ``pattern:ACME-*``."""
        if self.name:
            return self.name
        if self.charger is not None:
            return f"charger:{self.charger}"
        return " ".join(
            f"{key}:{value:g}" if key == "percent" else f"{key}:{value}"
            for key in _CONDITIONS
            if (value := getattr(self, key)) is not None
        )

    def matches(self, station_id: str, *, vendor: str | None, model: str | None) -> bool:
        """Every condition the rule sets holds for this charger (an unknown vendor or
        model never matches a condition on it)."""
        if self.charger is not None and station_id != self.charger:
            return False
        if self.pattern is not None and not fnmatchcase(station_id, self.pattern):
            return False
        if self.vendor is not None and (vendor is None or not fnmatchcase(vendor, self.vendor)):
            return False
        if self.model is not None and (model is None or not fnmatchcase(model, self.model)):
            return False
        return self.percent is None or bucket(station_id) < self.percent


@dataclass(frozen=True, slots=True)
class Decision:
    route: Route
    shadow: bool
    rule: str  # the matching rule's name, "charger:<id>", or "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingTable:
    """Rules in order; exact-charger rules are consulted first, then the rest in order;
    no match: ``default`` without shadow.

    Names identify rules (:meth:`with_wave` replaces by name, :class:`Decision` reports
    it): two rules with the same non-empty name are a ValueError. ``default`` may be
    given as a string; ``rules`` as a list.
    """

    rules: tuple[RouteRule, ...] = ()
    default: Route = Route.TRANSLATE
    # Indexes for decide(): exact rules by charger, newest first; the other rules.
    _exact: Mapping[str, tuple[RouteRule, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _others: tuple[RouteRule, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        default: object = self.default
        if not isinstance(default, Route):
            if not isinstance(default, str) or default not in {r.value for r in Route}:
                raise ValueError(f"default route must be translate or legacy, got {default!r}")
            object.__setattr__(self, "default", Route(default))
        rules: object = self.rules
        if not isinstance(rules, tuple | list) or not all(
            isinstance(rule, RouteRule) for rule in rules
        ):
            raise ValueError(f"rules must be a sequence of RouteRule, got {rules!r}")
        object.__setattr__(self, "rules", tuple(rules))
        _check_unique_names(self.rules, "rules")
        exact: dict[str, tuple[RouteRule, ...]] = {}
        for rule in self.rules:
            if rule.charger is not None:
                exact[rule.charger] = (rule, *exact.get(rule.charger, ()))
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_others", tuple(r for r in self.rules if r.charger is None))

    def decide(self, station_id: str, *, vendor: str | None, model: str | None) -> Decision:
        """Where the charger goes: the last matching exact rule, else the first matching
        other rule, else the default (see the module docstring)."""
        for rule in (*self._exact.get(station_id, ()), *self._others):
            if rule.matches(station_id, vendor=vendor, model=model):
                return Decision(rule.route, rule.shadow, rule.label)
        return Decision(self.default, False, "default")

    def with_charger_rule(self, station_id: str, route: Route, shadow: bool) -> RoutingTable:
        """A table where the charger has one rule of its own (its earlier exact rules
        go), appended at the end."""
        rule = RouteRule(route=route, shadow=shadow, charger=station_id)
        kept = tuple(r for r in self.rules if r.charger != station_id)
        return RoutingTable(rules=(*kept, rule), default=self.default)

    def without_charger_rule(self, station_id: str) -> RoutingTable:
        """A table without the charger's exact rules: the other rules decide it again."""
        kept = tuple(r for r in self.rules if r.charger != station_id)
        return RoutingTable(rules=kept, default=self.default)

    def with_wave(self, name: str, percent: float, route: Route, shadow: bool) -> RoutingTable:
        """A table where the wave ``name`` takes ``percent`` of the chargers: the rule of
        that name is replaced where it stands, or the wave is appended."""
        if not name:
            raise ValueError("a wave needs a name")
        wave = RouteRule(route=route, shadow=shadow, name=name, percent=percent)
        if any(r.name == name for r in self.rules):
            rules = tuple(wave if r.name == name else r for r in self.rules)
        else:
            rules = (*self.rules, wave)
        return RoutingTable(rules=rules, default=self.default)

    def merged(self, stored: tuple[RouteRule, ...]) -> RoutingTable:
        """This (config) table with the admin API's ``stored`` rules: the stored ones
        first, then this table's, less those a stored rule replaces (same name, or exact
        rules for a charger a stored rule names exactly). The default stays this one's."""
        names = {rule.name for rule in stored if rule.name}
        chargers = {rule.charger for rule in stored if rule.charger is not None}
        kept = tuple(
            rule
            for rule in self.rules
            if rule.name not in names and (rule.charger is None or rule.charger not in chargers)
        )
        return RoutingTable(rules=(*stored, *kept), default=self.default)


def bucket(station_id: str) -> float:
    """The charger's stable place in [0, 100) for percentage waves.

    The first 8 bytes of SHA-256 of the id (UTF-8) as an unsigned big-endian integer,
    modulo 10 000, divided by 100: steps of 0.01, the same in every process and version
    (``hash()`` is salted per process; changing this moves chargers between CSMSs).
    """
    digest = hashlib.sha256(station_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=False) % 10_000 / 100


# --------------------------------------------------------------------------------------
# Serialised forms
# --------------------------------------------------------------------------------------


def _check_unique_names(rules: Sequence[RouteRule], where: str) -> None:
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.name and rule.name in seen:
            raise ValueError(
                f"{where}[{index}]: name {rule.name!r} is already the name of "
                f"{where}[{seen[rule.name]}]"
            )
        seen.setdefault(rule.name, index)


def _rule_from_data(item: object, where: str) -> RouteRule:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a table of {', '.join(RULE_KEYS)}, got {item!r}")
    for key in item:
        if key not in RULE_KEYS:
            raise ValueError(f"{where}: unknown key {key!r} (expected {', '.join(RULE_KEYS)})")
    if "route" not in item:
        raise ValueError(f"{where}: route is required (translate or legacy)")
    for key in _TEXT_KEYS:
        if key in item and not isinstance(item[key], str):
            raise ValueError(f"{where}: {key} must be a string, got {item[key]!r}")
    try:
        return RouteRule(**{str(key): value for key, value in item.items()})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def rules_from_data(items: list[dict[str, object]], where: str) -> tuple[RouteRule, ...]:
    """Rules from parsed TOML or JSON tables (keys: :data:`RULE_KEYS`; ``route`` is
    required). A ValueError names ``where[index]`` and the bad key or value, e.g.
    ``gateway.toml: routes[2]: unknown key 'patern'``."""
    if not isinstance(items, list | tuple):
        raise ValueError(f"{where}: expected a list of tables, got {items!r}")
    rules = tuple(_rule_from_data(item, f"{where}[{index}]") for index, item in enumerate(items))
    _check_unique_names(rules, where)
    return rules


def rules_to_data(rules: Sequence[RouteRule]) -> list[dict[str, object]]:
    """The tables :func:`rules_from_data` reads back into equal rules: ``route`` as its
    string, fields that are None, False or "" left out."""
    data: list[dict[str, object]] = []
    for rule in rules:
        item: dict[str, object] = {}
        for key in RULE_KEYS:
            value = getattr(rule, key)
            if key == "route":
                item[key] = str(value.value)
            elif value is not None and value is not False and value != "":
                item[key] = value
        data.append(item)
    return data


def document_from_rules(rules: Sequence[RouteRule]) -> str:
    """The text the state store keeps: ``{"version": 1, "rules": [...]}`` as JSON."""
    return json.dumps(
        {"version": DOCUMENT_VERSION, "rules": rules_to_data(rules)},
        ensure_ascii=False,
        allow_nan=False,
    )


def rules_from_document(text: str) -> tuple[RouteRule, ...]:
    """The rules of :func:`document_from_rules`'s text; ValueError for anything else
    (not JSON, no version 1 marker, a bad rule: named ``routing document: rules[i]``)."""
    where = "routing document"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{where}: expected a JSON object with version and rules")
    version = document.get("version")
    if version != DOCUMENT_VERSION or isinstance(version, bool):
        raise ValueError(
            f"{where}: format version {version!r} is not {DOCUMENT_VERSION}, the one this "
            "gateway understands (written by a newer gateway?)"
        )
    extra = sorted(set(document) - {"version", "rules"})
    if extra:
        raise ValueError(f"{where}: unknown key {extra[0]!r}")
    rules = document.get("rules")
    if not isinstance(rules, list):
        raise ValueError(f"{where}: rules must be a list, got {rules!r}")
    return rules_from_data(rules, f"{where}: rules")
