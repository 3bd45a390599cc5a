"""python -m gateway.hotpath, the in-process hot-path measure: it must keep measuring
real translated round trips (every CALL answered with a CALLRESULT, none lost)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.hotpath import run
from gateway.session import bridge
from gateway.session.certificates import CertificateDesk
from gateway.session.device_model import DeviceModelDesk
from gateway.session.remote_control import RemoteControl
from gateway.session.transactions import TransactionDesk


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_every_timed_round_trip_is_a_translated_answer(store: str, tmp_path: Path) -> None:
    state = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'hotpath.db'}"
    result = await run(
        state=state,
        stations=3,
        messages=30,
        message="meter-values",
        validate_inbound=True,
        serving_gc=False,  # freezing would outlive this test
    )
    # The charger raises on anything but a CALLRESULT, so each counted answer is one.
    assert result.round_trips == 30
    assert result.cpu_seconds > 0


def test_every_desk_handler_names_a_method_of_its_desk() -> None:
    """The session's class-level table of desk handlers (bridge._DESK_HANDLERS) names
    real methods: a typo would only show when the CSMS first sends that action."""
    desks = {
        "_desk": TransactionDesk,
        "_remote": RemoteControl,
        "_certificates": CertificateDesk,
        "_device": DeviceModelDesk,
    }
    for (_, action), (desk, method) in bridge._DESK_HANDLERS.items():
        assert callable(getattr(desks[desk], method, None)), (action, desk, method)
