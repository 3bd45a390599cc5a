"""deploy/: the Dockerfile, docker-compose file and Kubernetes manifests agree with the code.

No Docker engine or cluster runs here, so these tests check what can be checked statically:
every YAML file parses, every ``OCPP_GATEWAY_*`` name is a real setting and every value is
one ``load_settings`` accepts, ports agree with the listen/metrics settings, every command
line parses with the real CLI parser, probes and the HEALTHCHECK hit the ops endpoints
(the HEALTHCHECK command is run against a real ops server), the image runs as non-root,
and files mounted by compose exist. ``ocpp-gateway example-csms`` (compose's upstream) is
started as a real process and accepts a 2.0.1 connection.

Several replicas (docs/scaling.md): compose runs two gateways behind a load balancer and
Kubernetes at least two, all on one Redis that keeps every write (appendonly, fsync per
write) and never evicts (noeviction); the Kubernetes Redis command is run for real. The
single-replica SQLite variant (the kustomize overlay deploy/k8s/sqlite) is built here by
applying its patches, and checked against ``kubectl kustomize`` where kubectl exists.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import orjson
import prometheus_client
import pytest
import redis
import yaml
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from gateway.cli import build_parser
from gateway.config import CONFIG_ENV, ENV_PREFIX, SETTINGS_FLAGS, Settings, load_settings
from gateway.ops_http import OpsServer
from gateway.state import open_store
from gateway.state.redis import MINIMUM_VERSION
from tests.redis_server import free_port, unavailable

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
K8S_GATEWAY = K8S / "gateway"  # the gateway's manifests: a kustomize base (Redis, replicas)
K8S_SQLITE = K8S / "sqlite"  # the single-replica SQLite overlay
HAPROXY_CFG = "/usr/local/etc/haproxy/haproxy.cfg"

GATEWAY_IMAGE_COMMANDS = ("serve", "check-config", "demo", "example-csms")
SETTING_ENV_NAMES = frozenset({spec.env_var for spec in SETTINGS_FLAGS} | {CONFIG_ENV})
#: Docs that name settings by their environment variable.
DOCS_NAMING_SETTINGS = (
    REPO / "README.md",
    REPO / "docs" / "scaling.md",
    REPO / "docs" / "operations.md",
)
REDIS_SCHEMES = ("redis", "rediss")
#: Strategic-merge keys of the lists the SQLite overlay patches (Kubernetes API types).
MERGE_KEYS = {"containers": "name", "env": "name", "volumeMounts": "mountPath", "volumes": "name"}


# --------------------------------------------------------------------------------------------
# Reading the files
# --------------------------------------------------------------------------------------------


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def _load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # docker drops comment lines, also inside a continuation
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, rest = text.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continuation line"
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _exec_form(keyword: str) -> list[str]:
    """The JSON (exec form) arguments of the final stage's last ``keyword`` instruction."""
    found = [rest for kw, rest in _final_stage() if kw == keyword]
    assert found, f"the Dockerfile's final stage has no {keyword}"
    value = json.loads(found[-1])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
        f"{keyword} must be in exec form (a JSON list of strings), got {found[-1]}"
    )
    return value


def _image_env() -> dict[str, str]:
    """ENV of the final stage (KEY=VALUE pairs)."""
    env: dict[str, str] = {}
    for keyword, rest in _final_stage():
        if keyword == "ENV":
            for token in shlex.split(rest):
                key, sep, value = token.partition("=")
                assert sep, f"use ENV KEY=VALUE, got {token!r}"
                env[key] = value
    return env


def _compose() -> dict[str, Any]:
    (doc,) = _load_all(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def _compose_env(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def _gateway_image_services() -> dict[str, dict[str, Any]]:
    """Compose services running the gateway image (built from deploy/Dockerfile)."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if "build" in service and service["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def _compose_gateways() -> dict[str, dict[str, Any]]:
    """The gateway replicas of compose: services of the gateway image running ``serve``."""
    return {
        name: service
        for name, service in _gateway_image_services().items()
        if service["command"][0] == "serve"
    }


def _compose_settings(service: Mapping[str, Any]) -> Settings:
    return _settings({**_image_env(), **_compose_env(service)})


def _redis_options(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a redis-server command line (config file or ``-`` aside)."""
    assert argv[0] == "redis-server", argv
    options: dict[str, str] = {}
    words = [word for word in argv[1:] if word != "-"]
    while words:
        name = words.pop(0)
        assert name.startswith("--"), f"expected --option value pairs, got {name!r} in {argv}"
        assert words, f"{name} has no value in {argv}"
        options[name[2:]] = words.pop(0)
    return options


def _haproxy_config() -> str:
    """The load balancer's haproxy.cfg, inline in compose's top-level ``configs``."""
    compose = _compose()
    (source,) = [
        item["source"]
        for item in compose["services"]["lb"]["configs"]
        if item["target"] == HAPROXY_CFG
    ]
    content = compose["configs"][source]["content"]
    assert isinstance(content, str)
    return content


def _haproxy_backend(config: str, name: str) -> list[list[str]]:
    """The directive lines (split into words, comments dropped) of one backend section."""
    lines: list[list[str]] = []
    inside = False
    for raw in config.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if not raw[0].isspace():  # a section header
            inside = words == ["backend", name]
        elif inside:
            lines.append(words)
    assert lines, f"haproxy.cfg has no backend {name}"
    return lines


def _k8s_files() -> list[Path]:
    """The plain manifests: the gateway's, Redis, the Secret template, the ServiceMonitor
    (kustomization files are not objects; the overlay is built by :func:`_sqlite_variant`)."""
    return sorted(
        p
        for p in K8S.rglob("*.y*ml")
        if p.name != "kustomization.yaml" and K8S_SQLITE not in p.parents
    )


def _k8s_docs() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in _k8s_files():
        for doc in _load_all(path):
            yield path, doc


def _component(doc: Mapping[str, Any]) -> str:
    return str(doc["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def _k8s(kind: str, component: str = "gateway") -> dict[str, Any]:
    """The one object of ``kind`` for ``component`` (gateway or redis)."""
    (doc,) = [doc for _, doc in _k8s_docs() if doc["kind"] == kind and _component(doc) == component]
    return doc


def _kustomization(directory: Path) -> dict[str, Any]:
    (doc,) = _load_all(directory / "kustomization.yaml")
    assert doc["apiVersion"].startswith("kustomize.config.k8s.io/")
    assert doc["kind"] == "Kustomization"
    assert isinstance(doc, dict)
    return doc


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch as kustomize applies the overlay's: maps merge, ``null``
    deletes a field, lists of :data:`MERGE_KEYS` merge item by key (``$patch: delete``
    drops one), other lists are replaced."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list):
            merged[key] = _merge_list(base.get(key, []), value, MERGE_KEYS[key])
        else:
            merged[key] = _merge(base.get(key), value)
    return merged


def _merge_list(base: list[Any], patch: list[Any], key: str) -> list[Any]:
    items = {item[key]: item for item in base}
    order = [item[key] for item in base]
    for item in patch:
        if item.get("$patch") == "delete":
            items.pop(item[key], None)
            continue
        if item[key] not in items:
            order.append(item[key])
        items[item[key]] = _merge(items.get(item[key], {}), item)
    return [items[name] for name in order if name in items]


def _gateway_variant() -> list[dict[str, Any]]:
    """The objects ``kubectl apply -k deploy/k8s/gateway`` creates."""
    resources = _kustomization(K8S_GATEWAY)["resources"]
    return [doc for name in resources for doc in _load_all(K8S_GATEWAY / name)]


def _sqlite_variant() -> list[dict[str, Any]]:
    """The objects of ``kubectl apply -k deploy/k8s/sqlite``: the base, patched."""
    overlay = _kustomization(K8S_SQLITE)
    assert overlay["resources"] == ["../gateway"]
    docs = copy.deepcopy(_gateway_variant())
    for entry in overlay["patches"]:
        patch = yaml.safe_load(entry["patch"])
        (index,) = [
            i for i, doc in enumerate(docs)
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]  # fmt: skip
        docs[index] = _merge(docs[index], patch)
    return docs


def _variant(name: str) -> list[dict[str, Any]]:
    return _gateway_variant() if name == "redis" else _sqlite_variant()


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [doc for doc in docs if doc["kind"] == kind]
    return doc


def _gateway_container(docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    deployment = _one(docs, "Deployment") if docs is not None else _k8s("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of an env value: defined names are replaced, $$ is a
    literal $, anything else is left as it is."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", substitute, value)


def _container_env(container: Mapping[str, Any], docs: list[dict[str, Any]]) -> dict[str, str]:
    """What the container's environment holds, as the kubelet builds it: image ENV, then
    ``envFrom`` in order, then ``env`` in order (values expanded, Secret/ConfigMap keys
    looked up in the manifests, the Secret template included)."""
    objects = docs + [doc for _, doc in _k8s_docs() if doc["kind"] == "Secret"]

    def data_of(kind: str, name: str) -> dict[str, str]:
        (found,) = [d for d in objects if (d["kind"], d["metadata"]["name"]) == (kind, name)]
        return {
            k: str(v) for k, v in {**found.get("data", {}), **found.get("stringData", {})}.items()
        }

    env = dict(_image_env())
    for source in container.get("envFrom", []):
        for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if ref in source:
                env.update(data_of(kind, source[ref]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = _expand(str(item["value"]), env)
            continue
        for ref, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if ref in item["valueFrom"]:
                key_ref = item["valueFrom"][ref]
                env[item["name"]] = data_of(kind, key_ref["name"])[key_ref["key"]]
    return env


def _k8s_env(variant: str = "redis") -> dict[str, str]:
    docs = _variant(variant)
    return _container_env(_gateway_container(docs), docs)


def _settings(env: Mapping[str, str]) -> Settings:
    return load_settings({}, {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})


def _port_of(address: str | None) -> int:
    assert address is not None, "the metrics server is off"
    return int(address.rpartition(":")[2])


def _parse_cli(argv: list[str], where: str) -> str:
    """Parse ``argv`` with the real parser; the sub-command, or a failure naming ``where``."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `ocpp-gateway {shlex.join(argv)}` does not parse (exit {exc})")
    command: str = args.command
    return command


def _image_version(image: str) -> tuple[int, ...]:
    """(major, minor) of an image tag such as redis:7 or redis:7.4 (major only: (7,))."""
    tag = image.rpartition(":")[2]
    assert re.fullmatch(r"\d+(\.\d+)*(-\w+)?", tag), f"pin a version tag, got {image!r}"
    return tuple(int(part) for part in tag.split("-")[0].split(".")[:2])


# --------------------------------------------------------------------------------------------
# Every file parses; every setting name and value is real
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_file_parses(path: Path) -> None:
    """Every YAML file under deploy/ parses (all documents)."""
    assert _load_all(path), f"{path.relative_to(REPO)} is empty"


def test_k8s_manifests_are_well_formed_and_reference_each_other() -> None:
    """apiVersion/kind/name everywhere; selectors, envFrom, secretKeyRefs, the state URL's
    Redis Service and scaleTargetRef line up."""
    kinds = set()
    for path, doc in _k8s_docs():
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path.name
        assert doc["metadata"].get("name"), path.name
        assert _component(doc) in ("gateway", "redis"), f"{path.name}: component label"
        kinds.add(doc["kind"])
    assert kinds >= {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget",
                     "HorizontalPodAutoscaler", "ServiceMonitor", "StatefulSet"}  # fmt: skip
    deployment = _k8s("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    redis_set = _k8s("StatefulSet", "redis")
    redis_labels = redis_set["spec"]["template"]["metadata"]["labels"]
    for kind in ("Deployment", "PodDisruptionBudget"):
        selector = _k8s(kind)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), kind
        assert not selector.items() <= redis_labels.items(), f"{kind} must not select Redis"
    assert _k8s("Service")["spec"]["selector"].items() <= pod_labels.items()
    assert not _k8s("Service")["spec"]["selector"].items() <= redis_labels.items()
    redis_service = _k8s("Service", "redis")
    assert redis_service["spec"]["selector"].items() <= redis_labels.items()
    assert not redis_service["spec"]["selector"].items() <= pod_labels.items()
    assert redis_set["spec"]["selector"]["matchLabels"].items() <= redis_labels.items()
    assert redis_set["spec"]["serviceName"] == redis_service["metadata"]["name"]
    service_labels = _k8s("Service")["metadata"]["labels"]
    monitor_selector = _k8s("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert monitor_selector.items() <= service_labels.items()
    assert not monitor_selector.items() <= redis_service["metadata"]["labels"].items()
    assert _k8s("HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"
    assert _k8s("ServiceMonitor")["apiVersion"] == "monitoring.coreos.com/v1"
    target = _k8s("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    refs = {
        next(iter(source)): source[next(iter(source))]["name"]
        for source in _gateway_container()["envFrom"]
    }
    assert refs == {
        "configMapRef": _k8s("ConfigMap")["metadata"]["name"],
        "secretRef": _k8s("Secret")["metadata"]["name"],
    }
    # Both pods read the Redis password from the same key of the Redis Secret.
    redis_secret = _k8s("Secret", "redis")
    (redis_container,) = redis_set["spec"]["template"]["spec"]["containers"]
    for container in (_gateway_container(), redis_container):
        refs_used = [item["valueFrom"]["secretKeyRef"] for item in container.get("env", [])
                     if "secretKeyRef" in item.get("valueFrom", {})]  # fmt: skip
        assert refs_used, f"{container['name']} reads no Secret key"
        for ref in refs_used:
            assert ref["name"] == redis_secret["metadata"]["name"], container["name"]
            assert ref["key"] in redis_secret["stringData"], container["name"]
    # The state URL names the Redis Service on its port.
    state = urlsplit(_settings(_k8s_env()).state)
    (redis_port,) = redis_service["spec"]["ports"]
    assert (state.hostname, state.port or 6379) == (
        redis_service["metadata"]["name"], redis_port["port"]
    )  # fmt: skip


def test_kustomizations_build_the_two_variants_from_one_set_of_manifests() -> None:
    """deploy/k8s/gateway lists every gateway manifest beside it; the SQLite overlay only
    patches objects the base has."""
    base = _kustomization(K8S_GATEWAY)
    beside = sorted(p.name for p in K8S_GATEWAY.glob("*.y*ml") if p.name != "kustomization.yaml")
    assert sorted(base["resources"]) == beside
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in _gateway_variant()}
    for entry in _kustomization(K8S_SQLITE)["patches"]:
        patch = yaml.safe_load(entry["patch"])
        assert (patch["kind"], patch["metadata"]["name"]) in names
    assert {doc["kind"] for doc in _sqlite_variant()} == {kind for kind, _ in names}


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _canonical(value: Any) -> Any:
    """Lists sorted (kustomize may order merged list items differently)."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_canonical(item) for item in value), key=_sort_key)
    return value


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not found")
@pytest.mark.parametrize("variant", ["redis", "sqlite"])
def test_kubectl_kustomize_builds_what_these_tests_check(variant: str) -> None:
    """The variants these tests build (the overlay's patches applied here) are the ones
    kustomize builds."""
    directory = K8S_GATEWAY if variant == "redis" else K8S_SQLITE
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    rendered = [doc for doc in yaml.safe_load_all(built.stdout) if doc is not None]

    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert _canonical(sorted(rendered, key=key)) == _canonical(sorted(_variant(variant), key=key))


def test_secret_example_is_a_template() -> None:
    """secret.example.yaml holds placeholders, never a usable credential."""
    secrets = [doc for _, doc in _k8s_docs() if doc["kind"] == "Secret"]
    assert {_component(secret) for secret in secrets} == {"gateway", "redis"}
    for secret in secrets:
        assert "data" not in secret, "use stringData placeholders in the template"
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, f"{key} must be an obvious placeholder"


def test_every_ocpp_gateway_env_name_is_a_real_setting() -> None:
    """Each OCPP_GATEWAY_* name in the Dockerfile, compose, k8s files and the docs exists."""
    files = [DOCKERFILE, COMPOSE, DEPLOY / "README.md", *DOCS_NAMING_SETTINGS,
             *sorted(K8S.rglob("*.y*ml"))]  # fmt: skip
    seen = set()
    for path in files:
        for name in re.findall(r"\bOCPP_GATEWAY_[A-Z0-9_]+", path.read_text(encoding="utf-8")):
            seen.add(name)
            assert name in SETTING_ENV_NAMES, (
                f"{path.relative_to(REPO)} uses {name}, which is not a setting "
                f"(known: {sorted(SETTING_ENV_NAMES)})"
            )
    assert {"OCPP_GATEWAY_LISTEN", "OCPP_GATEWAY_METRICS", "OCPP_GATEWAY_STATE",
            "OCPP_GATEWAY_LEASE_TTL"} <= seen  # fmt: skip


def _deployment_env(where: str) -> dict[str, str]:
    match where:
        case "Dockerfile":
            return _image_env()
        case "k8s":
            return _k8s_env("redis")
        case "k8s-sqlite":
            return _k8s_env("sqlite")
        case _:
            return {**_image_env(), **_compose_env(_compose_gateways()[where])}


@pytest.mark.parametrize(
    ("where", "scheme"),
    [("Dockerfile", "sqlite"), ("gateway-a", "redis"), ("gateway-b", "redis"),
     ("k8s", "redis"), ("k8s-sqlite", "sqlite")],
)  # fmt: skip
def test_env_values_are_valid_settings(where: str, scheme: str) -> None:
    """The environment each deployment gives the gateway loads, and names a store it has:
    Redis where there are replicas, SQLite (an absolute path) where there is one."""
    settings = _settings(_deployment_env(where))
    open_store(settings.state)  # builds the store (unknown URL options fail here)
    assert urlsplit(settings.state).scheme == scheme
    if scheme == "sqlite":
        assert settings.state.startswith("sqlite:////"), "state must be an absolute sqlite path"
    else:
        assert "$(" not in settings.state, "an unexpanded $(VAR) in the state URL"
    if where != "Dockerfile":
        settings.require_upstream()


# --------------------------------------------------------------------------------------------
# Several replicas on one Redis
# --------------------------------------------------------------------------------------------


def test_compose_runs_two_replicas_on_one_redis() -> None:
    """Both compose gateways share one state URL naming the compose Redis, start once it
    answers, and are the load balancer's backends."""
    gateways = _compose_gateways()
    assert len(gateways) >= 2
    states = {_compose_settings(service).state for service in gateways.values()}
    (state,) = states
    url = urlsplit(state)
    assert url.scheme in REDIS_SCHEMES
    services = _compose()["services"]
    assert url.hostname in services, f"{state} does not name a compose service"
    assert str(url.port or 6379) in [str(p) for p in services[url.hostname].get("expose", [])]
    for name, service in gateways.items():
        assert service["depends_on"][url.hostname]["condition"] == "service_healthy", name
    assert set(services["lb"]["depends_on"]) >= set(gateways)


def test_compose_redis_keeps_every_write_and_never_evicts() -> None:
    """appendonly with an fsync per write (the outbox promise), noeviction under a memory
    cap, a version with the commands the store needs, its data on a named volume."""
    compose = _compose()
    redis_service = compose["services"][urlsplit(_compose_settings(
        next(iter(_compose_gateways().values()))).state).hostname]  # fmt: skip
    assert _image_version(redis_service["image"]) >= MINIMUM_VERSION
    options = _redis_options(redis_service["command"])
    assert options["appendonly"] == "yes"
    assert options["appendfsync"] == "always"
    assert options["maxmemory-policy"] == "noeviction"
    assert options.get("maxmemory", "0") not in ("0", ""), "noeviction needs a memory cap"
    named = {
        str(volume).split(":")[1]
        for volume in redis_service["volumes"]
        if str(volume).split(":")[0] in compose["volumes"]
    }
    assert options.get("dir", "/data") in named, "the AOF must be on a named volume"
    assert "PONG" in " ".join(redis_service["healthcheck"]["test"])


def _memory_bytes(text: str) -> int:
    """A Kubernetes quantity (Mi, Gi) or a redis size (mb, gb) in bytes."""
    match = re.fullmatch(r"(\d+)(Mi|Gi|mb|gb)", str(text))
    assert match, f"cannot read memory size {text!r}"
    return int(match[1]) * 2 ** {"Mi": 20, "mb": 20, "Gi": 30, "gb": 30}[match[2]]


def _k8s_redis() -> tuple[dict[str, Any], list[str], str]:
    """Redis' container, its redis-server argv and the configuration it reads on stdin."""
    (container,) = _k8s("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"]
    (script,) = container["args"]
    command, sep, heredoc = script.partition("<<EOF\n")
    assert sep, "the password goes to redis-server on stdin (a here-document)"
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "exec", "exec: redis-server must be PID 1 to get SIGTERM"
    return container, argv[1:], heredoc.removesuffix("EOF\n")


def test_k8s_redis_keeps_every_write_and_never_evicts() -> None:
    """The Redis StatefulSet: appendonly with an fsync per write, noeviction under a cap
    below the container's memory limit, a password that is not in argv, data on a PVC."""
    statefulset = _k8s("StatefulSet", "redis")
    container, argv, stdin_config = _k8s_redis()
    assert _image_version(container["image"]) >= MINIMUM_VERSION
    options = _redis_options(argv)
    assert options["appendonly"] == "yes"
    assert options["appendfsync"] == "always"
    assert options["maxmemory-policy"] == "noeviction"
    limit = _memory_bytes(container["resources"]["limits"]["memory"])
    assert 0 < _memory_bytes(options["maxmemory"]) <= limit * 0.8, "room for the AOF fork"
    assert stdin_config.split() == ["requirepass", "$REDISCLI_AUTH"]
    assert "requirepass" not in options
    env = {item["name"] for item in container["env"]}
    assert "REDISCLI_AUTH" in env  # the password, for redis-server and the probes
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]}
    assert mounts[options["dir"]] in claims, "the AOF must be on a PersistentVolumeClaim"
    assert statefulset["spec"]["replicas"] == 1, "one Redis: no Sentinel or Cluster client"
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for probe in ("readinessProbe", "livenessProbe"):
        assert "grep -q PONG" in " ".join(container[probe]["exec"]["command"]), probe


def test_k8s_redis_command_runs_with_its_settings_and_password(tmp_path: Path) -> None:
    """The StatefulSet's shell command, run for real: redis-server replaces the shell
    (SIGTERM reaches it), takes the password from stdin, has the settings, and the probe
    command passes with the password and fails with a wrong one."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable("no redis-server/redis-cli binary (apt-get install redis-server)")
    container, _, _ = _k8s_redis()
    port = free_port()
    (script,) = container["args"]
    script = script.replace("--dir /data", f"--dir {tmp_path}").replace(
        "exec redis-server -", f"exec redis-server - --bind 127.0.0.1 --port {port} --save ''"
    )
    password = "k8s-test-password"
    env = {**os.environ, "REDISCLI_AUTH": password}
    server = subprocess.Popen(
        [*container["command"], script], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, password=password, socket_timeout=5)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        process = Path(f"/proc/{server.pid}")
        assert (process / "comm").read_text().strip() == "redis-server", "exec: no shell"
        assert password.encode() not in (process / "cmdline").read_bytes()
        config = client.config_get("*")
        assert config["appendonly"] == "yes" and config["appendfsync"] == "always"
        assert config["maxmemory-policy"] == "noeviction"
        probe = " ".join(container["readinessProbe"]["exec"]["command"][2:])
        probe = probe.replace("redis-cli", f"redis-cli -p {port}")
        for secret, expected in ((password, 0), ("wrong", 1)):
            ran = subprocess.run(["sh", "-c", probe], env={**env, "REDISCLI_AUTH": secret},
                                 capture_output=True, check=False)  # fmt: skip
            assert ran.returncode == expected, (secret, ran)
    finally:
        client.close()
        server.terminate()  # SIGTERM reaches redis-server itself
        assert server.wait(timeout=15) == 0


@pytest.mark.parametrize("variant", ["redis", "sqlite"])
def test_replicas_match_the_store(variant: str) -> None:
    """Redis: at least two replicas, a rolling update that keeps them all ready and an
    HPA above them. SQLite: one replica (one writer per file, no leases), Recreate, the
    HPA pinned to 1. Either way drains may proceed one pod at a time."""
    docs = _variant(variant)
    deployment, hpa = _one(docs, "Deployment"), _one(docs, "HorizontalPodAutoscaler")
    pdb = _one(docs, "PodDisruptionBudget")
    replicas = deployment["spec"]["replicas"]
    strategy = deployment["spec"]["strategy"]
    scheme = urlsplit(_settings(_k8s_env(variant)).state).scheme
    if variant == "redis":
        assert scheme in REDIS_SCHEMES
        assert replicas >= 2
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    else:
        assert scheme == "sqlite"
        assert replicas == 1
        assert strategy == {"type": "Recreate"}
        assert hpa["spec"]["maxReplicas"] == 1
    assert pdb["spec"] == {**pdb["spec"], "maxUnavailable": 1}, "minAvailable would block drains"


# --------------------------------------------------------------------------------------------
# Ports and the load balancer
# --------------------------------------------------------------------------------------------


def test_dockerfile_exposes_the_listen_and_metrics_ports() -> None:
    settings = _settings(_image_env())
    exposed = {
        int(token.split("/")[0])
        for keyword, rest in _final_stage()
        if keyword == "EXPOSE"
        for token in rest.split()
    }
    assert exposed == {settings.listen_host_port()[1], _port_of(settings.metrics)}


def _host_port(mapping: object) -> tuple[int, int]:
    """(host, container) of a compose short-syntax port mapping."""
    host, _, container = str(mapping).rpartition(":")
    return int(host.rpartition(":")[2]), int(container.split("/")[0])


def test_compose_ports_reach_every_replica() -> None:
    """Chargers reach the load balancer on the listen port; each replica publishes its
    metrics port on a host port of its own; no host port is published twice."""
    services = _compose()["services"]
    published: list[int] = []
    listen_ports = set()
    for name, service in _compose_gateways().items():
        settings = _compose_settings(service)
        listen_ports.add(settings.listen_host_port()[1])
        ports = [_host_port(p) for p in service.get("ports", [])]
        assert [c for _, c in ports] == [_port_of(settings.metrics)], name
        assert {str(settings.listen_host_port()[1]), str(_port_of(settings.metrics))} <= {
            str(p) for p in service["expose"]
        }, name
    for service in services.values():
        published += [host for host, _ in map(_host_port, service.get("ports", []))]
    assert len(published) == len(set(published)), f"host ports published twice: {published}"
    (listen_port,) = listen_ports
    assert [_host_port(p) for p in services["lb"]["ports"]] == [(listen_port, listen_port)]


def test_compose_load_balancer_sends_chargers_to_ready_replicas() -> None:
    """haproxy.cfg: the frontend binds the listen port; the backend has every replica at
    its listen port, health-checked on /readyz at its metrics port, least connections
    first, idle timeouts far above the gateway's websocket ping interval."""
    config = _haproxy_config()
    gateways = _compose_gateways()
    settings = {name: _compose_settings(service) for name, service in gateways.items()}
    (listen_port,) = {s.listen_host_port()[1] for s in settings.values()}
    (metrics_port,) = {_port_of(s.metrics) for s in settings.values()}
    assert re.search(rf"^\s+bind :{listen_port}$", config, re.M)
    backend = _haproxy_backend(config, "gateways")
    servers = {words[1]: words[2] for words in backend if words[0] == "server"}
    assert servers == {name: f"{name}:{listen_port}" for name in gateways}
    assert ["balance", "leastconn"] in backend
    assert ["option", "httpchk", "GET", "/readyz"] in backend
    (defaults,) = [words for words in backend if words[0] == "default-server"]
    assert defaults[defaults.index("port") + 1] == str(metrics_port)
    assert "check" in defaults
    timeouts = dict(re.findall(r"^\s+timeout (client|server) (\d+)h$", config, re.M))
    ping = max(s.ping_interval for s in settings.values())
    assert {"client", "server"} <= timeouts.keys()
    assert all(int(hours) * 3600 > 10 * ping for hours in timeouts.values())


@pytest.mark.skipif(
    shutil.which("haproxy") is None and os.environ.get("CI") != "true",
    reason="haproxy not installed (.ci/run installs it; under CI its absence fails)",
)
def test_haproxy_accepts_the_load_balancer_config(tmp_path: Path) -> None:
    """``haproxy -c`` validates the config (the replica names do not resolve here; the
    config lets haproxy start without them, as in compose before the replicas are up)."""
    assert shutil.which("haproxy") is not None, "haproxy is missing: .ci/run installs it"
    path = tmp_path / "haproxy.cfg"
    path.write_text(_haproxy_config(), encoding="utf-8")
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_upstream_is_the_example_csms_listen_address() -> None:
    services = _compose()["services"]
    csms = services["example-csms"]
    args = build_parser().parse_args(csms["command"])
    assert args.command == "example-csms"
    host, port = args.listen
    assert host == "0.0.0.0", "the example CSMS must listen beyond its container's loopback"
    for name, gateway in _compose_gateways().items():
        upstream = urlsplit(_compose_env(gateway)["OCPP_GATEWAY_UPSTREAM"])
        assert (upstream.hostname, upstream.port) == ("example-csms", port), name
    assert str(port) in [str(p) for p in csms.get("expose", [])]
    assert str(port) in " ".join(csms["healthcheck"]["test"])


def test_k8s_ports_agree_with_the_configured_listen_and_metrics() -> None:
    settings = _settings(_k8s_env())
    ports = {p["name"]: p["containerPort"] for p in _gateway_container()["ports"]}
    assert ports == {"ocpp": settings.listen_host_port()[1], "metrics": _port_of(settings.metrics)}
    service = _k8s("Service")
    service_ports = service["spec"]["ports"]
    targets = {p["name"]: ports.get(p["targetPort"], p["targetPort"]) for p in service_ports}
    assert targets == ports, "the Service must reach the charger and metrics ports"
    assert service["spec"].get("sessionAffinity", "None") == "None", "no stickiness needed"
    (endpoint,) = _k8s("ServiceMonitor")["spec"]["endpoints"]
    assert targets[endpoint["port"]] == ports["metrics"]
    assert endpoint.get("path", "/metrics") == "/metrics"
    redis_service = _k8s("Service", "redis")
    (redis_container,) = _k8s("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"]
    redis_ports = {p["name"]: p["containerPort"] for p in redis_container["ports"]}
    (redis_port,) = redis_service["spec"]["ports"]
    assert redis_ports[redis_port["targetPort"]] == 6379


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def test_dockerfile_entrypoint_and_cmd_are_a_real_invocation() -> None:
    entrypoint, cmd = _exec_form("ENTRYPOINT"), _exec_form("CMD")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert entrypoint[0] in scripts, f"ENTRYPOINT {entrypoint[0]} is not a console script"
    assert _parse_cli(entrypoint[1:] + cmd, "Dockerfile ENTRYPOINT+CMD") == "serve"


def test_compose_commands_are_real_invocations() -> None:
    services = _gateway_image_services()
    assert set(services) == {"gateway-a", "gateway-b", "example-csms"}
    for name, service in services.items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: use the list form of command"
        assert _parse_cli(command, f"compose {name}") in GATEWAY_IMAGE_COMMANDS
    assert set(_compose_gateways()) == {"gateway-a", "gateway-b"}


@pytest.mark.parametrize("variant", ["redis", "sqlite"])
def test_k8s_args_are_a_real_invocation(variant: str) -> None:
    container = _gateway_container(_variant(variant))
    assert "command" not in container, "keep the image's ENTRYPOINT (ocpp-gateway)"
    assert _parse_cli(container["args"], "k8s deployment args") == "serve"


# --------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------


def test_k8s_probes_hit_healthz_and_readyz_on_the_metrics_port() -> None:
    container = _gateway_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    metrics_port = _port_of(_settings(_k8s_env()).metrics)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == metrics_port, probe


def test_healthcheck_references_healthz() -> None:
    healthchecks = [rest for keyword, rest in _final_stage() if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]


def _healthcheck_argv() -> list[str]:
    (text,) = [rest for keyword, rest in _final_stage() if keyword == "HEALTHCHECK"]
    _options, sep, command = text.partition("CMD ")
    assert sep, "HEALTHCHECK needs a CMD"
    argv = json.loads(command)
    assert isinstance(argv, list)
    return [str(arg) for arg in argv]


async def _run_healthcheck(metrics: str) -> int:
    argv = _healthcheck_argv()
    assert argv[0] == "python", "slim images have no curl; the check runs python"
    env = {**os.environ, "OCPP_GATEWAY_METRICS": metrics}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv[1:], env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(process.wait(), 20)


async def test_healthcheck_command_succeeds_against_a_live_ops_server() -> None:
    """The HEALTHCHECK command, run for real: 0 with /healthz up, non-zero without it."""

    async def ready() -> tuple[bool, str]:
        return True, "ok"

    server = OpsServer(
        host="127.0.0.1", port=0, registry=prometheus_client.CollectorRegistry(), readiness=ready
    )
    await server.start()
    metrics = f"0.0.0.0:{server.port}"
    try:
        assert await _run_healthcheck(metrics) == 0
    finally:
        await server.stop()
    assert await _run_healthcheck(metrics) != 0


# --------------------------------------------------------------------------------------------
# Running as non-root, state on a volume, shutdown grace
# --------------------------------------------------------------------------------------------


def _image_uid() -> str:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    return users[-1].split(":")[0]


def test_image_runs_as_non_root() -> None:
    uid = _image_uid()
    assert uid not in ("root", "0")
    assert uid.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"


@pytest.mark.parametrize("variant", ["redis", "sqlite"])
def test_k8s_pod_is_non_root_with_a_read_only_root_and_state_on_a_volume(variant: str) -> None:
    """Non-root, read-only root filesystem; an SQLite state directory is a volume."""
    docs = _variant(variant)
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    container = _gateway_container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == _image_uid()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "requests" in container["resources"] and "limits" in container["resources"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts.values()) <= volumes.keys()
    state = _settings(_k8s_env(variant)).state
    if urlsplit(state).scheme == "sqlite":
        state_dir = str(PurePosixPath(state.removeprefix("sqlite:///")).parent)
        assert state_dir in mounts, f"the SQLite directory {state_dir} must be a volume"
        assert volumes[mounts[state_dir]].keys() & {"emptyDir", "persistentVolumeClaim"}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", str(text))
    assert match and any(match.groups()), f"cannot read duration {text!r}"
    return int(match[1] or 0) * 60 + float(match[2] or 0)


@pytest.mark.parametrize("variant", ["redis", "sqlite"])
def test_grace_periods_outlast_the_gateway_shutdown_grace(variant: str) -> None:
    """Kubernetes/compose must not SIGKILL the gateway while it drains chargers."""
    k8s_grace = _settings(_k8s_env(variant)).shutdown_grace
    pod = _one(_variant(variant), "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > k8s_grace
    for name, gateway in _compose_gateways().items():
        compose_grace = _compose_settings(gateway).shutdown_grace
        assert _seconds(gateway["stop_grace_period"]) > compose_grace, name


# --------------------------------------------------------------------------------------------
# Files compose mounts
# --------------------------------------------------------------------------------------------


def _bind_mounts() -> list[tuple[str, Path, str]]:
    """(service, host path, container path) of every bind mount in compose."""
    mounts = []
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source, _, rest = str(volume).partition(":")
            if source.startswith((".", "/")):
                mounts.append((name, (DEPLOY / source).resolve(), rest.split(":")[0]))
    return mounts


def test_files_mounted_by_compose_exist() -> None:
    missing = sorted(
        str(host.relative_to(REPO)) for _, host, _ in _bind_mounts() if not host.exists()
    )
    assert not missing, f"compose mounts files that do not exist: {missing}"


def test_compose_prometheus_loads_its_rules_and_scrapes_every_replica() -> None:
    """The mounted prometheus.yml finds alerts.yml and scrapes each compose gateway."""
    mounts = {container: host for service, host, container in _bind_mounts()
              if service == "prometheus"}  # fmt: skip
    config_host = mounts.get("/etc/prometheus/prometheus.yml")
    assert config_host is not None, "compose must mount prometheus.yml"
    (config,) = _load_all(config_host)
    for rule_file in config.get("rule_files", []):
        in_container = PurePosixPath("/etc/prometheus") / rule_file
        assert str(in_container) in mounts, f"rule file {rule_file} is not mounted"
    wanted = {
        f"{name}:{_port_of(_compose_settings(service).metrics)}"
        for name, service in _compose_gateways().items()
    }
    targets = {
        target
        for job in config.get("scrape_configs", [])
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }
    # One target per replica, so each replica is its own instance on the dashboard.
    assert targets == wanted, f"prometheus.yml scrapes {sorted(targets)}, not {sorted(wanted)}"


def test_grafana_dashboard_provider_reads_the_mounted_dashboards() -> None:
    mounts = {container: host for service, host, container in _bind_mounts()
              if service == "grafana"}  # fmt: skip
    provisioning = mounts.get("/etc/grafana/provisioning")
    assert provisioning is not None, "compose must mount grafana/provisioning"
    providers = sorted((provisioning / "dashboards").glob("*.y*ml"))
    assert providers, "grafana/provisioning/dashboards has no provider file"
    dashboard_mounts = [c for c, h in mounts.items() if h == (REPO / "grafana" / "dashboards")]
    assert dashboard_mounts, "compose must mount grafana/dashboards"
    for path in providers:
        for doc in _load_all(path):
            for provider in doc.get("providers", []):
                where = str(provider.get("options", {}).get("path", ""))
                assert any(where.startswith(m) for m in dashboard_mounts), (
                    f"{path.relative_to(REPO)}: provider path {where!r} is not under the "
                    f"compose mount {dashboard_mounts}"
                )


# --------------------------------------------------------------------------------------------
# ocpp-gateway example-csms
# --------------------------------------------------------------------------------------------


def test_example_csms_rejects_a_bad_listen_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["example-csms", "--listen", "nonsense"])
    assert info.value.code == 2
    assert "host:port" in capsys.readouterr().err


@pytest.mark.integration
async def test_example_csms_accepts_a_2_0_1_station_and_stops_on_sigterm() -> None:
    """The compose upstream: a real process, a real 2.0.1 websocket, boot Accepted, schema
    violations logged, exit 0 on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "example-csms", "--listen", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = re.search(r"listening on (ws://127\.0\.0\.1:\d+/ocpp)", line)
        assert match, f"no URL in {line!r}"
        assert "not a production CSMS" in line
        async with connect(
            f"{match[1]}/CS-DEPLOY", subprotocols=[Subprotocol("ocpp2.0.1")]
        ) as websocket:
            assert websocket.subprotocol == "ocpp2.0.1"
            boot = {
                "reason": "PowerUp",
                "chargingStation": {"model": "Box", "vendorName": "ACME"},
            }
            await websocket.send(orjson.dumps([2, "m1", "BootNotification", boot]).decode())
            answer = orjson.loads(await asyncio.wait_for(websocket.recv(), 10))
            assert answer[:2] == [3, "m1"] and answer[2]["status"] == "Accepted"
            await websocket.send(orjson.dumps([2, "m2", "Heartbeat", {}]).decode())
            answer = orjson.loads(await asyncio.wait_for(websocket.recv(), 10))
            assert answer[:2] == [3, "m2"] and "currentTime" in answer[2]
            await websocket.send(orjson.dumps([2, "m3", "Heartbeat", {"bogus": 1}]).decode())
            answer = orjson.loads(await asyncio.wait_for(websocket.recv(), 10))
            assert answer[:3] == [4, "m3", "FormatViolation"]
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0
        assert b"[CS-DEPLOY] received invalid Heartbeat CALL" in stderr, stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
