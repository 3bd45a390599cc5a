"""``ocpp-gateway route`` as a real process against a real ``ocpp-gateway serve`` process
(its admin API on the ops listener), with a real 1.6 charger, a 2.0.1 CSMS sim and a 1.6
legacy CSMS sim: list, set, clear, wave and rules, and every refusal as one line and the
right exit code (0 done, 1 unreachable or failed, 2 refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import prometheus_client
import pytest

from gateway import cli, route_cli
from gateway.config import SETTINGS_FLAGS
from gateway.ops_http import OpsServer
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.legacy_csms import LegacyCsmsSim
from tests.redis_server import free_port

TOKEN = "t0ken-for-the-route-cli-tests"
BOUND = 30.0  # seconds any process or peer is waited for


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Served:
    """A running ``ocpp-gateway serve`` and its peers."""

    admin_url: str
    charger_url: str
    csms: CsmsSim
    legacy: LegacyCsmsSim
    log: list[str] = field(default_factory=list)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's OCPP_GATEWAY_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_GATEWAY_")}
    return env | extra


async def route(*args: str, env: dict[str, str] | None = None) -> Result:
    """``python -m gateway.cli route ARGS`` (asynchronously: the sims keep serving)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "route", *args,
        env=clean_env() if env is None else env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(BOUND):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    result = Result(process.returncode, stdout.decode(), stderr.decode())
    assert "Traceback" not in result.stderr, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    return result


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """``ocpp-gateway serve`` with an admin token (from the environment, as the docs advise)
    and a legacy upstream, on free loopback ports."""
    async with CsmsSim() as csms, LegacyCsmsSim() as legacy:
        env = clean_env(OCPP_GATEWAY_ADMIN_TOKEN=TOKEN)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve",
            "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
            "--upstream", csms.url, "--legacy-upstream", legacy.url,
            "--state", f"sqlite:///{tmp_path / 'state.db'}",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        log: list[str] = []
        reading: asyncio.Task[None] | None = None
        try:
            ops_port = charger_port = None
            assert process.stdout is not None
            async with asyncio.timeout(BOUND):
                while charger_port is None:
                    line = (await process.stdout.readline()).decode()
                    assert line, f"the gateway exited before listening:\n{''.join(log)}"
                    log.append(line)
                    if found := re.search(r"ops HTTP server listening on [\d.]+:(\d+)", line):
                        ops_port = int(found[1])
                    if found := re.search(r"listening for chargers on port (\d+)", line):
                        charger_port = int(found[1])
            assert ops_port is not None, "".join(log)

            async def keep_reading() -> None:
                assert process.stdout is not None
                while line := await process.stdout.readline():
                    log.append(line.decode())

            reading = asyncio.create_task(keep_reading())
            yield Served(
                admin_url=f"http://127.0.0.1:{ops_port}",
                charger_url=f"ws://127.0.0.1:{charger_port}/ocpp",
                csms=csms,
                legacy=legacy,
                log=log,
            )
        finally:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(BOUND):
                        await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            if reading is not None:
                await asyncio.gather(reading, return_exceptions=True)
        assert TOKEN not in "".join(log), "the gateway logged the admin token"
        assert csms.violations == []
        assert legacy.violations == []


def admin_env(served: Served, token: str = TOKEN) -> dict[str, str]:
    return clean_env(OCPP_GATEWAY_ADMIN_URL=served.admin_url, OCPP_GATEWAY_ADMIN_TOKEN=token)


async def boot(charger: ChargerSim) -> None:
    await charger.connect()
    assert (await charger.boot(vendor="ACME", model="Wallbox"))["status"] == "Accepted"


async def reconnect(charger: ChargerSim) -> None:
    """The gateway closed the charger to move it: connect and boot again, as it would."""
    code, _ = await charger.wait_closed(timeout=BOUND)
    assert code is not None
    await charger.close()
    await boot(charger)


def test_the_client_reads_the_token_from_the_variable_serve_reads() -> None:
    """One variable for both ends: the setting admin_token's own."""
    (spec,) = (spec for spec in SETTINGS_FLAGS if spec.name == "admin_token")
    assert spec.env_var == route_cli.ADMIN_TOKEN_ENV == "OCPP_GATEWAY_ADMIN_TOKEN"


@pytest.mark.integration
async def test_list_set_clear_wave_and_rules_against_a_running_gateway(
    served: Served, tmp_path: Path
) -> None:
    env = admin_env(served)
    charger = ChargerSim(served.charger_url, "CP-1")
    try:
        await boot(charger)

        listed = await route("list", env=env)
        assert listed.code == 0, listed.stderr
        header, row = listed.stdout.splitlines()
        assert header.split()[:3] == ["CHARGER", "ROUTE", "PROTOCOL"]
        assert row.split()[:4] == ["CP-1", "translate", "ocpp1.6", "ACME/Wallbox"]
        as_json = await route("list", "--json", env=env)
        (info,) = json.loads(as_json.stdout)
        assert (info["station_id"], info["route"], info["vendor"]) == ("CP-1", "translate", "ACME")
        none = await route("list", "--route", "legacy", env=env)
        assert (none.code, none.stdout) == (0, "")
        assert none.stderr == "no charger connected on route legacy\n"

        moved = await route("set", "CP-1", "legacy", env=env)
        assert moved.code == 0, moved.stderr
        assert moved.stdout == "CP-1: legacy: moved now (reconnected to its new CSMS)\n"
        await reconnect(charger)
        await served.legacy.wait_for("BootNotification", station_id="CP-1", timeout=BOUND)
        legacy = await route("list", "--route", "legacy", env=env)
        assert legacy.stdout.splitlines()[1].split()[:2] == ["CP-1", "legacy"]
        again = await route("set", "CP-1", "legacy", env=env)
        assert again.stdout == "CP-1: legacy: already routed so: nothing changes\n"

        rules = await route("rules", env=env)
        assert rules.code == 0
        assert rules.stdout == "  1. charger=CP-1 -> legacy\ndefault: translate\n"

        cleared = await route("clear", "CP-1", env=env)
        assert cleared.code == 0, cleared.stderr
        assert cleared.stdout == (
            "CP-1: own rule cleared; the table routes it "
            "CP-1: translate: moved now (reconnected to its new CSMS)\n"
        )
        await reconnect(charger)

        wave = await route("wave", "wave-1", "100", "--route", "legacy", env=env)
        assert wave.code == 0, wave.stderr
        assert (
            wave.stdout
            == "wave wave-1: 100% of the chargers to legacy; 1 connected charger moves\n"
        )
        await reconnect(charger)
        wave = await route("wave", "wave-1", "0", "--route", "legacy", env=env)
        assert (
            wave.stdout == "wave wave-1: 0% of the chargers to legacy; 1 connected charger moves\n"
        )
        table = json.loads((await route("rules", "--json", env=env)).stdout)
        assert table == {
            "rules": [{"route": "legacy", "name": "wave-1", "percent": 0.0}],
            "default": "translate",
        }

        # The token from a file instead of the environment.
        token_file = tmp_path / "admin-token"
        token_file.write_text(TOKEN + "\n")
        without_env = clean_env(OCPP_GATEWAY_ADMIN_URL=served.admin_url)
        from_file = await route("rules", "--token-file", str(token_file), env=without_env)
        assert from_file.code == 0, from_file.stderr
    finally:
        await charger.close()
    assert charger.violations == []


@pytest.mark.integration
async def test_refusals_are_one_line_with_exit_code_2(served: Served, tmp_path: Path) -> None:
    wrong = await route("list", env=admin_env(served, token="not-the-token"))
    assert (wrong.code, wrong.stdout) == (2, "")
    assert wrong.stderr == "ocpp-gateway: the admin token was refused\n"
    assert "not-the-token" not in wrong.stderr

    env = admin_env(served)
    bad_wave = await route("wave", "bad name", "10", env=env)
    assert bad_wave.code == 2
    assert bad_wave.stderr.startswith("ocpp-gateway: refused (400): not a wave name")
    assert bad_wave.stderr.count("\n") == 1

    empty = tmp_path / "empty"
    empty.write_text("\n")
    for args, message in (
        (("--token-file", str(empty)), "must hold one token, alone"),
        (("--token-file", str(tmp_path / "missing")), "cannot read the token file"),
    ):
        result = await route("list", *args, env=clean_env(OCPP_GATEWAY_ADMIN_URL=served.admin_url))
        assert result.code == 2
        assert message in result.stderr


async def test_without_a_token_the_client_refuses_to_start() -> None:
    result = await route("list", env=clean_env(OCPP_GATEWAY_ADMIN_URL="http://127.0.0.1:9"))
    assert result.code == 2
    assert result.stderr == (
        "ocpp-gateway: no admin token: set OCPP_GATEWAY_ADMIN_TOKEN or pass --token-file PATH\n"
    )


async def test_an_unreachable_gateway_is_exit_code_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await route("rules", "--admin", url, env=clean_env(OCPP_GATEWAY_ADMIN_TOKEN=TOKEN))
    assert result.code == 1
    assert result.stderr.startswith(f"ocpp-gateway: cannot reach the admin API at {url}: ")
    assert result.stderr.count("\n") == 1


async def test_a_gateway_without_an_admin_api_is_named() -> None:
    """An ops listener with the admin API off answers 404: the client says what to check."""

    async def ready() -> tuple[bool, str]:
        return True, "ok"

    registry = prometheus_client.CollectorRegistry()
    async with OpsServer(host="127.0.0.1", port=0, registry=registry, readiness=ready) as ops:
        url = f"http://127.0.0.1:{ops.port}"
        env = clean_env(OCPP_GATEWAY_ADMIN_URL=url, OCPP_GATEWAY_ADMIN_TOKEN=TOKEN)
        result = await route("list", env=env)
    assert result.code == 2
    assert result.stderr == (
        f"ocpp-gateway: no admin API at {url}: is it the gateway's --metrics address, "
        "and is admin_token set there?\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("wave", "w", "101"), "a percentage is 0 to 100"),
        (("wave", "w", "many"), "not a number"),
        (("set", "CP-1", "teleport"), "invalid choice"),
        (("list", "--admin", "ftp://example.org"), "--admin must be an http:// or https:// URL"),
        (("set", "CP-1", "legacy", "--token", TOKEN), "no --token flag"),
        (("list", "--token-f", "x"), "unrecognized arguments"),
    ],
)
def test_usage_errors_are_exit_code_2(
    args: tuple[str, ...],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused before any request (in process: argparse and the option checks)."""
    monkeypatch.setenv("OCPP_GATEWAY_ADMIN_TOKEN", TOKEN)
    monkeypatch.delenv("OCPP_GATEWAY_ADMIN_URL", raising=False)
    try:
        code = cli.main(["route", *args])
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert TOKEN not in captured.out + captured.err
