"""Tests for gateway.translate.dispatch: the ROUTES table is consistent with both versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, known_actions, validate
from gateway.translate import unsupported
from gateway.translate.dispatch import ROUTES, SESSION_ROUTES
from gateway.translate.types import Direction

from .conftest import MakeContext

#: (sender version, receiver version) of each direction.
VERSIONS = {
    Direction.CHARGER_TO_CSMS: (Version.V16, Version.V201),
    Direction.CSMS_TO_CHARGER: (Version.V201, Version.V16),
}

#: 1.6 CALLs a charger may send before the CSMS accepted its BootNotification: the boot
#: itself (B01.FR.08), and the two the gateway can answer or hold without the CSMS.
# StatusNotification, Start/StopTransaction and MeterValues are handled by the
# transaction desk (SESSION_ROUTES): answered, and held in the outbox until accepted.
ALLOWED_BEFORE_ACCEPTED = {"BootNotification", "Heartbeat"}

#: A valid 1.6 request for each action that has a before_accepted converter.
SAMPLES: dict[str, Payload] = {
    "BootNotification": {"chargePointVendor": "ACME", "chargePointModel": "Wallbox 22"},
    "Heartbeat": {},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
}

DATA = Path(__file__).resolve().parents[2] / "data"

ROUTE_KEYS = [pytest.param(key, id=f"{key[0].value}/{key[1]}") for key in ROUTES]
EARLY_KEYS = [
    pytest.param(key, id=key[1])
    for key, route in ROUTES.items()
    if key[0] is Direction.CHARGER_TO_CSMS and route.before_accepted is not None
]


@pytest.mark.parametrize("key", ROUTE_KEYS)
def test_route_action_is_a_real_action_of_the_sender_version(key: tuple[Direction, str]) -> None:
    """A charger sends 1.6 actions and the CSMS 2.0.1 ones; a route for anything else is dead."""
    direction, action = key
    sender, _ = VERSIONS[direction]
    assert action in known_actions(sender)


@pytest.mark.parametrize("key", ROUTE_KEYS)
def test_route_target_is_a_real_action_of_the_receiver_version(key: tuple[Direction, str]) -> None:
    """What a route forwards must exist in the version of the side receiving it."""
    direction, _ = key
    _, receiver = VERSIONS[direction]
    if ROUTES[key].target == unsupported.ANSWERED:
        return  # forwards nothing: test_gateway_answered_routes_forward_nothing
    assert ROUTES[key].target in known_actions(receiver)


ANSWERED_KEYS = [
    pytest.param(key, id=key[1])
    for key, route in ROUTES.items()
    if route.target == unsupported.ANSWERED
]


@pytest.mark.parametrize("key", ANSWERED_KEYS)
def test_gateway_answered_routes_forward_nothing(
    key: tuple[Direction, str], make_context: MakeContext
) -> None:
    """A 2.0.1 request with no 1.6 counterpart never reaches the charger: the minimal
    valid request (required fields only, from its golden case) gets a valid local reply,
    and the route's note says what it is, for docs/coverage.md."""
    direction, action = key
    assert direction is Direction.CSMS_TO_CHARGER
    route = ROUTES[key]
    assert route.note
    golden = sorted((DATA / action).glob("*.json"))
    assert golden, f"{action} has no golden case"
    for path in golden:
        received = json.loads(path.read_text())["received"]
        outcome = route.request(received, make_context())
        assert outcome.forward is None and outcome.then == () and outcome.effects == ()
        assert outcome.reply is not None
        validate(Version.V201, action, Kind.RESPONSE, outcome.reply)


@pytest.mark.parametrize("key", ROUTE_KEYS)
def test_route_converters_follow_the_req_conf_naming(key: tuple[Direction, str]) -> None:
    """Request converters are <message>_req and result converters <message>_conf (core.py)."""
    route = ROUTES[key]
    assert route.request.__name__.endswith("_req")
    assert route.result.__name__.endswith("_conf")


def test_only_boot_and_heartbeat_have_a_before_accepted_converter() -> None:
    """Every other charger CALL must be refused until registration (B01.FR.08, B02.FR.09)."""
    early = {
        action
        for (direction, action), route in ROUTES.items()
        if direction is Direction.CHARGER_TO_CSMS and route.before_accepted is not None
    }
    assert early == ALLOWED_BEFORE_ACCEPTED


def test_csms_routes_have_no_before_accepted_converter() -> None:
    """Registration gates only what the charger sends; the field is unused for the CSMS side."""
    assert all(
        route.before_accepted is None
        for (direction, _), route in ROUTES.items()
        if direction is Direction.CSMS_TO_CHARGER
    )


@pytest.mark.parametrize("key", EARLY_KEYS)
def test_before_accepted_converters_forward_nothing_but_the_boot(
    key: tuple[Direction, str], make_context: MakeContext
) -> None:
    """Before acceptance only the boot reaches the CSMS; the rest get a valid local reply."""
    _, action = key
    route = ROUTES[key]
    assert route.before_accepted is not None
    outcome = route.before_accepted(SAMPLES[action], make_context())
    assert outcome.then == ()
    if action == "BootNotification":
        assert outcome.forward is not None
        assert outcome.forward.action == "BootNotification"
        validate(Version.V201, "BootNotification", Kind.REQUEST, outcome.forward.payload)
    else:
        assert outcome.forward is None
        assert outcome.reply is not None
        validate(Version.V16, action, Kind.RESPONSE, outcome.reply)


def test_session_routes_take_only_actions_of_the_sender_and_name_known_targets() -> None:
    """Desk rows are real actions of the sending version; their forwarded target too."""
    for (direction, action), route in SESSION_ROUTES.items():
        sender, receiver = VERSIONS[direction]
        assert action in known_actions(sender)
        for target in route.target.split(" / "):
            assert target == "answered by the gateway" or target in known_actions(receiver)


def test_only_desk_actions_with_a_pure_converter_are_in_both_tables() -> None:
    """The desk is checked first; StatusNotification and SecurityEventNotification keep
    their pure converter rows for the desk to use (and their golden cases). No other
    action may be claimed twice."""
    assert set(SESSION_ROUTES) & set(ROUTES) == {
        (Direction.CHARGER_TO_CSMS, "StatusNotification"),
        (Direction.CHARGER_TO_CSMS, "SecurityEventNotification"),
    }
