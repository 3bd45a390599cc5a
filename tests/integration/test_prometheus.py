"""A real Prometheus scraping a real gateway, and the shipped Prometheus files under promtool.

Needs the ``prometheus`` and ``promtool`` binaries (Debian package ``prometheus``, which
.ci/run installs). Without them these tests skip on a developer machine and fail under CI
(the CI environment variable set), so a CI run can never pass by skipping them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway import __version__
from gateway.app import Gateway
from gateway.sim.charger import ChargerSim

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = DEPLOY / "alerts.yml"
DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"

#: Prometheus offers no event to await, so its HTTP API is polled: this often, this long.
POLL_INTERVAL = 0.2
POLL_BOUND = 30.0

#: Alert names declared in alerts.yml (one ``- alert: Name`` line each).
ALERT_NAMES = frozenset(re.findall(r"^\s*- alert: (\w+)\s*$", ALERTS.read_text(), re.MULTILINE))


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return own + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in _exprs(value)]
    return []


def dashboard_queries() -> list[str]:
    """Every panel query of the Grafana dashboards, with Grafana's variables filled in."""
    exprs = [
        expr
        for path in sorted(DASHBOARDS.glob("*.json"))
        for expr in _exprs(json.loads(path.read_text()))
    ]
    durations = re.compile(r"\$\{?__(?:rate_interval|interval|range)\}?")
    variables = re.compile(r"\$\{?\w+(?::\w+)?\}?")
    return [variables.sub(".+", durations.sub("1m", expr)) for expr in exprs]


def binary(name: str) -> str:
    """Path of ``name``; skip when missing on a developer machine, fail when missing in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install Debian's prometheus package (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


# ---- the shipped files, checked by promtool


def test_alert_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in result.stdout


def test_prometheus_config_passes_promtool_check_config() -> None:
    """The deploy config is valid and its rule_files entry finds alerts.yml."""
    result = promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    """Each alert fires on the synthetic series it is for and stays quiet on the others."""
    result = promtool("test", "rules", str(DEPLOY / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (DEPLOY / "alerts_test.yml").read_text()))
    assert tested == ALERT_NAMES, "every alert in alerts.yml has a unit test"


# ---- a real Prometheus against a real gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, bytes]:
    try:
        with _NO_PROXY.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # not listening yet
        return 0, b""


class PrometheusApi:
    """The HTTP API of one Prometheus process (urllib in a thread: the body may be chunked)."""

    def __init__(self, port: int, process: asyncio.subprocess.Process, log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log

    async def get(self, path: str, **params: str) -> tuple[int, bytes]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return await asyncio.to_thread(_get, f"http://127.0.0.1:{self.port}{path}{query}")

    async def api(self, path: str, **params: str) -> Any:
        status, body = await self.get(path, **params)
        assert status == 200, f"{path} {params}: HTTP {status} {body[:500]!r}"
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [time, "text"]}, ...]."""
        data = await self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    async def value(self, promql: str) -> float:
        """The single value of an instant query that must return exactly one series."""
        result = await self.query(promql)
        assert len(result) == 1, f"{promql}: {result}"
        return float(result[0]["value"][1])

    async def poll(self, what: str, check: Callable[[], Awaitable[Any]]) -> Any:
        """Await ``check()`` every POLL_INTERVAL until it returns something truthy."""
        deadline = time.monotonic() + POLL_BOUND
        while True:
            assert self.process.returncode is None, f"prometheus exited: {self.log_tail()}"
            if outcome := await check():
                return outcome
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not within {POLL_BOUND}s; {self.log_tail()}")
            await asyncio.sleep(POLL_INTERVAL)

    def log_tail(self) -> str:
        return "prometheus log:\n" + "\n".join(self.log.read_text().splitlines()[-20:])


def write_config(config: dict[str, Any], workdir: Path) -> Path:
    """``config`` as ``workdir``/prometheus.yml (JSON is YAML)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2))
    return config_file


@asynccontextmanager
async def running_prometheus(config: dict[str, Any], workdir: Path) -> AsyncIterator[PrometheusApi]:
    """Start Prometheus with ``config`` in ``workdir``; stopped on exit, killed if it hangs."""
    config_file = write_config(config, workdir)
    log = workdir / "prometheus.log"
    port = free_port()
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    api = PrometheusApi(port, process, log)
    try:

        async def ready() -> bool:
            return (await api.get("/-/ready"))[0] == 200

        await api.poll("prometheus /-/ready", ready)
        yield api
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def ops_port(gateway: Gateway) -> int:
    port = gateway.ops_port
    assert port is not None, "the gateway fixture enables the ops server"
    return port


CHARGERS = ("CP-1", "CP-2", "CP-3")
HEARTBEATS_EACH = 2


async def test_prometheus_scrapes_the_gateway_and_loads_the_alert_rules(
    gateway: Gateway, make_charger: Callable[..., ChargerSim], tmp_path: Path
) -> None:
    """What the dashboard and the alerts read arrives in a real Prometheus, rules load ok."""
    # Load before Prometheus starts: boots, heartbeats, one StatusNotification, one Authorize.
    sims = [make_charger(cp) for cp in CHARGERS]
    for sim in sims:
        await sim.connect()
        assert (await sim.boot(vendor="ACME", model="Wallbox"))["status"] == "Accepted"
        for _ in range(HEARTBEATS_EACH):
            assert "currentTime" in await sim.heartbeat()
    await sims[0].status(1, "Available")
    await sims[1].authorize("TAG-0001")

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "ocpp-gateway",
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{ops_port(gateway)}"]}],
            }
        ],
    }
    async with running_prometheus(config, tmp_path / "prometheus") as prom:
        build = await prom.poll(
            "a scrape of the gateway", lambda: prom.query("ocpp_gateway_build_info")
        )
        assert build[0]["metric"]["version"] == __version__
        assert build[0]["metric"]["job"] == "ocpp-gateway"
        assert await prom.value('up{job="ocpp-gateway"}') == 1.0

        # Connections: one per charger on each side.
        assert await prom.value('sum(ocpp_gateway_connections{side="charger"})') == len(CHARGERS)
        assert await prom.value(
            'ocpp_gateway_connections{side="charger", protocol="ocpp1.6"}'
        ) == len(CHARGERS)
        assert await prom.value('sum(ocpp_gateway_connections{side="csms"})') == len(CHARGERS)

        # Message counters: exactly what the chargers sent.
        charger_calls = (
            'ocpp_gateway_messages_total{side="charger", direction="in", message_type="call", '
            'action="%s"}'
        )
        sent = len(CHARGERS) * HEARTBEATS_EACH
        assert await prom.value(charger_calls % "Heartbeat") == sent
        assert await prom.value(charger_calls % "BootNotification") == len(CHARGERS)
        assert await prom.value(charger_calls % "StatusNotification") == 1
        assert await prom.value(charger_calls % "Authorize") == 1
        assert await prom.value(
            'sum(ocpp_gateway_charger_handshakes_total{outcome="accepted"})'
        ) == len(CHARGERS)

        # Everything the chargers sent was answered: the outbox is empty.
        assert await prom.value('ocpp_gateway_outbox_pending{job="ocpp-gateway"}') == 0

        # Round-trip histogram: every bucket of the BootNotification the gateway sent up.
        buckets = await prom.query(
            'ocpp_gateway_call_duration_seconds_bucket{side="csms", action="BootNotification"}'
        )
        bounds = {float(sample["metric"]["le"]) for sample in buckets}
        assert {0.005, 1.0, 30.0, math.inf} <= bounds and len(bounds) == 13, bounds
        assert await prom.value(
            'ocpp_gateway_call_duration_seconds_count{side="csms", action="BootNotification"}'
        ) == len(CHARGERS)

        # More heartbeats while Prometheus watches: rate()/increase() see them.
        for sim in sims:
            await sim.heartbeat()

        async def scraped_again() -> bool:
            return await prom.value(charger_calls % "Heartbeat") == sent + len(CHARGERS)

        await prom.poll("a scrape after the second round of heartbeats", scraped_again)
        increase = await prom.value(f"increase({charger_calls % 'Heartbeat'}[1m])")
        assert increase > 0
        assert await prom.value(f"rate({charger_calls % 'Heartbeat'}[1m])") > 0

        # The dashboard's latency panel: a quantile over the histogram's rate (the translated
        # heartbeats went up to the CSMS, so its buckets moved between two scrapes).
        quantile = await prom.query(
            "histogram_quantile(0.9, sum by (le, side) "
            '(rate(ocpp_gateway_call_duration_seconds_bucket{side="csms"}[1m])))'
        )
        assert len(quantile) == 1 and 0 < float(quantile[0]["value"][1]) <= 30, quantile

        # The shipped alert rules: all loaded, all evaluated without error, none firing.
        async def evaluated() -> list[dict[str, Any]] | None:
            groups = (await prom.api("/api/v1/rules"))["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return None if any(r["health"] == "unknown" for r in rules) else rules

        rules = await prom.poll("a first evaluation of every rule", evaluated)
        assert {rule["name"] for rule in rules} == ALERT_NAMES
        assert all(rule["type"] == "alerting" for rule in rules)
        unhealthy = [
            (r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"
        ]
        assert unhealthy == []
        firing = await prom.api("/api/v1/alerts")
        assert [a for a in firing["alerts"] if a["state"] == "firing"] == []

        # Every query of the Grafana dashboard is PromQL this Prometheus accepts.
        for expr in dashboard_queries():
            status, body = await prom.get("/api/v1/query", query=expr)
            assert status == 200, f"dashboard query {expr!r}: {body[:300]!r}"
