"""Tests for gateway.translate.layout: 1.6 connectorId <-> 2.0.1 (evseId, connectorId)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import UnmappedValue
from gateway.translate.layout import EvseLayout

# Two 1.6 connectors sharing one power path (EVSE 1), a third on its own EVSE 2.
SHARED = EvseLayout({1: (1, 1), 2: (1, 2), 3: (2, 1)})


@pytest.mark.parametrize("connector", [1, 2, 7, 250])
def test_default_layout_makes_each_connector_its_own_evse(connector: int) -> None:
    """With no table, 1.6 connector n is EVSE n connector 1, and back (reference §1.1)."""
    layout = EvseLayout()
    assert layout.to_v201(connector) == (connector, 1)
    assert layout.to_v16(connector) == connector
    assert layout.to_v16(connector, 1) == connector


def test_default_layout_has_only_connector_1_per_evse() -> None:
    """EVSE n connector 2 does not exist in the default layout."""
    with pytest.raises(UnmappedValue):
        EvseLayout().to_v16(3, 2)


def test_explicit_layout_maps_connectors_to_their_evse() -> None:
    """An explicit table is followed exactly from 1.6 to 2.0.1."""
    assert SHARED.to_v201(1) == (1, 1)
    assert SHARED.to_v201(2) == (1, 2)
    assert SHARED.to_v201(3) == (2, 1)


def test_explicit_layout_maps_evse_connectors_back() -> None:
    """An explicit table is followed exactly from 2.0.1 to 1.6."""
    assert SHARED.to_v16(1, 1) == 1
    assert SHARED.to_v16(1, 2) == 2
    assert SHARED.to_v16(2, 1) == 3


def test_explicit_layout_defaults_to_the_evse_first_connector() -> None:
    """A 2.0.1 message naming only an EVSE means that EVSE's connector 1."""
    assert SHARED.to_v16(1) == 1
    assert SHARED.to_v16(2) == 3


@pytest.mark.parametrize("layout", [EvseLayout(), SHARED], ids=["default", "explicit"])
@pytest.mark.parametrize("connector", [0, -1])
def test_connector_0_and_below_do_not_map_to_an_evse(layout: EvseLayout, connector: int) -> None:
    """Connector 0 is the station itself; each message handles it, the layout refuses it."""
    with pytest.raises(UnmappedValue):
        layout.to_v201(connector)


def test_connector_missing_from_an_explicit_layout_is_unmapped() -> None:
    """A connector the table does not list has no EVSE."""
    with pytest.raises(UnmappedValue):
        SHARED.to_v201(4)


def test_evse_connector_missing_from_an_explicit_layout_is_unmapped() -> None:
    """An EVSE/connector pair the table does not list has no 1.6 connector."""
    with pytest.raises(UnmappedValue):
        SHARED.to_v16(2, 2)
    with pytest.raises(UnmappedValue):
        SHARED.to_v16(3)


def test_two_connectors_on_one_evse_connector_is_rejected() -> None:
    """A layout that is not injective could not be reversed, so it is refused."""
    with pytest.raises(ValueError, match="same EVSE connector"):
        EvseLayout({1: (1, 1), 2: (1, 1)})


def test_layout_is_immutable_after_construction() -> None:
    """Changing the dict the layout was built from does not change the layout."""
    table = {1: (1, 1)}
    layout = EvseLayout(table)
    table[2] = (2, 1)
    with pytest.raises(UnmappedValue):
        layout.to_v201(2)
    with pytest.raises(TypeError):
        layout.connectors[2] = (2, 1)  # type: ignore[index]


@pytest.mark.parametrize("evse_id", [0, -1])
def test_evse_0_and_below_are_unmapped_in_the_default_layout(evse_id: int) -> None:
    """No 2.0.1 EVSE id below 1 names a connector, in the default layout as in explicit ones."""
    with pytest.raises(UnmappedValue):
        EvseLayout().to_v16(evse_id)


def test_evse_connector_0_is_unmapped_in_an_explicit_layout() -> None:
    """2.0.1 connector ids start at 1 within an EVSE; connectorId 0 names no 1.6 connector."""
    with pytest.raises(UnmappedValue):
        SHARED.to_v16(1, 0)


# --- round-trip property ------------------------------------------------------------

evse_connectors = st.tuples(st.integers(1, 20), st.integers(1, 4))


@st.composite
def injective_layouts(draw: st.DrawFn) -> dict[int, tuple[int, int]]:
    """A random table of distinct 1.6 connectors onto distinct EVSE connectors."""
    targets = draw(st.lists(evse_connectors, min_size=1, max_size=12, unique=True))
    connectors = draw(
        st.lists(st.integers(1, 100), min_size=len(targets), max_size=len(targets), unique=True)
    )
    return dict(zip(connectors, targets, strict=True))


@given(injective_layouts())
def test_any_injective_layout_round_trips_from_1_6(table: dict[int, tuple[int, int]]) -> None:
    """For every listed connector c, to_v16(*to_v201(c)) == c."""
    layout = EvseLayout(table)
    for connector in table:
        assert layout.to_v16(*layout.to_v201(connector)) == connector


@given(injective_layouts())
def test_any_injective_layout_round_trips_from_2_0_1(table: dict[int, tuple[int, int]]) -> None:
    """For every listed EVSE connector t, to_v201(to_v16(*t)) == t."""
    layout = EvseLayout(table)
    for target in table.values():
        assert layout.to_v201(layout.to_v16(*target)) == target


@given(st.integers(1, 10_000))
def test_default_layout_round_trips(connector: int) -> None:
    """The default layout is its own inverse for every positive connector."""
    layout = EvseLayout()
    assert layout.to_v16(*layout.to_v201(connector)) == connector
