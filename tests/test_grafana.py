"""Checks on the provisioned Grafana dashboard and its provisioning files (grafana/).

The dashboard is JSON that Grafana reads and nobody runs here, so a renamed metric or a
misspelt label would only show up as an empty panel in production. These tests hold it
to ``gateway/metrics.py``: every series a query names must be one a ``GatewayMetrics``
registry can expose, every label a selector filters on must be declared, and every
declared metric must be on the dashboard or in an alert rule.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from gateway.metrics import GatewayMetrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "grafana" / "dashboards" / "ocpp-gateway.json"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = ROOT / "grafana" / "provisioning" / "dashboards" / "ocpp-gateway.yml"
README = ROOT / "grafana" / "README.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"

# Where grafana/dashboards/ and the provisioning files go in the Grafana container.
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"
PROVISIONING_MOUNT = "/etc/grafana/provisioning"
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
INSTANCE_MATCHER = 'instance=~"$instance"'

# Metrics deliberately on neither the dashboard nor an alert rule: name -> reason.
NOT_ON_DASHBOARD: dict[str, str] = {}

# Labels Prometheus attaches to every scraped series (the target's), beside declared ones.
TARGET_LABELS = frozenset({"instance", "job"})

# The sample names each family type exposes (prometheus_client's exposition: a Counter
# declared as "x_total" is the family "x" with samples "x_total" and "x_created").
SAMPLE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}

ROWS = (
    "Fleet overview",
    "Traffic and errors by action",
    "Latency percentiles",
    "Outbox and offline health",
    "Device model and meter quality",
    "Per replica",
    "Security and abuse limits",
    "Migration",
)

# A metric name as PromQL reads it, so a typo in case is caught rather than cut short.
METRIC_RE = re.compile(r"(?<![A-Za-z0-9_:])ocpp_gateway_[A-Za-z0-9_:]*")
SELECTOR_RE = re.compile(r"(?<![A-Za-z0-9_:])(ocpp_gateway_[A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in all_panels(dashboard) if panel["type"] != "row"]


def panel_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in query_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        queries.append(query["query"] if isinstance(query, dict) else query)
        queries.append(variable.get("definition", ""))
    return queries


def all_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [expr for _, expr in panel_exprs(dashboard)] + variable_queries(dashboard)


def sample_names(family_name: str, family_type: str) -> set[str]:
    return {family_name + suffix for suffix in SAMPLE_SUFFIXES[family_type]}


def exported_samples(registry: CollectorRegistry) -> dict[str, str]:
    """Every sample name the registry can expose -> the family (metric) it belongs to."""
    return {
        sample: family.name
        for family in registry.collect()
        for sample in sample_names(family.name, family.type)
    }


def declared_labels(metrics: GatewayMetrics) -> dict[str, frozenset[str]]:
    """Family name -> the label names it was declared with."""
    return {
        metric._name: frozenset(metric._labelnames)
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }


def used_samples() -> set[str]:
    """Every ocpp_gateway_* series name the dashboard's queries and variables use."""
    return {name for expr in all_exprs(load_dashboard()) for name in METRIC_RE.findall(expr)}


def alert_samples() -> set[str]:
    """Series names the alert rules' expressions use (comments are not expressions)."""
    if not ALERTS.exists():
        return set()
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    exprs = [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]
    return {name for expr in exprs for name in METRIC_RE.findall(expr)}


# --- the dashboard's own structure ---------------------------------------------------


def test_the_dashboard_is_provisionable_as_is() -> None:
    """A fixed uid (links survive re-provisioning), no import-only __inputs."""
    dashboard = load_dashboard()
    assert dashboard["uid"] == "ocpp-gateway"
    assert dashboard["schemaVersion"] >= 39
    assert "__inputs" not in dashboard


def test_panel_ids_are_unique_and_rows_come_in_order() -> None:
    panels = list(all_panels(load_dashboard()))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert tuple(p["title"] for p in panels if p["type"] == "row") == ROWS


def test_every_panel_reads_the_datasource_variable_and_has_a_query() -> None:
    for panel in query_panels(load_dashboard()):
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_the_replica_variable_lists_every_instance() -> None:
    """ocpp_gateway_build is an Info metric: Prometheus only sees ..._build_info."""
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    replica = variables["instance"]
    query = replica["query"]["query"] if isinstance(replica["query"], dict) else replica["query"]
    assert query == "label_values(ocpp_gateway_build_info, instance)"
    assert replica["multi"] is True and replica["includeAll"] is True


def test_every_gateway_selector_filters_on_the_replica() -> None:
    """The replica picker narrows every panel, so a per-replica view is one click."""
    for title, expr in panel_exprs(load_dashboard()):
        for name in METRIC_RE.findall(expr):
            selectors = [m for m in SELECTOR_RE.findall(expr) if m[0] == name]
            assert selectors, f"{title}: {name} without a label selector"
            assert all(INSTANCE_MATCHER in matchers for _, matchers in selectors), title


def test_the_sample_suffix_table_is_what_prometheus_client_exposes() -> None:
    """SAMPLE_SUFFIXES, which the name checks rely on, against a real exposition."""
    registry = CollectorRegistry()
    Counter("c", "c", registry=registry).inc()
    Gauge("g", "g", registry=registry).set(1)
    Histogram("h", "h", registry=registry, buckets=(1.0,)).observe(0.5)
    Info("i", "i", registry=registry).info({"k": "v"})
    lines = generate_latest(registry).decode().splitlines()
    exposed = {re.split(r"[{ ]", line)[0] for line in lines if line and not line.startswith("#")}
    expected = (
        sample_names("c", "counter")
        | sample_names("g", "gauge")
        | sample_names("h", "histogram")
        | sample_names("i", "info")
    )
    assert exposed == expected


# --- the dashboard against the gateway's registry --------------------------------------


def test_every_dashboard_metric_is_exported_by_gateway_metrics() -> None:
    """Each series name in a query is a sample name a GatewayMetrics registry exposes."""
    exported = exported_samples(GatewayMetrics().registry)
    unknown = used_samples() - exported.keys()
    assert not unknown, f"not exported by GatewayMetrics: {sorted(unknown)}"


def test_outbox_age_transactions_and_store_metrics_have_the_types_the_dashboard_reads() -> None:
    """Gauges without labels, and a histogram by store operation (quantile panels)."""
    families = {family.name: family.type for family in GatewayMetrics().registry.collect()}
    assert families["ocpp_gateway_outbox_oldest_age_seconds"] == "gauge"
    assert families["ocpp_gateway_active_transactions"] == "gauge"
    assert families["ocpp_gateway_store_operation_duration_seconds"] == "histogram"
    labels = declared_labels(GatewayMetrics())
    assert labels["ocpp_gateway_outbox_oldest_age_seconds"] == frozenset()
    assert labels["ocpp_gateway_active_transactions"] == frozenset()
    assert labels["ocpp_gateway_store_operation_duration_seconds"] == {"operation"}


def test_selectors_filter_only_on_declared_labels() -> None:
    """A label matcher names a label the metric has (or a scrape target label)."""
    metrics = GatewayMetrics()
    exported = exported_samples(metrics.registry)
    labels = declared_labels(metrics)
    for title, expr in panel_exprs(load_dashboard()):
        for name, matchers in SELECTOR_RE.findall(expr):
            if name not in exported:
                continue  # an unknown name: the export test above reports it
            allowed = labels[exported[name]] | TARGET_LABELS
            if name.endswith("_bucket"):
                allowed |= {"le"}
            if name.endswith("_info"):
                allowed |= {"version"}
            used = set(MATCHER_RE.findall(matchers))
            assert used <= allowed, f"{title}: {name} has no label {sorted(used - allowed)}"


def test_every_declared_metric_has_a_panel_or_an_alert() -> None:
    """Each metric in GatewayMetrics is on the dashboard, in an alert rule, or excused."""
    exported = exported_samples(GatewayMetrics().registry)
    covered = {exported[name] for name in used_samples() | alert_samples() if name in exported}
    uncovered = set(exported.values()) - covered - NOT_ON_DASHBOARD.keys()
    assert not uncovered, f"no panel or alert for: {sorted(uncovered)}"


def test_metrics_excused_from_the_dashboard_exist() -> None:
    """The allowlist names only metrics GatewayMetrics declares, each with a reason."""
    families = set(exported_samples(GatewayMetrics().registry).values())
    for name, reason in NOT_ON_DASHBOARD.items():
        assert name in families, name
        assert reason.strip(), name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query once Grafana's variables are filled in."""
    substitutions = {"$__rate_interval": "1m", '"$instance"': '".*"'}
    rules = []
    for index, (_, expr) in enumerate(panel_exprs(load_dashboard())):
        filled = expr
        for variable, value in substitutions.items():
            filled = filled.replace(variable, value)
        assert "$" not in filled, expr
        rules.append({"record": f"grafana_check:query_{index}", "expr": filled})
    path = tmp_path / "rules.json"  # promtool reads YAML, and JSON is YAML
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_datasource_provisioning_names_the_prometheus_service() -> None:
    """The provisioned datasource is the one the README's compose setup runs."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["name"] == "Prometheus"
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provisioning_points_at_the_dashboard_directory() -> None:
    """The file provider reads the directory the README mounts grafana/dashboards/ at."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT
    assert DASHBOARD.parent.name == "dashboards"
    assert f"grafana/dashboards:{DASHBOARDS_MOUNT}" in README.read_text(encoding="utf-8")


def test_compose_stack_mounts_the_dashboard_and_provisioning_files() -> None:
    """deploy/docker-compose.yml's Grafana sees the files where provisioning expects them."""
    yaml = pytest.importorskip("yaml")
    if not COMPOSE.exists():
        pytest.skip("deploy/docker-compose.yml does not exist")
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    mounts: dict[str, Path] = {}
    for volume in services["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):  # a bind mount, relative to the compose file
            mounts[target] = (COMPOSE.parent / source).resolve()

    def host_path(container_path: str) -> Path:
        for target, source in mounts.items():
            if container_path == target or container_path.startswith(target + "/"):
                return source / container_path[len(target) :].lstrip("/")
        raise AssertionError(f"nothing mounted at {container_path}")

    assert host_path(f"{DASHBOARDS_MOUNT}/{DASHBOARD.name}") == DASHBOARD
    assert host_path(f"{PROVISIONING_MOUNT}/dashboards/{PROVIDERS.name}") == PROVIDERS
    assert host_path(f"{PROVISIONING_MOUNT}/datasources/{DATASOURCES.name}") == DATASOURCES
