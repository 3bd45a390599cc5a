"""``ocpp-gateway bench`` end to end, in --quick mode: what its figures mean, not their size.

The bench runs as a real subprocess (it starts its own processes: stub CSMS, naive
proxy, gateway, generators). Nothing here asserts a timing; the machine may be busy.
"""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest

from gateway.bench.frames import MESSAGES, call_template
from gateway.bench.stub_csms import answers
from gateway.cli import main
from gateway.sim.wire import SchemaValidator

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "gateway" / "bench"
TARGETS = ("direct", "naive", "gateway")
TINY = ["--chargers", "5", "--idle-chargers", "5", "--duration", "1", "--warmup", "0.2"]


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "--quick", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One quick bench run shared by the tests below: its JSON and its printed table."""
    where = tmp_path_factory.mktemp("bench")
    done = _bench(*TINY, "--json", "bench.json", cwd=where)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads((where / "bench.json").read_text()), done.stdout


def test_quick_bench_reports_every_section_for_every_target(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """Each target has boot, saturation and paced figures from 5 chargers; the baselines
    and the gateway have memory figures; ratios and the issue's targets are there."""
    result, table = quick_run
    assert set(result["targets"]) == set(TARGETS)
    for name in TARGETS:
        target = result["targets"][name]
        assert target["boot"]["chargers"] == 5
        assert target["boot"]["seconds"] > 0
        for phase in ("saturation", "paced"):
            load = target[phase]
            assert load["chargers"] == 5
            assert load["window_round_trips"] > 0
            assert load["per_second"] > 0
            assert load["latency_ms"]["samples"] == load["window_round_trips"]
    for name in ("naive", "gateway"):
        memory = result["targets"][name]["memory"]
        assert memory["chargers"] == 5
        assert memory["rss_before_kib"] > 0 and memory["rss_after_kib"] > 0
    assert result["targets"]["direct"]["memory"] is None  # the stub is no proxy
    assert result["comparison"]["throughput_vs_direct"] > 0
    assert result["comparison"]["throughput_vs_naive"] > 0
    assert {goal["name"] for goal in result["goals"]} >= {"throughput", "memory"}
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]
    assert "saturation: round trips/s" in table and "issue targets:" in table


def test_every_call_the_generators_sent_got_its_callresult(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """Round trips counted by the generators equal the CALLRESULTs they received, with
    no CALLERROR, for every target and phase."""
    result, _ = quick_run
    for name in TARGETS:
        for phase in ("saturation", "paced"):
            load = result["targets"][name][phase]
            assert load["round_trips"] == load["callresults"] > 0
            assert load["call_errors"] == 0
            assert load["sent"] == load["round_trips"]


def test_the_csms_received_translated_2_0_1_meter_values_through_the_gateway(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    """Every 1.6 MeterValues the gateway answered reached the stub CSMS as a valid 2.0.1
    MeterValuesRequest; the baselines delivered theirs as 1.6."""
    result, _ = quick_run
    received = result["csms_received"]
    for name in TARGETS:
        version = "ocpp2.0.1" if name == "gateway" else "ocpp1.6"
        for phase, key in (("saturation", "sat"), ("paced", "paced")):
            load = result["targets"][name][phase]
            assert received[f"{name}.{key}"][version]["MeterValues"] == load["callresults"]
            assert load["delivered_upstream"] == load["callresults"]
    assert "ocpp1.6" not in received["gateway.sat"]
    frame = orjson.loads(result["csms_samples"]["gateway.sat ocpp2.0.1 MeterValues"])
    assert frame[0] == 2 and frame[2] == "MeterValues"
    assert frame[3]["evseId"] == 1
    assert SchemaValidator().errors("2.0.1", "MeterValues", "request", frame[3]) == []


def test_bench_against_a_dead_target_exits_non_zero_with_a_clear_message(
    tmp_path: Path,
) -> None:
    """Nothing listens at --target: exit 1, the URL and the reason, and no figures."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    url = f"ws://127.0.0.1:{port}/ocpp"
    done = _bench(*TINY, "--target", url, "--json", "bench.json", cwd=tmp_path)
    assert done.returncode == 1
    assert "FAILED, no figures reported" in done.stderr
    assert f"{url}/gateway.probe.g0.0: cannot connect" in done.stderr
    assert "Traceback" not in done.stderr
    assert "round trips/s" not in done.stdout
    assert not (tmp_path / "bench.json").exists()


def test_target_pid_without_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--target-pid names the process of an external --target; alone it is refused."""
    assert main(["bench", "--target-pid", "1"]) == 2
    assert "--target-pid needs --target" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_stub_csms_answers_are_schema_valid(version: Literal["1.6", "2.0.1"]) -> None:
    """Cheap as they are, the stub's pre-serialised answers are valid responses."""
    validator = SchemaValidator()
    for action, payload in answers("2024-05-01T12:00:00.000Z")[f"ocpp{version}"].items():
        assert validator.errors(version, action, "response", payload) == [], action


def test_workload_frames_are_valid_1_6_requests_of_the_documented_size() -> None:
    """The generator's frames validate as 1.6; MeterValues is the 537-byte message."""
    validator = SchemaValidator()
    for action, payload in MESSAGES.values():
        assert validator.errors("1.6", action, "request", payload) == [], action
    assert call_template(*MESSAGES["meter-values"]).size() == 537


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_shares_no_code_with_the_gateway(path: Path) -> None:
    """A measuring peer must not share the code it measures: bench/ imports only itself."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}  # fmt: skip
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    bad = {n for n in names if n.startswith("gateway") and not n.startswith("gateway.bench")}
    assert not bad, f"{path.name} imports {sorted(bad)}"
