"""Tests for gateway.routing: how a 1.6 charger is routed, waves, and the rule formats."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.routing import (
    Decision,
    Route,
    RouteRule,
    RoutingTable,
    bucket,
    document_from_rules,
    rules_from_data,
    rules_from_document,
    rules_to_data,
)

T, L = Route.TRANSLATE, Route.LEGACY


def decide(
    table: RoutingTable, station_id: str, vendor: str | None = None, model: str | None = None
) -> Decision:
    return table.decide(station_id, vendor=vendor, model=model)


# --- decide -------------------------------------------------------------------------------


def test_no_rule_matches_the_default_decides_without_shadow() -> None:
    assert decide(RoutingTable(), "CP-1") == Decision(T, False, "default")
    table = RoutingTable(rules=(RouteRule(route=T, pattern="X-*", shadow=True),), default=L)
    assert decide(table, "CP-1") == Decision(L, False, "default")


def test_an_exact_rule_beats_a_pattern_rule_listed_before_it() -> None:
    table = RoutingTable(
        rules=(
            RouteRule(route=L, pattern="CP-*", name="old fleet"),
            RouteRule(route=T, charger="CP-7", shadow=True),
        )
    )
    assert decide(table, "CP-7") == Decision(T, True, "charger:CP-7")
    assert decide(table, "CP-8") == Decision(L, False, "old fleet")


def test_of_several_exact_rules_the_last_matching_one_wins() -> None:
    table = RoutingTable(
        rules=(
            RouteRule(route=L, charger="CP-7", name="first"),
            RouteRule(route=T, charger="CP-7", name="second"),
            RouteRule(route=L, charger="CP-7", vendor="Other", name="third"),
        )
    )
    assert decide(table, "CP-7", vendor="Acme") == Decision(T, False, "second")
    assert decide(table, "CP-7", vendor="Other") == Decision(L, False, "third")


def test_other_rules_are_tried_in_order_and_the_first_match_wins() -> None:
    table = RoutingTable(
        rules=(
            RouteRule(route=L, pattern="ACME-*", name="acme"),
            RouteRule(route=T, pattern="ACME-1*", name="acme 1"),
            RouteRule(route=T, pattern="*", shadow=True, name="all"),
        )
    )
    assert decide(table, "ACME-12").rule == "acme"
    assert decide(table, "OTHER-1") == Decision(T, True, "all")


def test_every_condition_of_a_rule_must_match() -> None:
    rule = RouteRule(route=L, pattern="ACME-*", vendor="Acme*", model="Volt ??")
    table = RoutingTable(rules=(rule,))
    assert decide(table, "ACME-1", "AcmeCorp", "Volt 22").route is L
    assert decide(table, "ACME-1", "AcmeCorp", "Volt 2").rule == "default"
    assert decide(table, "ACME-1", "Other", "Volt 22").rule == "default"
    assert decide(table, "BETA-1", "AcmeCorp", "Volt 22").rule == "default"
    assert decide(table, "ACME-1", "AcmeCorp", "Volt 22").rule == (
        "pattern:ACME-* vendor:Acme* model:Volt ??"
    )


def test_globs_are_case_sensitive() -> None:
    table = RoutingTable(rules=(RouteRule(route=L, pattern="acme-*", vendor="Acme"),))
    assert decide(table, "ACME-1", "Acme").rule == "default"
    assert decide(table, "acme-1", "ACME").rule == "default"
    assert decide(table, "acme-1", "Acme").route is L


@pytest.mark.parametrize("condition", [{"vendor": "*"}, {"model": "*"}])
def test_a_vendor_or_model_condition_never_matches_an_unknown_charger(
    condition: dict[str, Any],
) -> None:
    """Even "*": before its first BootNotification nothing is known of the charger."""
    table = RoutingTable(rules=(RouteRule(route=L, **condition),))
    assert decide(table, "CP-1").rule == "default"
    assert decide(table, "CP-1", vendor="Acme", model="Volt").route is L


def test_a_percent_rule_takes_the_chargers_below_it() -> None:
    ids = [f"CP-{n}" for n in range(200)]
    table = RoutingTable(rules=(RouteRule(route=L, percent=30, name="wave 1"),))
    chosen = {i for i in ids if decide(table, i).route is L}
    assert chosen == {i for i in ids if bucket(i) < 30}
    assert decide(table, next(iter(chosen))).rule == "wave 1"
    none = RoutingTable(rules=(RouteRule(route=L, percent=0),))
    every = RoutingTable(rules=(RouteRule(route=L, percent=100),))
    assert not any(decide(none, i).route is L for i in ids)
    assert all(decide(every, i).route is L for i in ids)


def test_unnamed_rules_are_named_by_their_conditions() -> None:
    assert RouteRule(route=L, charger="CP-1").label == "charger:CP-1"
    assert RouteRule(route=L, charger="CP-1", name="pilot").label == "pilot"
    assert RouteRule(route=L, percent=12.5).label == "percent:12.5"
    assert RouteRule(route=L, vendor="Acme").label == "vendor:Acme"


# --- buckets and waves --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("station_id", "expected"),
    [("CP-1", 32.17), ("ACME-0001", 27.29), ("Ladesäule-7", 50.06)],
)
def test_buckets_are_pinned(station_id: str, expected: float) -> None:
    """A changed hash would move chargers between CSMSs mid-migration: these must hold."""
    assert bucket(station_id) == expected


def test_buckets_spread_evenly() -> None:
    """Each tenth of [0, 100) holds 8-12 % of 10,000 ids."""
    deciles = Counter(int(bucket(f"station-{n:05d}") // 10) for n in range(10_000))
    assert set(deciles) == set(range(10))
    assert all(800 <= count <= 1200 for count in deciles.values()), deciles


@given(st.text(max_size=40))
def test_a_bucket_is_in_range_in_hundredths(station_id: str) -> None:
    value = bucket(station_id)
    assert 0 <= value < 100
    assert round(value * 100) == pytest.approx(value * 100)


@given(
    ids=st.lists(st.text(min_size=1, max_size=20), max_size=50, unique=True),
    low=st.floats(0, 100),
    high=st.floats(0, 100),
)
def test_raising_a_wave_only_adds_chargers(ids: list[str], low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)

    def legacy(percent: float) -> set[str]:
        table = RoutingTable().with_wave("wave", percent, L, False)
        return {i for i in ids if decide(table, i).route is L}

    assert legacy(low) <= legacy(high)


# --- building tables ----------------------------------------------------------------------


def test_a_charger_rule_replaces_the_charger_s_earlier_ones() -> None:
    table = RoutingTable(
        rules=(RouteRule(route=L, charger="CP-1"), RouteRule(route=L, pattern="*")),
        default=L,
    )
    changed = table.with_charger_rule("CP-1", T, True)
    assert changed.rules == (
        RouteRule(route=L, pattern="*"),
        RouteRule(route=T, shadow=True, charger="CP-1"),
    )
    assert changed.default is L
    assert decide(changed, "CP-1") == Decision(T, True, "charger:CP-1")
    assert table.rules[0].route is L  # tables are values: the old one is unchanged
    cleared = changed.without_charger_rule("CP-1")
    assert cleared.rules == (RouteRule(route=L, pattern="*"),)
    assert cleared.without_charger_rule("CP-1") == cleared


def test_a_wave_is_replaced_where_it_stands_or_appended() -> None:
    table = RoutingTable(
        rules=(RouteRule(route=L, name="w1", percent=10), RouteRule(route=T, pattern="*"))
    )
    raised = table.with_wave("w1", 40, L, True)
    assert raised.rules[0] == RouteRule(route=L, shadow=True, name="w1", percent=40)
    assert len(raised.rules) == 2
    added = raised.with_wave("w2", 5, T, False)
    assert added.rules[-1] == RouteRule(route=T, name="w2", percent=5)
    with pytest.raises(ValueError, match="name"):
        table.with_wave("", 5, T, False)
    with pytest.raises(ValueError, match="percent"):
        table.with_wave("w1", 101, T, False)


def test_stored_rules_come_before_the_config_file_s() -> None:
    config = RoutingTable(
        rules=(
            RouteRule(route=L, pattern="ACME-*", name="acme"),
            RouteRule(route=L, name="wave", percent=90),
            RouteRule(route=L, charger="CP-1"),
            RouteRule(route=L, charger="CP-2"),
        ),
        default=L,
    )
    stored = (
        RouteRule(route=T, pattern="ACME-1*"),
        RouteRule(route=T, name="wave", percent=10),
        RouteRule(route=T, charger="CP-1"),
    )
    table = config.merged(stored)
    assert table.default is L
    assert table.rules == (
        *stored,
        RouteRule(route=L, pattern="ACME-*", name="acme"),
        RouteRule(route=L, charger="CP-2"),
    )
    assert decide(table, "ACME-12").route is T  # the stored rule is tried first
    assert decide(table, "ACME-2").rule == "acme"
    assert decide(table, "CP-1").route is T  # the stored exact rule replaced the file's
    assert decide(table, "CP-2").route is L
    # the file's 90 % wave no longer catches what the stored 10 % one gave back
    back = next(f"X-{n}" for n in range(1000) if 10 <= bucket(f"X-{n}") < 90)
    assert decide(table, back) == Decision(L, False, "default")
    assert config.merged(()) == config


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"route": "legacy"}, "at least one condition.*use default_route"),
        ({"route": "legacy", "name": "all"}, "at least one condition"),
        ({"route": "elsewhere", "pattern": "*"}, "route must be translate or legacy"),
        ({"route": "legacy", "percent": 100.5}, "percent must be a number from 0 to 100"),
        ({"route": "legacy", "percent": -1}, "percent"),
        ({"route": "legacy", "percent": float("nan")}, "percent"),
        ({"route": "legacy", "percent": True}, "percent"),
        ({"route": "legacy", "pattern": ""}, "pattern must be a non-empty string"),
        ({"route": "legacy", "charger": "CP", "shadow": "yes"}, "shadow must be true or false"),
    ],
)
def test_invalid_rules_are_value_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteRule(**fields)


def test_route_strings_become_routes_and_percent_a_float() -> None:
    rule = RouteRule(route="legacy", percent=25)  # type: ignore[arg-type]
    assert rule.route is L
    assert isinstance(rule.percent, float)
    assert RoutingTable(default="legacy").default is L  # type: ignore[arg-type]


def test_rule_names_are_unique_in_a_table() -> None:
    rules = (RouteRule(route=L, name="w", percent=1), RouteRule(route=T, name="w", percent=2))
    with pytest.raises(ValueError, match=r"rules\[1\]: name 'w'.*rules\[0\]"):
        RoutingTable(rules=rules)


# --- the TOML/JSON tables and the stored document -----------------------------------------


def test_rules_are_read_from_tables() -> None:
    rules = rules_from_data(
        [
            {"route": "legacy", "pattern": "ACME-*", "vendor": "Acme", "name": "acme"},
            {"route": "translate", "charger": "CP-1", "shadow": True},
            {"route": "legacy", "percent": 25},
        ],
        "gw.toml: routes",
    )
    assert rules == (
        RouteRule(route=L, pattern="ACME-*", vendor="Acme", name="acme"),
        RouteRule(route=T, charger="CP-1", shadow=True),
        RouteRule(route=L, percent=25.0),
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"route": "legacy", "patern": "x"}, r"gw\.toml: routes\[1\]: unknown key 'patern'"),
        ({"pattern": "x"}, r"routes\[1\]: route is required"),
        ({"route": "legacy"}, r"routes\[1\]: a rule needs at least one condition"),
        ({"route": "legacy", "pattern": 5}, r"routes\[1\]: pattern must be a string"),
        ({"route": "legacy", "percent": "10"}, r"routes\[1\]: percent must be a number"),
        ({"route": "legacy", "percent": 50, "name": "ok"}, r"routes\[1\]: name 'ok'"),
        ("pattern", r"routes\[1\]: expected a table"),
    ],
)
def test_bad_tables_name_where_and_the_key(item: Any, message: str) -> None:
    items = [{"route": "translate", "charger": "CP-1", "name": "ok"}, item]
    with pytest.raises(ValueError, match=message):
        rules_from_data(items, "gw.toml: routes")


def test_tables_leave_out_unset_fields() -> None:
    rules = (RouteRule(route=L, charger="CP-1"), RouteRule(route=T, shadow=True, percent=0))
    assert rules_to_data(rules) == [
        {"route": "legacy", "charger": "CP-1"},
        {"route": "translate", "shadow": True, "percent": 0.0},
    ]


_text = st.text(min_size=1, max_size=12)
_rules = (
    st.fixed_dictionaries(
        {
            "route": st.sampled_from(Route),
            "shadow": st.booleans(),
            "name": st.just("") | _text,
            "charger": st.none() | _text,
            "pattern": st.none() | _text,
            "vendor": st.none() | _text,
            "model": st.none() | _text,
            "percent": st.none() | st.floats(0, 100) | st.integers(0, 100),
        }
    )
    .filter(
        lambda f: any(
            f[k] is not None for k in ("charger", "pattern", "vendor", "model", "percent")
        )
    )
    .map(lambda f: RouteRule(**f))
)
_rule_lists = st.lists(_rules, max_size=8, unique_by=lambda r: r.name or object())


@given(_rule_lists)
def test_tables_and_documents_round_trip(rules: list[RouteRule]) -> None:
    assert rules_from_data(rules_to_data(rules), "x") == tuple(rules)
    text = document_from_rules(rules)
    assert json.loads(text)["version"] == 1
    assert rules_from_document(text) == tuple(rules)


def test_the_document_format_is_json_with_a_version() -> None:
    text = document_from_rules((RouteRule(route=L, charger="CP-1"),))
    assert json.loads(text) == {"version": 1, "rules": [{"route": "legacy", "charger": "CP-1"}]}
    assert rules_from_document('{"version": 1, "rules": []}') == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"rules": []}', "format version None"),
        ('{"version": 2, "rules": []}', "format version 2"),
        ('{"version": true, "rules": []}', "format version True"),
        ('{"version": 1}', "rules must be a list"),
        ('{"version": 1, "rules": [], "extra": 1}', "unknown key 'extra'"),
        ('{"version": 1, "rules": [{"route": "legacy"}]}', r"document: rules\[0\]"),
    ],
)
def test_a_bad_document_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules_from_document(text)
