"""Tests for gateway.config: precedence, coercion, validation, layouts and argparse wiring."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import (
    SETTINGS_FLAGS,
    ConfigError,
    EvseLayout,
    Secret,
    Settings,
    add_settings_arguments,
    load_settings,
    settings_from_namespace,
    split_host_port,
)
from gateway.routing import Decision, Route, RouteRule


def write_toml(directory: Path, text: str, name: str = "gateway.toml") -> Path:
    """Write a config file and return its path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def parser() -> argparse.ArgumentParser:
    """An argument parser with the settings options, like cli.py builds for `serve`."""
    result = argparse.ArgumentParser(prog="ocpp-gateway serve", exit_on_error=False)
    add_settings_arguments(result)
    return result


def test_no_flags_env_or_file_gives_the_documented_defaults() -> None:
    """With nothing configured every field has its documented default."""
    settings = load_settings({}, {})
    assert settings == Settings()
    assert settings.listen == "0.0.0.0:9000"
    assert settings.upstream is None
    assert settings.state == "sqlite:///ocpp-gateway-state.db"
    assert settings.metrics == "0.0.0.0:9100"
    assert (settings.log_level, settings.log_format) == ("info", "text")
    assert settings.response_timeout == 30.0
    assert settings.upstream_wait == 10.0
    assert (settings.backoff_initial, settings.backoff_max) == (1.0, 60.0)
    assert settings.max_frame_bytes == 1048576
    assert settings.max_queued_calls == 16
    assert settings.ping_interval == 60.0
    assert settings.validate_outbound is False
    assert settings.mappings is None
    assert settings.shutdown_grace == 10.0
    assert settings.evse_layouts == ()


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    """Each layer overrides the ones below it, setting by setting."""
    path = write_toml(
        tmp_path,
        'response_timeout = 5\nupstream_wait = 4.5\nlog_level = "debug"\n'
        'upstream = "ws://from-file/ocpp"\n',
    )
    env = {
        "OCPP_GATEWAY_CONFIG": str(path),
        "OCPP_GATEWAY_RESPONSE_TIMEOUT": "7",
        "OCPP_GATEWAY_UPSTREAM_WAIT": "3",
    }
    settings = load_settings({"response_timeout": 9.0}, env)
    assert settings.response_timeout == 9.0  # flag
    assert settings.upstream_wait == 3.0  # env over file
    assert settings.log_level == "debug"  # file over default
    assert settings.upstream == "ws://from-file/ocpp"
    assert settings.backoff_max == 60.0  # default


def test_config_path_comes_from_the_flag_before_the_env(tmp_path: Path) -> None:
    """--config wins over OCPP_GATEWAY_CONFIG, and the keyword argument wins over both."""
    flag_file = write_toml(tmp_path, 'log_format = "json"\n', name="flag.toml")
    env_file = write_toml(tmp_path, 'log_level = "error"\n', name="env.toml")
    kw_file = write_toml(tmp_path, "max_queued_calls = 3\n", name="kw.toml")
    env = {"OCPP_GATEWAY_CONFIG": str(env_file)}
    from_flag = load_settings({"config": str(flag_file)}, env)
    assert (from_flag.log_format, from_flag.log_level) == ("json", "info")
    from_env = load_settings({}, env)
    assert (from_env.log_format, from_env.log_level) == ("text", "error")
    from_kw = load_settings({"config": str(flag_file)}, env, config_path=kw_file)
    assert (from_kw.max_queued_calls, from_kw.log_format) == (3, "text")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[("true", True), ("TRUE", True), ("1", True), ("Yes", True)],
        *[("false", False), ("0", False), ("no", False), ("NO", False)],
    ],
)
def test_env_booleans_accept_the_usual_words(text: str, expected: bool) -> None:
    """Boolean env vars accept true/false, 1/0 and yes/no in any case."""
    settings = load_settings({}, {"OCPP_GATEWAY_VALIDATE_OUTBOUND": text})
    assert settings.validate_outbound is expected


def test_env_strings_are_coerced_by_field_type() -> None:
    """Numbers in env vars become floats and ints of the right type."""
    env = {
        "OCPP_GATEWAY_RESPONSE_TIMEOUT": "2.5",
        "OCPP_GATEWAY_MAX_FRAME_BYTES": "65536",
        "OCPP_GATEWAY_PING_INTERVAL": "0",
        "OCPP_GATEWAY_LOG_LEVEL": "WARNING",
        "OCPP_GATEWAY_UNRELATED": "ignored",
    }
    settings = load_settings({}, env)
    assert settings.response_timeout == 2.5
    assert settings.max_frame_bytes == 65536
    assert isinstance(settings.max_frame_bytes, int)
    assert settings.ping_interval == 0.0
    assert isinstance(settings.ping_interval, float)
    assert settings.log_level == "warning"


def test_bad_env_number_names_the_variable_and_the_value() -> None:
    """A non-numeric env value is a ConfigError naming the variable and quoting the value."""
    with pytest.raises(ConfigError) as caught:
        load_settings({}, {"OCPP_GATEWAY_RESPONSE_TIMEOUT": "abc"})
    assert str(caught.value) == "OCPP_GATEWAY_RESPONSE_TIMEOUT: expected a number, got 'abc'"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OCPP_GATEWAY_MAX_QUEUED_CALLS", "1.5"),
        ("OCPP_GATEWAY_VALIDATE_OUTBOUND", "maybe"),
        ("OCPP_GATEWAY_RESPONSE_TIMEOUT", ""),
    ],
)
def test_bad_env_values_are_config_errors(name: str, value: str) -> None:
    """Unparseable env values are rejected with the variable name in the message."""
    with pytest.raises(ConfigError, match=name):
        load_settings({}, {name: value})


def test_a_higher_layer_can_override_a_bad_lower_one() -> None:
    """Only the winning value is parsed, so a flag can fix a broken env var."""
    settings = load_settings({"response_timeout": 3.0}, {"OCPP_GATEWAY_RESPONSE_TIMEOUT": "x"})
    assert settings.response_timeout == 3.0


def test_unknown_toml_key_is_named_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misspelt key in the file is an error naming the file and the key."""
    monkeypatch.chdir(tmp_path)
    write_toml(tmp_path, 'upstrem = "ws://csms/ocpp"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"config": "gateway.toml"}, {})
    assert str(caught.value).startswith("gateway.toml: unknown key 'upstrem'")
    assert "did you mean 'upstream'" in str(caught.value)


def test_out_of_range_toml_value_is_named_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-positive timeout in the file names the file and the key."""
    monkeypatch.chdir(tmp_path)
    write_toml(tmp_path, "response_timeout = -1\n")
    with pytest.raises(ConfigError, match=r"^gateway\.toml: response_timeout must be > 0"):
        load_settings({}, {}, config_path="gateway.toml")


def test_wrongly_typed_toml_value_is_an_error(tmp_path: Path) -> None:
    """TOML values must already have the right type; strings are not parsed as numbers."""
    path = write_toml(tmp_path, 'response_timeout = "abc"\n')
    with pytest.raises(ConfigError, match="response_timeout: expected a number, got 'abc'"):
        load_settings({}, {}, config_path=path)
    path = write_toml(tmp_path, "max_queued_calls = 2.0\n")
    with pytest.raises(ConfigError, match="max_queued_calls: expected an integer"):
        load_settings({}, {}, config_path=path)


def test_missing_or_invalid_config_file_is_an_error(tmp_path: Path) -> None:
    """An unreadable or syntactically broken file is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read config file"):
        load_settings({"config": str(tmp_path / "nope.toml")}, {})
    broken = write_toml(tmp_path, "listen = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings({}, {}, config_path=broken)


@pytest.mark.parametrize("text", ["off", "OFF", ""])
def test_metrics_off_or_empty_disables_the_ops_server(text: str) -> None:
    """metrics "off" or "" becomes None and metrics_host_port() is None."""
    settings = load_settings({"metrics": text}, {})
    assert settings.metrics is None
    assert settings.metrics_host_port() is None


def test_host_port_parsing_handles_ipv4_names_and_ipv6() -> None:
    """listen and metrics parse into (host, port), brackets removed from IPv6 hosts."""
    settings = load_settings({"listen": "[::]:9000", "metrics": "localhost:0"}, {})
    assert settings.listen_host_port() == ("::", 9000)
    assert settings.metrics_host_port() == ("localhost", 0)
    assert Settings().listen_host_port() == ("0.0.0.0", 9000)


@pytest.mark.parametrize(
    "text", ["9000", "0.0.0.0", "0.0.0.0:", ":9000", "::1:9000", "[::1]9000", "h:70000", "h:x"]
)
def test_malformed_listen_addresses_are_rejected(text: str) -> None:
    """Addresses that are not host:port are ConfigErrors naming the flag."""
    with pytest.raises(ConfigError, match=r"^--listen must be host:port"):
        load_settings({"listen": text}, {})


@given(
    host=st.sampled_from(["127.0.0.1", "0.0.0.0", "gateway.local", "[::1]", "[fe80::1]"]),
    port=st.integers(min_value=0, max_value=65535),
)
def test_split_host_port_round_trips(host: str, port: int) -> None:
    """Any valid host and port survive formatting as host:port and splitting again."""
    assert split_host_port(f"{host}:{port}") == (host.strip("[]"), port)


@pytest.mark.parametrize("url", ["ws://csms:8080/ocpp", "wss://user:pw@csms.example/ocpp/"])
def test_websocket_upstreams_are_accepted(url: str) -> None:
    """ws:// and wss:// URLs are valid upstreams and require_upstream() returns them."""
    assert load_settings({"upstream": url}, {}).require_upstream() == url


@pytest.mark.parametrize(
    "url", ["http://csms/ocpp", "csms:8080", "ws://", "ws://csms/ocpp?x=1", "ws://csms:99999/"]
)
def test_non_websocket_upstreams_are_rejected(url: str) -> None:
    """Other schemes, missing hosts, bad ports and query strings are ConfigErrors."""
    with pytest.raises(ConfigError, match="OCPP_GATEWAY_UPSTREAM"):
        load_settings({}, {"OCPP_GATEWAY_UPSTREAM": url})


def test_require_upstream_explains_how_to_set_it() -> None:
    """Without an upstream, require_upstream() names the flag, env var and file key."""
    with pytest.raises(ConfigError, match="--upstream") as caught:
        Settings().require_upstream()
    assert "OCPP_GATEWAY_UPSTREAM" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///relative/state.db",
        "sqlite:////var/lib/ocpp-gateway/state.db",
        "redis://localhost:6379/0",
        "rediss://:pw@redis.example:6380",
        "memory://",
    ],
)
def test_supported_state_urls_are_accepted(url: str) -> None:
    """sqlite, redis, rediss and memory state URLs are valid."""
    assert load_settings({"state": url}, {}).state == url


@pytest.mark.parametrize(
    "url",
    ["postgres://db/x", "sqlite://host/x.db", "sqlite:///", "redis:///0", "redis://h/x", "memory:"],
)
def test_unsupported_state_urls_are_rejected(url: str) -> None:
    """Unknown schemes and malformed sqlite/redis URLs are ConfigErrors naming the flag."""
    with pytest.raises(ConfigError, match=r"^--state must be"):
        load_settings({"state": url}, {})


def test_enumerated_settings_reject_unknown_values() -> None:
    """log_level and log_format only take their documented values."""
    with pytest.raises(ConfigError, match=r"debug, info, warning, error"):
        load_settings({}, {"OCPP_GATEWAY_LOG_LEVEL": "verbose"})
    with pytest.raises(ConfigError, match="text, json"):
        load_settings({"log_format": "xml"}, {})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("response_timeout", 0.0),
        ("backoff_initial", -1.0),
        ("max_frame_bytes", 0),
        ("ping_interval", -5.0),
        ("response_timeout", float("nan")),
        ("upstream_wait", float("inf")),
    ],
)
def test_numbers_out_of_range_are_rejected(name: str, value: float) -> None:
    """Timeouts and sizes must be positive (zero only where it means "off") and finite."""
    with pytest.raises(ConfigError, match=f"--{name.replace('_', '-')} must be"):
        load_settings({name: value}, {})


def test_zero_is_allowed_where_it_has_a_meaning() -> None:
    """ping 0 disables pings; zero grace, wait and queue length are legitimate choices."""
    flags = {"ping_interval": 0, "shutdown_grace": 0, "upstream_wait": 0, "max_queued_calls": 0}
    settings = load_settings(flags, {})
    assert (settings.ping_interval, settings.max_queued_calls) == (0.0, 0)


def test_backoff_initial_may_not_exceed_backoff_max() -> None:
    """backoff_initial above backoff_max is an error naming both sources."""
    with pytest.raises(ConfigError, match="OCPP_GATEWAY_BACKOFF_INITIAL") as caught:
        load_settings({"backoff_max": 2.0}, {"OCPP_GATEWAY_BACKOFF_INITIAL": "5"})
    assert "--backoff-max" in str(caught.value)


def test_mappings_must_be_an_existing_directory(tmp_path: Path) -> None:
    """A mappings directory that exists is kept; a missing one is an error; "" means default."""
    assert load_settings({"mappings": str(tmp_path)}, {}).mappings == str(tmp_path)
    assert load_settings({"mappings": ""}, {}).mappings is None
    with pytest.raises(ConfigError, match="existing directory"):
        load_settings({"mappings": str(tmp_path / "missing")}, {})


def test_unknown_flag_keys_are_rejected() -> None:
    """A misspelt key in the flags mapping is an error rather than silently ignored."""
    with pytest.raises(ConfigError, match="reponse_timeout"):
        load_settings({"reponse_timeout": 3.0}, {})


def test_evse_layouts_load_from_toml_and_match_first_rule(tmp_path: Path) -> None:
    """[[evse_layout]] rules map connectors per charger glob; the first match wins."""
    path = write_toml(
        tmp_path,
        """
[[evse_layout]]
chargers = "ACME-*"
connectors = { "1" = [1, 1], "2" = [1, 2] }

[[evse_layout]]
chargers = "*"
connectors = { "1" = [1, 1], "2" = [2, 1] }
""",
    )
    settings = load_settings({}, {}, config_path=path)
    assert len(settings.evse_layouts) == 2
    acme = settings.layout_for("ACME-0042")
    assert acme is not None
    assert dict(acme) == {1: (1, 1), 2: (1, 2)}
    other = settings.layout_for("OTHER-1")
    assert other is not None
    assert other[2] == (2, 1)
    assert hash(settings) == hash(dataclasses.replace(settings))


def test_without_layouts_every_charger_gets_the_default() -> None:
    """No layout rules means layout_for() is None (the default 1:1 layout)."""
    assert Settings().layout_for("CP-1") is None
    rule = EvseLayout(pattern="CP-9*", connectors={1: (1, 1)})
    assert Settings(evse_layouts=(rule,)).layout_for("CP-1") is None


@pytest.mark.parametrize(
    ("connectors", "message"),
    [
        ('{ "1" = [1, 1], "2" = [1, 1] }', "both map to evse 1 connector 1"),
        ('{ "0" = [1, 1] }', "1.6 connector id must be an integer >= 1"),
        ('{ "1" = [0, 1] }', "integers >= 1"),
        ('{ "1" = [1] }', r"connectors\.1 must be \[evseId, connectorId\]"),
        ('{ "one" = [1, 1] }', "is not a 1.6 connector id"),
        ("{}", "at least one"),
    ],
)
def test_invalid_evse_layouts_are_rejected(tmp_path: Path, connectors: str, message: str) -> None:
    """Bad connector ids, targets and duplicate targets are errors naming the rule."""
    path = write_toml(tmp_path, f'[[evse_layout]]\nchargers = "*"\nconnectors = {connectors}\n')
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings({}, {}, config_path=path)
    assert "evse_layout[0]" in str(caught.value)


def test_evse_layout_tables_reject_unknown_keys(tmp_path: Path) -> None:
    """A misspelt key inside an [[evse_layout]] table is an error."""
    path = write_toml(tmp_path, '[[evse_layout]]\ncharger = "*"\nconnectors = { "1" = [1, 1] }\n')
    with pytest.raises(ConfigError, match="unknown key 'charger'"):
        load_settings({}, {}, config_path=path)


def test_evse_layout_connectors_are_immutable_and_hashable() -> None:
    """The connector map cannot be modified through the layout and is hashable."""
    source = {1: (1, 1)}
    layout = EvseLayout(pattern="*", connectors=source)
    source[2] = (1, 2)
    assert dict(layout.connectors) == {1: (1, 1)}
    assert layout == EvseLayout(pattern="*", connectors={1: (1, 1)})
    assert hash(layout) == hash(EvseLayout(pattern="*", connectors={1: [1, 1]}))  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        layout.connectors[3] = (1, 3)  # type: ignore[index]


def test_settings_flags_cover_every_field_but_the_tables() -> None:
    """SETTINGS_FLAGS lists each Settings field except the TOML-only tables (evse_layouts,
    chargers, routes), with help and env names."""
    names = [spec.name for spec in SETTINGS_FLAGS]
    fields = [field.name for field in dataclasses.fields(Settings)]
    tables = ("evse_layouts", "chargers", "routes")
    assert names == [name for name in fields if name not in tables]
    assert all(spec.help for spec in SETTINGS_FLAGS)
    by_name = {spec.name: spec for spec in SETTINGS_FLAGS}
    assert by_name["response_timeout"].env_var == "OCPP_GATEWAY_RESPONSE_TIMEOUT"
    assert by_name["response_timeout"].flag == "--response-timeout"
    assert by_name["max_frame_bytes"].default == 1048576


def test_absent_flags_are_absent_from_the_namespace() -> None:
    """Every option defaults to SUPPRESS, so unset flags let env and file values through."""
    ns = parser().parse_args([])
    assert vars(ns) == {}
    settings = settings_from_namespace(ns, {"OCPP_GATEWAY_LISTEN": "127.0.0.1:0"})
    assert settings.listen == "127.0.0.1:0"


def test_the_documented_command_line_parses(tmp_path: Path) -> None:
    """The README's serve command line, plus typed options, becomes the expected Settings."""
    config = write_toml(tmp_path, "max_queued_calls = 4\n")
    argv = [
        "--listen", "0.0.0.0:9000",
        "--upstream", "ws://csms:8080/ocpp",
        "--state", "sqlite:///var/lib/ocpp-gateway/state.db",
        "--metrics", "0.0.0.0:9100",
        "--config", str(config),
        "--log-level", "debug", "--log-format", "json",
        "--response-timeout", "12.5", "--upstream-wait", "2",
        "--backoff-initial", "0.5", "--backoff-max", "30",
        "--max-frame-bytes", "2048", "--ping-interval", "0",
        "--validate-outbound", "--shutdown-grace", "1",
    ]  # fmt: skip
    ns = parser().parse_args(argv)
    ns.command = "serve"  # sub-command attributes are ignored
    settings = settings_from_namespace(ns, {"OCPP_GATEWAY_VALIDATE_OUTBOUND": "no"})
    assert settings.upstream == "ws://csms:8080/ocpp"
    assert settings.state == "sqlite:///var/lib/ocpp-gateway/state.db"
    assert settings.response_timeout == 12.5
    assert settings.max_frame_bytes == 2048
    assert settings.max_queued_calls == 4
    assert settings.validate_outbound is True
    assert (settings.log_level, settings.log_format) == ("debug", "json")


def test_no_validate_outbound_flag_turns_validation_off() -> None:
    """--no-validate-outbound overrides an env var that turned validation on."""
    ns = parser().parse_args(["--no-validate-outbound"])
    settings = settings_from_namespace(ns, {"OCPP_GATEWAY_VALIDATE_OUTBOUND": "true"})
    assert settings.validate_outbound is False


def test_bad_numeric_flags_are_usage_errors() -> None:
    """argparse itself rejects a non-numeric value for a numeric option."""
    with pytest.raises(argparse.ArgumentError, match="expected a number, got 'soon'"):
        parser().parse_args(["--response-timeout", "soon"])


def test_replace_builds_validated_variants() -> None:
    """dataclasses.replace works on Settings and still validates the result."""
    base = Settings(upstream="ws://127.0.0.1:1/ocpp")
    variant = dataclasses.replace(base, listen="127.0.0.1:0", response_timeout=1)
    assert variant.listen_host_port() == ("127.0.0.1", 0)
    assert variant.response_timeout == 1.0
    assert isinstance(variant.response_timeout, float)
    with pytest.raises(ConfigError, match="response_timeout must be > 0"):
        dataclasses.replace(base, response_timeout=0)
    with pytest.raises(ConfigError, match="upstream must be a ws:// or wss:// URL"):
        dataclasses.replace(base, upstream="http://csms")


def test_settings_repr_masks_url_passwords() -> None:
    """Printing Settings does not reveal passwords embedded in the upstream or state URL."""
    settings = Settings(upstream="wss://cp:hunter2@csms/ocpp", state="redis://:hunter2@r:6379/0")
    assert "hunter2" not in repr(settings)
    assert "wss://cp:***@csms/ocpp" in repr(settings)


# --- migration routing (issue 9): legacy upstream, default route, admin token, [[routes]] ---

LEGACY = "ws://old-csms/ocpp"


def test_routing_settings_default_to_translate_without_legacy_or_admin() -> None:
    settings = load_settings({}, {})
    assert settings.legacy_upstream is None
    assert settings.default_route == "translate"
    assert settings.admin_token is None
    assert settings.routes == ()
    assert settings.routing_table().decide("CP-1", vendor=None, model=None) == Decision(
        Route.TRANSLATE, False, "default"
    )


def test_routing_settings_come_from_flags_env_and_file(tmp_path: Path) -> None:
    """Each of the three is a flag, an environment variable and a TOML key."""
    path = write_toml(
        tmp_path,
        f'legacy_upstream = "{LEGACY}"\ndefault_route = "legacy"\nadmin_token = "file-token"\n',
    )
    from_file = load_settings({}, {}, config_path=path)
    assert (from_file.legacy_upstream, from_file.default_route) == (LEGACY, "legacy")
    assert from_file.admin_token is not None and from_file.admin_token.reveal() == "file-token"

    env = {
        "OCPP_GATEWAY_LEGACY_UPSTREAM": "wss://legacy.example/ocpp16",
        "OCPP_GATEWAY_DEFAULT_ROUTE": "Translate",
        "OCPP_GATEWAY_ADMIN_TOKEN": "env-token",
    }
    from_env = load_settings({}, env, config_path=path)
    assert from_env.legacy_upstream == "wss://legacy.example/ocpp16"
    assert from_env.default_route == "translate"
    assert from_env.admin_token is not None and from_env.admin_token.reveal() == "env-token"

    argv = ["--legacy-upstream", LEGACY, "--default-route", "legacy", "--admin-token", "flag"]
    from_flags = settings_from_namespace(parser().parse_args(argv), env)
    assert (from_flags.legacy_upstream, from_flags.default_route) == (LEGACY, "legacy")
    assert isinstance(from_flags.admin_token, Secret)
    assert from_flags.admin_token.reveal() == "flag"


@pytest.mark.parametrize("url", ["http://old-csms/ocpp", "old-csms:9000", "ws://old/ocpp?x=1"])
def test_legacy_upstream_is_checked_like_upstream(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^--legacy-upstream must"):
        load_settings({"legacy_upstream": url}, {})


def test_an_empty_legacy_upstream_or_admin_token_is_none() -> None:
    settings = load_settings(
        {}, {"OCPP_GATEWAY_LEGACY_UPSTREAM": "", "OCPP_GATEWAY_ADMIN_TOKEN": ""}
    )
    assert (settings.legacy_upstream, settings.admin_token) == (None, None)


def test_default_route_is_translate_or_legacy() -> None:
    with pytest.raises(
        ConfigError, match=r"^--default-route must be one of translate, legacy, got 'shadow'"
    ):
        load_settings({"default_route": "shadow"}, {})


def test_default_route_legacy_needs_legacy_upstream() -> None:
    """Refused at load (naming where the route came from) and on Settings itself."""
    with pytest.raises(
        ConfigError,
        match=r"default_route legacy \(from OCPP_GATEWAY_DEFAULT_ROUTE\) needs legacy_upstream",
    ):
        load_settings({}, {"OCPP_GATEWAY_DEFAULT_ROUTE": "legacy"})
    with pytest.raises(ConfigError, match=r"needs legacy_upstream.*--legacy-upstream"):
        Settings(default_route="legacy")
    assert Settings(default_route="legacy", legacy_upstream=LEGACY).default_route == "legacy"


ROUTES_TOML = """
legacy_upstream = "ws://old-csms/ocpp"

[[routes]]
charger = "CP-7"
route = "translate"
shadow = true

[[routes]]
name = "acme pilots"
pattern = "ACME-*"
vendor = "Acme"
model = "Volt*"
route = "translate"

[[routes]]
name = "wave 1"
percent = 25
route = "translate"

[[routes]]
pattern = "*"
route = "legacy"
"""


def test_routes_load_from_toml_in_order(tmp_path: Path) -> None:
    settings = load_settings({}, {}, config_path=write_toml(tmp_path, ROUTES_TOML))
    assert settings.routes == (
        RouteRule(route=Route.TRANSLATE, charger="CP-7", shadow=True),
        RouteRule(
            route=Route.TRANSLATE,
            name="acme pilots",
            pattern="ACME-*",
            vendor="Acme",
            model="Volt*",
        ),
        RouteRule(route=Route.TRANSLATE, name="wave 1", percent=25.0),
        RouteRule(route=Route.LEGACY, pattern="*"),
    )
    table = settings.routing_table()
    assert table.decide("CP-7", vendor=None, model=None) == Decision(
        Route.TRANSLATE, True, "charger:CP-7"
    )
    assert table.decide("ACME-1", vendor="Acme", model="Volt 22").rule == "acme pilots"
    assert table.default is Route.TRANSLATE


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('route = "legacy"\npatern = "x"', r"routes\[1\]: unknown key 'patern'"),
        ('pattern = "x"', r"routes\[1\]: route is required"),
        ('route = "legacy"', r"routes\[1\]: a rule needs at least one condition.*default_route"),
        ('route = "old"\npattern = "x"', r"routes\[1\]: route must be translate or legacy"),
        ('route = "legacy"\npercent = 120', r"routes\[1\]: percent must be a number from 0"),
        ('route = "legacy"\npattern = 3', r"routes\[1\]: pattern must be a string"),
    ],
)
def test_bad_routes_name_the_file_and_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    text = f'legacy_upstream = "{LEGACY}"\n[[routes]]\ncharger = "CP-1"\nroute = "translate"\n'
    write_toml(tmp_path, f"{text}[[routes]]\n{table}\n")
    with pytest.raises(ConfigError, match=rf"^gateway\.toml: {message}"):
        load_settings({}, {}, config_path="gateway.toml")


def test_routes_must_be_an_array_of_tables(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'routes = "legacy"\n')
    with pytest.raises(ConfigError, match=r"routes must be an array of tables \(\[\[routes\]\]\)"):
        load_settings({}, {}, config_path=path)


def test_a_misspelt_routes_key_suggests_routes(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[[route]]\nroute = "legacy"\npattern = "*"\n')
    with pytest.raises(ConfigError, match="unknown key 'route' \\(did you mean 'routes'\\?\\)"):
        load_settings({}, {}, config_path=path)


@pytest.mark.parametrize(
    ("rule", "what"),
    [
        ('route = "legacy"', "route legacy"),
        ('route = "translate"\nshadow = true', "shadow"),
    ],
)
def test_routes_to_the_legacy_csms_need_legacy_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rule: str, what: str
) -> None:
    """A legacy route, or the shadow of a translated charger, needs the legacy CSMS."""
    monkeypatch.chdir(tmp_path)
    fine = '[[routes]]\npattern = "A-*"\nroute = "translate"\n'
    write_toml(tmp_path, f'{fine}[[routes]]\npattern = "*"\n{rule}\n')
    with pytest.raises(
        ConfigError, match=rf"^gateway\.toml: routes\[1\]: {what}.*needs legacy_upstream"
    ):
        load_settings({}, {}, config_path="gateway.toml")
    flags = {"legacy_upstream": LEGACY}
    assert len(load_settings(flags, {}, config_path="gateway.toml").routes) == 2
    with pytest.raises(ConfigError, match=r"^routes\[0\]: route legacy needs legacy_upstream"):
        Settings(routes=(RouteRule(route=Route.LEGACY, charger="CP-1"),))


def test_the_admin_token_never_shows() -> None:
    """Not in repr or str of Settings, nor of the token itself; reveal() gives it."""
    settings = load_settings(
        {"legacy_upstream": "wss://gw:legacy-pw@old-csms/ocpp"},
        {"OCPP_GATEWAY_ADMIN_TOKEN": "s3cr3t-admin-token"},
    )
    text = repr(settings)
    assert "s3cr3t-admin-token" not in text and "legacy-pw" not in text
    assert "admin_token=Secret('***')" in text
    assert "legacy_upstream='wss://gw:***@old-csms/ocpp'" in text
    assert settings.admin_token is not None
    assert "s3cr3t" not in f"{settings.admin_token} {settings.admin_token!r}"
    assert settings.admin_token.reveal() == "s3cr3t-admin-token"
    replaced = dataclasses.replace(settings, listen="127.0.0.1:0")
    assert replaced.admin_token is not None
    assert replaced.admin_token.reveal() == "s3cr3t-admin-token"


@pytest.mark.parametrize("token", ["two words", "tab\there", "nul\x00", "ümlaut"])
def test_a_token_that_cannot_be_a_bearer_token_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(ConfigError, match="OCPP_GATEWAY_ADMIN_TOKEN must be printable") as caught:
        load_settings({}, {"OCPP_GATEWAY_ADMIN_TOKEN": token})
    assert token not in str(caught.value)
