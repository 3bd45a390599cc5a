"""`ocpp-gateway serve` as a real process: configuration contract and SIGTERM lifecycle."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from gateway.mappings import default_mappings_dir
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim

pytestmark = pytest.mark.integration


async def _read_until(
    process: asyncio.subprocess.Process, pattern: str
) -> tuple[re.Match[str], list[str]]:
    """Read the gateway's log until a line matches ``pattern``."""
    assert process.stdout is not None
    seen: list[str] = []
    while line := (await asyncio.wait_for(process.stdout.readline(), 20)).decode():
        seen.append(line)
        if match := re.search(pattern, line):
            return match, seen
    raise AssertionError(f"gateway exited before logging {pattern!r}: {''.join(seen)}")


async def _listening_port(process: asyncio.subprocess.Process) -> tuple[int, list[str]]:
    """Read the gateway's log until it says which port it listens on."""
    match, seen = await _read_until(process, r"listening for chargers on port (\d+)")
    return int(match.group(1)), seen


async def test_serve_takes_settings_from_file_env_and_flags_and_exits_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    """Flags beat env beat the TOML file; SIGTERM closes chargers with 1001, flushes, exits 0."""
    async with CsmsSim() as csms:
        state = tmp_path / "state.db"
        config = tmp_path / "gateway.toml"
        # The file names a wrong upstream and listen port; env and flags must win.
        config.write_text(
            'upstream = "ws://127.0.0.1:1/wrong"\nlisten = "127.0.0.1:1"\nmetrics = "off"\n'
        )
        env = {**os.environ, "OCPP_GATEWAY_UPSTREAM": csms.url, "OCPP_GATEWAY_LISTEN": "x"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve",
            "--config", str(config),
            "--listen", "127.0.0.1:0",
            "--state", f"sqlite:///{state}",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            port, log_lines = await _listening_port(process)
            # Started: the collector is tuned for serving (gateway/collector.py).
            tuned, _ = await _read_until(process, r"garbage collector: (\d+) start-up objects")
            assert int(tuned.group(1)) > 10_000
            charger = ChargerSim(f"ws://127.0.0.1:{port}/ocpp", "CP-PROC")
            await charger.connect()
            assert (await charger.boot(vendor="ACME", model="X"))["status"] == "Accepted"
            await csms.wait_for("BootNotification", station_id="CP-PROC")

            process.send_signal(signal.SIGTERM)
            code, _reason = await charger.wait_closed(timeout=10)
            assert code == 1001
            assert await asyncio.wait_for(process.wait(), 15) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert any("charger authentication is off" in line for line in log_lines)
        with sqlite3.connect(state) as db:
            rows = db.execute("SELECT station_id, registration FROM station").fetchall()
        assert rows == [("CP-PROC", "Accepted")]
        assert csms.violations == []


async def test_serve_refuses_to_start_without_an_upstream(tmp_path: Path) -> None:
    """A missing --upstream is a clear error and exit code 2, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--state", f"sqlite:///{tmp_path}/s.db",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"upstream is required" in stderr
    assert b"Traceback" not in stderr


async def test_serve_names_a_broken_mapping_file_and_exits_2(tmp_path: Path) -> None:
    """A vendor file with a misspelt variable stops `serve` like `check-config` does."""
    mappings = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), mappings, ignore=shutil.ignore_patterns("__*"))
    (mappings / "vendors" / "broken.toml").write_text(
        'vendor = "ACME"\n[[variable]]\ncomponent = "TxCtrlr"\nvariable = "TxStartPt"\n'
        'type = "string"\nmutability = "ReadOnly"\nvalue = "x"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--upstream", "ws://127.0.0.1:1/ocpp",
        "--state", f"sqlite:///{tmp_path}/s.db", "--mappings", str(mappings),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"broken.toml: variable[0] (TxCtrlr.TxStartPt)" in stderr
    assert b"Traceback" not in stderr
