"""The admin API's HTTP layer (gateway.admin.api) on a real ops server on loopback.

The Fleet here is a small in-test implementation (the gateway's own is exercised end to end
by tests/integration/test_admin_view.py and tests/test_route_cli.py); the requests are
real HTTP over sockets: urllib in a thread, or raw asyncio streams where the wire matters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import prometheus_client
import pytest

from gateway.admin.api import ROUTES, AdminApi, admin_api, openapi_document
from gateway.admin.fleet import ChargerInfo, RouteChange
from gateway.ops_http import MAX_ADMIN_BODY_BYTES, OpsServer
from gateway.routing import Route, RouteRule
from gateway.session.links import Side, TraceEvent

HOST = "127.0.0.1"
TOKEN = "t0ken-for-the-admin-API-tests"
NOW = 1_700_000_000.0


def info(station_id: str, **changes: object) -> ChargerInfo:
    base = ChargerInfo(
        station_id=station_id,
        protocol="ocpp1.6",
        route="translate",
        shadow=False,
        vendor="SimVendor",
        model="SimModel",
        firmware="1.0.0",
        connected_since=NOW,
        last_message_at=NOW + 5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class FakeFleet:
    """A Fleet whose chargers and rules the test sets; it records every change."""

    connected: list[ChargerInfo] = field(default_factory=list)
    rule_list: list[RouteRule] = field(default_factory=list)
    default: Route = Route.TRANSLATE
    changes: list[tuple[object, ...]] = field(default_factory=list)
    subscribers: dict[str, list[asyncio.Queue[TraceEvent]]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    unsubscribed: asyncio.Event = field(default_factory=asyncio.Event)
    fail: Exception | None = None
    refusal: str | None = None  # set_route and set_wave raise ValueError(refusal)

    def chargers(self) -> list[ChargerInfo]:
        if self.fail is not None:
            raise self.fail
        return list(self.connected)

    def rules(self) -> tuple[tuple[RouteRule, ...], Route]:
        return tuple(self.rule_list), self.default

    def _applied(self, station_id: str, route: Route, shadow: bool) -> str:
        for charger in self.connected:
            if charger.station_id == station_id:
                same = charger.route == route and charger.shadow == shadow
                return "unchanged" if same else "now"
        return "not_connected"

    async def set_route(self, station_id: str, route: Route, *, shadow: bool) -> RouteChange:
        if self.refusal is not None:
            raise ValueError(self.refusal)
        self.changes.append(("set", station_id, route, shadow))
        applied = self._applied(station_id, route, shadow)
        self.rule_list = [r for r in self.rule_list if r.charger != station_id]
        self.rule_list.insert(0, RouteRule(route=route, shadow=shadow, charger=station_id))
        return RouteChange(station_id, route, shadow, applied)

    async def clear_route(self, station_id: str) -> RouteChange:
        self.changes.append(("clear", station_id))
        self.rule_list = [r for r in self.rule_list if r.charger != station_id]
        applied = self._applied(station_id, self.default, False)
        return RouteChange(station_id, self.default, False, applied)

    async def set_wave(self, name: str, percent: float, route: Route, *, shadow: bool) -> int:
        if self.refusal is not None:
            raise ValueError(self.refusal)
        self.changes.append(("wave", name, percent, route, shadow))
        self.rule_list.append(RouteRule(route=route, shadow=shadow, name=name, percent=percent))
        return round(len(self.connected) * percent / 100)

    async def trace(self, station_id: str) -> AsyncIterator[TraceEvent]:
        queue: asyncio.Queue[TraceEvent] = asyncio.Queue()
        self.subscribers.setdefault(station_id, []).append(queue)
        self.subscribed.set()
        try:
            while True:
                yield await queue.get()
        finally:
            self.subscribers[station_id].remove(queue)
            self.unsubscribed.set()

    def emit(self, event: TraceEvent) -> None:
        for queue in self.subscribers.get(event.station_id, []):
            queue.put_nowait(event)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet(
        connected=[
            info("CP-2", vendor="Alfen", model="Eve", firmware="4.1"),
            info("CP-1"),
            info("NATIVE-1", protocol="ocpp2.0.1", route="passthrough", vendor="Zap"),
            info("OLD-1", route="legacy", shadow=True, last_message_at=None),
        ],
        rule_list=[RouteRule(route=Route.LEGACY, name="old ones", pattern="OLD-*")],
    )


@pytest.fixture
async def server(fleet: FakeFleet) -> AsyncIterator[OpsServer]:
    api = admin_api(fleet, TOKEN)
    assert api is not None
    async with OpsServer(
        host=HOST,
        port=0,
        registry=prometheus_client.CollectorRegistry(),
        readiness=_ready,
        admin=api,
    ) as ops:
        yield ops


async def _ready() -> tuple[bool, str]:
    return True, "ok"


async def request(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = TOKEN,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One real HTTP request with urllib (in a thread)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    prepared = urllib.request.Request(
        f"http://{HOST}:{port}{path}", data=data, method=method, headers=all_headers
    )

    def fetch() -> Reply:
        try:
            with urllib.request.urlopen(prepared, timeout=5) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return Reply(int(response.status), headers, bytes(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                headers = {k.lower(): v for k, v in error.headers.items()}
                return Reply(error.code, headers, error.read())

    return await asyncio.to_thread(fetch)


async def raw_exchange(port: int, raw: bytes) -> Reply:
    """Raw bytes in, the whole answer out (the server closes every connection)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


# --- on, off and auth -------------------------------------------------------------------


async def test_without_a_token_the_admin_api_is_off(
    fleet: FakeFleet, caplog: pytest.LogCaptureFixture
) -> None:
    """No token configured: no handler; every /api and /admin path is 404 (any method),
    the other endpoints work, and the server says once that the admin API is off."""
    assert admin_api(fleet, None) is None
    assert admin_api(fleet, "") is None
    caplog.set_level(logging.INFO, logger="gateway.ops_http")
    registry = prometheus_client.CollectorRegistry()
    async with OpsServer(host=HOST, port=0, registry=registry, readiness=_ready) as ops:
        for path in ("/api/v1/chargers", "/api/v1/openapi.json", "/admin/", "/admin", "/api"):
            assert (await request(ops.port, "GET", path)).status == 404, path
        put = await request(ops.port, "PUT", "/api/v1/chargers/CP-1/route", body={"route": "x"})
        assert put.status == 404
        assert (await request(ops.port, "GET", "/healthz")).status == 200
    off = [r for r in caplog.records if "admin API" in r.getMessage() and "off" in r.getMessage()]
    assert len(off) == 1
    assert fleet.changes == []


async def test_an_admin_api_built_with_an_empty_token_answers_404(fleet: FakeFleet) -> None:
    """AdminApi given an empty token (however it got one) opens nothing."""
    async with OpsServer(
        host=HOST,
        port=0,
        registry=prometheus_client.CollectorRegistry(),
        readiness=_ready,
        admin=AdminApi(fleet, ""),
    ) as ops:
        assert (await request(ops.port, "GET", "/api/v1/chargers", token="")).status == 404
        assert (await request(ops.port, "GET", "/admin/")).status == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        "Bearer ",
        f"Bearer {TOKEN}, Bearer {TOKEN}",
    ],
)
async def test_requests_without_the_right_token_are_refused_401(
    server: OpsServer,
    fleet: FakeFleet,
    authorization: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """401 with WWW-Authenticate: Bearer for a missing, wrong or non-bearer token; nothing
    is changed, and the refusal is logged at WARNING without any token in it."""
    caplog.set_level(logging.WARNING, logger="gateway.admin.api")
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in (
        ("GET", "/api/v1/chargers", None),
        ("PUT", "/api/v1/chargers/CP-1/route", {"route": "legacy"}),
        ("GET", "/api/v1/openapi.json", None),
        ("GET", "/api/v1/no-such-thing", None),
    ):
        reply = await request(server.port, method, path, token=None, body=body, headers=headers)
        assert reply.status == 401, (method, path)
        assert reply.headers["www-authenticate"].startswith("Bearer")
        assert "token" in str(reply.json())
    assert fleet.changes == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "a refusal is logged"
    assert all(
        TOKEN not in r.getMessage() and "wrong-token" not in r.getMessage() for r in warnings
    )


async def test_the_right_token_is_accepted_with_any_scheme_case(server: OpsServer) -> None:
    reply = await request(
        server.port,
        "GET",
        "/api/v1/chargers",
        token=None,
        headers={"Authorization": f"bearer {TOKEN}"},
    )
    assert reply.status == 200


# --- endpoints -------------------------------------------------------------------------


async def test_chargers_lists_every_connected_charger_sorted(server: OpsServer) -> None:
    reply = await request(server.port, "GET", "/api/v1/chargers")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    chargers = reply.json()
    assert isinstance(chargers, list)
    assert [c["station_id"] for c in chargers] == ["CP-1", "CP-2", "NATIVE-1", "OLD-1"]
    assert chargers[1] == {
        "station_id": "CP-2",
        "protocol": "ocpp1.6",
        "route": "translate",
        "shadow": False,
        "vendor": "Alfen",
        "model": "Eve",
        "firmware": "4.1",
        "connected_since": NOW,
        "last_message_at": NOW + 5,
        "pending_route": None,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("route=legacy", ["OLD-1"]),
        ("route=passthrough", ["NATIVE-1"]),
        ("protocol=ocpp2.0.1", ["NATIVE-1"]),
        ("protocol=ocpp1.6&route=translate", ["CP-1", "CP-2"]),
        ("q=alfen", ["CP-2"]),
        ("q=cp-", ["CP-1", "CP-2"]),
        ("q=4.1", ["CP-2"]),
        ("q=", ["CP-1", "CP-2", "NATIVE-1", "OLD-1"]),
        ("q=nothing-matches", []),
    ],
)
async def test_chargers_filters(server: OpsServer, query: str, expected: list[str]) -> None:
    reply = await request(server.port, "GET", f"/api/v1/chargers?{query}")
    assert reply.status == 200
    assert [c["station_id"] for c in reply.json()] == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("route=teleport", "route must be one of"),
        ("protocol=ocpp1.5", "protocol must be one of"),
        ("colour=red", "unknown query parameter 'colour'"),
        ("route=legacy&route=translate", "more than once"),
    ],
)
async def test_chargers_refuses_bad_filters_400(
    server: OpsServer, query: str, message: str
) -> None:
    reply = await request(server.port, "GET", f"/api/v1/chargers?{query}")
    assert reply.status == 400
    assert message in reply.json()["error"]  # type: ignore[index]


async def test_routes_gives_the_rules_and_the_default(server: OpsServer) -> None:
    reply = await request(server.port, "GET", "/api/v1/routes")
    assert reply.status == 200
    assert reply.json() == {
        "rules": [{"route": "legacy", "name": "old ones", "pattern": "OLD-*"}],
        "default": "translate",
    }


async def test_put_route_routes_one_charger(server: OpsServer, fleet: FakeFleet) -> None:
    reply = await request(
        server.port, "PUT", "/api/v1/chargers/CP-1/route", body={"route": "legacy", "shadow": True}
    )
    assert reply.status == 200
    assert reply.json() == {
        "station_id": "CP-1",
        "route": "legacy",
        "shadow": True,
        "applied": "now",
    }
    assert fleet.changes == [("set", "CP-1", Route.LEGACY, True)]
    absent = await request(
        server.port, "PUT", "/api/v1/chargers/GONE-9/route", body={"route": "translate"}
    )
    assert absent.json() == {
        "station_id": "GONE-9",
        "route": "translate",
        "shadow": False,
        "applied": "not_connected",
    }
    rules = (await request(server.port, "GET", "/api/v1/routes")).json()
    assert {"route": "legacy", "shadow": True, "charger": "CP-1"} in rules[  # type: ignore[index]
        "rules"
    ]


async def test_a_percent_encoded_station_id_is_decoded(server: OpsServer, fleet: FakeFleet) -> None:
    reply = await request(
        server.port, "PUT", "/api/v1/chargers/A%40B.1/route", body={"route": "legacy"}
    )
    assert reply.status == 200
    assert fleet.changes == [("set", "A@B.1", Route.LEGACY, False)]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/api/v1/chargers/CP-1/route",
            {"route": "teleport"},
            "route must be 'translate' or 'legacy'",
        ),
        ("/api/v1/chargers/CP-1/route", {"route": "passthrough"}, "route must be"),
        ("/api/v1/chargers/CP-1/route", {"route": None}, "route must be"),
        ("/api/v1/chargers/CP-1/route", {}, "route is required"),
        ("/api/v1/chargers/CP-1/route", {"route": "legacy", "shadow": "yes"}, "shadow must be"),
        ("/api/v1/chargers/CP-1/route", {"route": "legacy", "colour": 1}, "unknown field 'colour'"),
        ("/api/v1/chargers/CP-1/route", ["legacy"], "must be a JSON object"),
        ("/api/v1/chargers/CP-1/route", b"{not json", "not JSON"),
        ("/api/v1/chargers/CP-1/route", b"\xff\xfe", "not JSON"),
        ("/api/v1/chargers/CP%2F1/route", {"route": "legacy"}, "not a charge point id"),
        ("/api/v1/chargers/" + "x" * 49 + "/route", {"route": "legacy"}, "not a charge point id"),
        ("/api/v1/waves/w1", {"percent": 101}, "percent must be a number from 0 to 100"),
        ("/api/v1/waves/w1", {"percent": -1}, "percent must be"),
        ("/api/v1/waves/w1", {"percent": "25"}, "percent must be"),
        ("/api/v1/waves/w1", {"percent": True}, "percent must be"),
        ("/api/v1/waves/w1", {}, "percent must be"),
        ("/api/v1/waves/w1", {"percent": 10, "route": "teleport"}, "route must be"),
        ("/api/v1/waves/w1", {"percent": 10, "shadow": 1}, "shadow must be"),
        ("/api/v1/waves/w1", {"percent": 10, "rate": 2}, "unknown field 'rate'"),
        ("/api/v1/waves/bad%20name", {"percent": 10}, "not a wave name"),
    ],
)
async def test_validation_errors_are_400_with_a_message(
    server: OpsServer, fleet: FakeFleet, path: str, body: object, message: str
) -> None:
    reply = await request(server.port, "PUT", path, body=body)
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()
    assert isinstance(error, dict) and set(error) == {"error"}
    assert message in error["error"]
    assert fleet.changes == []


async def test_a_change_the_fleet_refuses_is_400_with_its_reason(
    server: OpsServer, fleet: FakeFleet
) -> None:
    """E.g. legacy without a legacy upstream: the fleet's ValueError, as a 400."""
    fleet.refusal = "route legacy needs legacy_upstream (--legacy-upstream)"
    for path, body in (
        ("/api/v1/chargers/CP-1/route", {"route": "legacy"}),
        ("/api/v1/waves/w1", {"percent": 10, "route": "legacy"}),
    ):
        reply = await request(server.port, "PUT", path, body=body)
        assert reply.status == 400
        assert reply.json() == {"error": fleet.refusal}


async def test_delete_route_clears_the_chargers_rule(server: OpsServer, fleet: FakeFleet) -> None:
    await request(server.port, "PUT", "/api/v1/chargers/CP-1/route", body={"route": "legacy"})
    reply = await request(server.port, "DELETE", "/api/v1/chargers/CP-1/route")
    assert reply.status == 200
    assert reply.json() == {
        "station_id": "CP-1",
        "route": "translate",
        "shadow": False,
        "applied": "unchanged",
    }
    assert fleet.changes[-1] == ("clear", "CP-1")
    refused = await request(server.port, "DELETE", "/api/v1/chargers/CP-1/route", body={"x": 1})
    assert refused.status == 400


async def test_put_wave_answers_how_many_chargers_move(server: OpsServer, fleet: FakeFleet) -> None:
    reply = await request(server.port, "PUT", "/api/v1/waves/wave-1", body={"percent": 50})
    assert reply.status == 200
    assert reply.json() == {"moved": 2}
    assert fleet.changes == [("wave", "wave-1", 50.0, Route.TRANSLATE, False)]
    reply = await request(
        server.port,
        "PUT",
        "/api/v1/waves/back",
        body={"percent": 12.5, "route": "legacy", "shadow": True},
    )
    assert reply.json() == {"moved": 0}
    assert fleet.changes[-1] == ("wave", "back", 12.5, Route.LEGACY, True)


async def test_head_answers_headers_only(server: OpsServer) -> None:
    head = f"HEAD /api/v1/chargers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    reply = await raw_exchange(server.port, (head + "\r\n").encode())
    assert reply.status == 200
    assert int(reply.headers["content-length"]) > 2
    assert reply.body == b""


async def test_unknown_api_paths_are_404_json(server: OpsServer) -> None:
    reply = await request(server.port, "GET", "/api/v1/nothing")
    assert reply.status == 404
    assert "openapi.json" in reply.json()["error"]  # type: ignore[index]
    assert (await request(server.port, "GET", "/api/v2/chargers")).status == 404


async def test_a_failing_fleet_is_a_500_and_the_server_lives_on(
    server: OpsServer, fleet: FakeFleet, caplog: pytest.LogCaptureFixture
) -> None:
    fleet.fail = RuntimeError("boom")
    with caplog.at_level(logging.ERROR, logger="gateway.ops_http"):
        assert (await request(server.port, "GET", "/api/v1/chargers")).status == 500
    fleet.fail = None
    assert (await request(server.port, "GET", "/api/v1/chargers")).status == 200
    assert (await request(server.port, "GET", "/healthz")).status == 200


# --- wire limits ---------------------------------------------------------------------


async def test_bodies_beyond_64_kib_are_413(server: OpsServer, fleet: FakeFleet) -> None:
    """A declared body over the limit is refused before it is read; one at the limit is read."""
    head = (
        f"PUT /api/v1/chargers/CP-1/route HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_ADMIN_BODY_BYTES + 1}\r\n\r\n"
    )
    reply = await raw_exchange(server.port, head.encode())
    assert reply.status == 413
    big = {"route": "legacy", "shadow": False}
    text = json.dumps(big).encode()
    padded = text[:-1] + b" " * (MAX_ADMIN_BODY_BYTES - len(text)) + b"}"
    assert len(padded) == MAX_ADMIN_BODY_BYTES
    reply = await request(server.port, "PUT", "/api/v1/chargers/CP-1/route", body=padded)
    assert reply.status == 200
    too_big = padded + b" "
    reply = await request(server.port, "PUT", "/api/v1/chargers/CP-1/route", body=too_big)
    assert reply.status == 413
    assert fleet.changes == [("set", "CP-1", Route.LEGACY, False)]


async def test_chunked_bodies_are_refused_411(server: OpsServer) -> None:
    raw = (
        f"PUT /api/v1/waves/w HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert (await raw_exchange(server.port, raw.encode())).status == 411


async def test_methods_not_allowed_are_405(server: OpsServer) -> None:
    """A known path with the wrong method: 405 naming the allowed ones; a method the admin
    API never takes: 405 from the server; the ops endpoints stay GET and HEAD only."""
    reply = await request(server.port, "POST", "/api/v1/chargers", body={})
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD"
    reply = await request(server.port, "GET", "/api/v1/chargers/CP-1/route")
    assert reply.status == 405
    assert reply.headers["allow"] == "PUT, DELETE"
    reply = await request(server.port, "DELETE", "/api/v1/waves/w1")
    assert reply.status == 405
    assert reply.headers["allow"] == "PUT"
    reply = await request(server.port, "PATCH", "/api/v1/chargers", body={})
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD, POST, PUT, DELETE"
    reply = await request(server.port, "PUT", "/metrics", body={"a": 1})
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD"
    reply = await request(server.port, "POST", "/admin/", token=None, body=b"x")
    assert reply.status == 405


# --- the live view's files -------------------------------------------------------------


async def test_the_live_view_is_served_without_the_token(server: OpsServer) -> None:
    page = await request(server.port, "GET", "/admin/", token=None)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script src="app.js"' in page.body
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = await request(server.port, "GET", "/admin/app.js", token=None)
    assert script.status == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"sessionStorage" in script.body
    style = await request(server.port, "GET", "/admin/style.css", token=None)
    assert style.headers["content-type"].startswith("text/css")
    assert (
        await request(server.port, "GET", "/admin/../gateway/config.py", token=None)
    ).status == 404
    assert (await request(server.port, "GET", "/admin/secret.txt", token=None)).status == 404
    moved = await raw_exchange(server.port, b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert moved.status == 308
    assert moved.headers["location"] == "/admin/"


def test_the_live_view_needs_nothing_from_outside() -> None:
    """No CDN or other external URL in the page: it works offline."""
    import importlib.resources  # noqa: PLC0415

    static = importlib.resources.files("gateway.admin").joinpath("static")
    for name in ("index.html", "app.js", "style.css"):
        text = static.joinpath(name).read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


# --- the trace stream ------------------------------------------------------------------


async def open_trace(
    port: int, station_id: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET /api/v1/chargers/{station_id}/trace HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    return reader, writer, head.decode("latin-1")


async def next_event(reader: asyncio.StreamReader) -> str:
    """The next SSE block (comments included), without its blank line."""
    block = await asyncio.wait_for(reader.readuntil(b"\n\n"), timeout=5)
    return block.decode()[:-2]


async def test_the_trace_streams_events_in_order_as_sse(
    server: OpsServer, fleet: FakeFleet
) -> None:
    """Every frame of the station, in order, as one JSON data line each; other stations'
    frames are not in it; closing the connection ends the subscription."""
    reader, writer, head = await open_trace(server.port, "CP-1")
    try:
        assert head.startswith("HTTP/1.1 200")
        assert "content-type: text/event-stream" in head.lower()
        assert "content-length" not in head.lower()
        opening = await next_event(reader)
        assert opening.startswith("retry: ")
        await asyncio.wait_for(fleet.subscribed.wait(), timeout=5)
        frames = [
            (Side.CHARGER, "in", '[2,"m1","BootNotification",{"chargePointVendor":"V"}]'),
            (Side.CSMS, "out", '[2,"g1","BootNotification",{"chargingStation":{}}]'),
            (Side.CSMS, "in", '[3,"g1",{"status":"Accepted"}]'),
            (Side.CHARGER, "out", '[3,"m1",{"status":"Accepted"}]'),
        ]
        fleet.emit(TraceEvent("CP-2", Side.CHARGER, "in", '[2,"x","Heartbeat",{}]'))
        for side, direction, text in frames:
            fleet.emit(TraceEvent("CP-1", side, direction, text))
        received = []
        for _ in frames:
            block = await next_event(reader)
            assert block.startswith("data: ") and "\n" not in block
            received.append(json.loads(block.removeprefix("data: ")))
        assert [(e["side"], e["direction"], e["text"]) for e in received] == [
            (str(side), direction, text) for side, direction, text in frames
        ]
        assert all(isinstance(e["at"], float) for e in received)
    finally:
        writer.close()
        await writer.wait_closed()
    await asyncio.wait_for(fleet.unsubscribed.wait(), timeout=5)
    assert fleet.subscribers["CP-1"] == []


async def test_an_idle_trace_sends_keepalive_comments(fleet: FakeFleet) -> None:
    api = AdminApi(fleet, TOKEN, keepalive=0.05)
    registry = prometheus_client.CollectorRegistry()
    async with OpsServer(host=HOST, port=0, registry=registry, readiness=_ready, admin=api) as ops:
        reader, writer, _ = await open_trace(ops.port, "CP-1")
        try:
            await next_event(reader)
            assert await next_event(reader) == ": keepalive"
            fleet.emit(TraceEvent("CP-1", Side.CHARGER, "in", "[]"))
            blocks = [await next_event(reader) for _ in range(3)]
            assert any(block.startswith("data: ") for block in blocks)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_the_trace_outlives_the_request_timeout_and_stop_ends_it(fleet: FakeFleet) -> None:
    """A stream is not cut by request_timeout; stopping the server ends it promptly."""
    api = AdminApi(fleet, TOKEN)
    registry = prometheus_client.CollectorRegistry()
    ops = OpsServer(
        host=HOST, port=0, registry=registry, readiness=_ready, admin=api, request_timeout=0.2
    )
    await ops.start()
    reader, writer, _ = await open_trace(ops.port, "CP-1")
    try:
        await next_event(reader)
        await asyncio.sleep(0.4)  # past the request timeout
        fleet.emit(TraceEvent("CP-1", Side.CSMS, "in", '[3,"a",{}]'))
        assert (await next_event(reader)).startswith("data: ")
        await asyncio.wait_for(ops.stop(), timeout=5)
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    finally:
        writer.close()
        await writer.wait_closed()
    assert fleet.unsubscribed.is_set()


async def test_a_trace_of_an_invalid_station_id_is_400(server: OpsServer) -> None:
    assert (await request(server.port, "GET", "/api/v1/chargers/a%2Fb/trace")).status == 400


# --- OpenAPI ---------------------------------------------------------------------------


async def test_openapi_describes_exactly_the_implemented_routes(server: OpsServer) -> None:
    """Every implemented (method, path) is in the OpenAPI document and vice versa; it is
    OpenAPI 3.1 with the bearer scheme required everywhere, and every operation documents
    its 401."""
    reply = await request(server.port, "GET", "/api/v1/openapi.json")
    assert reply.status == 200
    document = reply.json()
    assert document == openapi_document()
    assert isinstance(document, dict)
    assert document["openapi"].startswith("3.1")
    described = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    }
    assert described == set(ROUTES)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearerAuth": []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert "401" in operation["responses"], (method, path)
            assert "200" in operation["responses"], (method, path)
            for parameter in item.get("parameters", []) + operation.get("parameters", []):
                if "$ref" not in parameter and parameter["in"] == "path":
                    assert f"{{{parameter['name']}}}" in path


def test_every_schema_reference_in_openapi_resolves() -> None:
    document = openapi_document()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(document):
        target: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]
