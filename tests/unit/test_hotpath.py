"""python -m gateway.hotpath, the in-process hot-path measure: it must keep measuring
real translated round trips (every CALL answered with a CALLRESULT, none lost)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.hotpath import run


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
