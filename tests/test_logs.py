"""Tests for gateway.logs: station-tagged text and JSON lines, redaction, idempotent setup."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from gateway.logs import (
    configure_logging,
    message_context,
    redact,
    redact_url,
    station_context,
    station_id_var,
)

LOG = logging.getLogger("gateway.session")
TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) +(?P<logger>\S+) (?P<rest>.*)"
)


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Put the root logger's handlers and level back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def stream() -> io.StringIO:
    """Where the configured handler writes."""
    return io.StringIO()


def lines(stream: io.StringIO) -> list[str]:
    """The non-empty lines written so far."""
    return [line for line in stream.getvalue().splitlines() if line]


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """Every line parsed as a JSON object."""
    parsed = [orjson.loads(line) for line in lines(stream)]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


def test_text_lines_carry_the_station_id_inside_station_context(stream: io.StringIO) -> None:
    """Inside station_context the text line shows [station] between logger and message."""
    configure_logging(level="info", fmt="text", stream=stream)
    with station_context("CP-001"):
        LOG.info("boot accepted", extra={"interval": 300})
    LOG.info("no station here")
    first, second = lines(stream)
    match = TEXT_LINE.fullmatch(first)
    assert match is not None
    assert match["level"] == "INFO"
    assert first.split("Z ", 1)[1] == "INFO  gateway.session [CP-001] boot accepted interval=300"
    assert second.endswith("INFO  gateway.session no station here")
    assert "[" not in second


def test_station_context_restores_the_previous_value() -> None:
    """Leaving station_context (even nested) restores the outer station id."""
    assert station_id_var.get() is None
    with station_context("outer"):
        with station_context("inner"):
            assert station_id_var.get() == "inner"
        assert station_id_var.get() == "outer"
    assert station_id_var.get() is None


async def test_tasks_created_inside_the_context_inherit_the_station(
    stream: io.StringIO,
) -> None:
    """A task created inside station_context logs with its station, even after the block ends."""
    configure_logging(level="info", fmt="json", stream=stream)
    release = asyncio.Event()

    async def worker(name: str) -> None:
        await release.wait()
        LOG.info("from %s", name)

    with station_context("CP-042"):
        inside = asyncio.create_task(worker("inside"))
    outside = asyncio.create_task(worker("outside"))
    release.set()
    await asyncio.gather(inside, outside)
    stations = {entry["msg"]: entry["station"] for entry in json_lines(stream)}
    assert stations == {"from inside": "CP-042", "from outside": None}


def test_json_lines_parse_and_have_the_documented_fields(stream: io.StringIO) -> None:
    """A JSON line has ts, level, logger, msg, station, message_id and the extra fields."""
    configure_logging(level="debug", fmt="json", stream=stream)
    with station_context("CP-7"), message_context("19223201"):
        LOG.debug("forwarded %s", "BootNotification", extra={"action": "Boot", "n": 2})
    (entry,) = json_lines(stream)
    assert entry["level"] == "DEBUG"
    assert entry["logger"] == "gateway.session"
    assert entry["msg"] == "forwarded BootNotification"
    assert entry["station"] == "CP-7"
    assert entry["message_id"] == "19223201"
    assert entry["action"] == "Boot"
    assert entry["n"] == 2
    assert isinstance(entry["ts"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
    assert "exc" not in entry


def test_json_lines_str_unserialisable_extras_and_include_tracebacks(
    stream: io.StringIO,
) -> None:
    """Objects orjson cannot encode are str()-ed, and exc_info adds the traceback as exc."""

    class Opaque:
        def __str__(self) -> str:
            return "opaque-thing"

    configure_logging(level="info", fmt="json", stream=stream)
    try:
        raise ValueError("bad frame")
    except ValueError:
        LOG.exception("translation failed", extra={"thing": Opaque(), "big": 1 << 70})
    (entry,) = json_lines(stream)
    assert entry["thing"] == "opaque-thing"
    assert entry["big"] == str(1 << 70)
    assert entry["station"] is None
    assert isinstance(entry["exc"], str)
    assert "Traceback" in entry["exc"]
    assert "ValueError: bad frame" in entry["exc"]


def test_text_lines_append_tracebacks_and_quote_awkward_values(stream: io.StringIO) -> None:
    """Values with spaces are quoted, message ids shown, and a traceback follows the line."""
    configure_logging(level="info", fmt="text", stream=stream)
    with message_context("m-1"):
        try:
            raise KeyError("idTag")
        except KeyError:
            LOG.error("mapping failed", exc_info=True, extra={"reason": "no such key"})
    output = stream.getvalue()
    first = output.splitlines()[0]
    assert first.endswith('mapping failed message_id=m-1 reason="no such key"')
    assert "Traceback (most recent call last):" in output
    assert "KeyError: 'idTag'" in output


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secret_extras_are_never_written(stream: io.StringIO, fmt: str) -> None:
    """Values of password/secret/token/authorization keys (any case, nested) become ***."""
    configure_logging(level="info", fmt=fmt, stream=stream)
    LOG.info(
        "connecting",
        extra={
            "password": "pw-value-1",
            "ClientSecret": "pw-value-2",
            "auth_token": "pw-value-3",
            "Authorization": "Basic pw-value-4",
            "headers": {"authorization": "Bearer pw-value-5", "accept": "json"},
            "upstream": "wss://cp01:pw-value-6@csms.example/ocpp",
            "station_count": 3,
        },
    )
    output = stream.getvalue()
    assert "pw-value" not in output
    assert "***" in output
    if fmt == "json":
        (entry,) = json_lines(stream)
        assert entry["password"] == "***"
        assert entry["ClientSecret"] == "***"
        assert entry["headers"] == {"authorization": "***", "accept": "json"}
        assert entry["upstream"] == "wss://cp01:***@csms.example/ocpp"
        assert entry["station_count"] == 3


def test_redact_helpers_hide_secrets() -> None:
    """redact() always gives ***; redact_url() masks only the password part of a URL."""
    assert redact("hunter2") == "***"
    assert redact_url("wss://cp:hunter2@csms:443/ocpp") == "wss://cp:***@csms:443/ocpp"
    assert redact_url("ws://csms:8080/ocpp") == "ws://csms:8080/ocpp"


def test_configuring_twice_does_not_duplicate_lines(stream: io.StringIO) -> None:
    """A second configure_logging replaces the first handler rather than adding another."""
    configure_logging(level="info", fmt="text", stream=stream)
    configure_logging(level="info", fmt="text", stream=stream)
    LOG.info("once")
    assert len(lines(stream)) == 1
    other = io.StringIO()
    configure_logging(level="info", fmt="json", stream=other)
    LOG.info("twice")
    assert len(lines(stream)) == 1
    assert [entry["msg"] for entry in json_lines(other)] == ["twice"]


def test_configure_logging_sets_the_level(stream: io.StringIO) -> None:
    """Records below the configured level are not written."""
    configure_logging(level="warning", fmt="text", stream=stream)
    LOG.info("quiet")
    LOG.warning("loud")
    assert [line.rsplit(" ", 1)[1] for line in lines(stream)] == ["loud"]


def test_configure_logging_rejects_unknown_levels_and_formats() -> None:
    """An unknown level or format is a ValueError, not a silent default."""
    with pytest.raises(ValueError, match="verbose"):
        configure_logging(level="verbose")
    with pytest.raises(ValueError, match="xml"):
        configure_logging(fmt="xml")
