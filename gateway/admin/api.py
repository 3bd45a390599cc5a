"""The admin API and the live view's files, over a :class:`~gateway.admin.fleet.Fleet`.

Layer: admin (imports admin.fleet, routing, session.links and the ops server's request
and response types). :class:`AdminApi` is the :class:`~gateway.ops_http.AdminHandler` the
ops server passes ``/api/`` and ``/admin/`` requests to:

* ``/api/v1/...`` needs ``Authorization: Bearer <admin token>`` (401 otherwise, logged at
  WARNING without the token); the endpoints are described by ``openapi.json`` next to this
  module and served at ``/api/v1/openapi.json``; :data:`ROUTES` lists what is implemented.
* ``/admin/`` serves the live view (``static/``) without the token: the page holds no
  data, and every API call it makes sends the token the operator typed into it.

Without a token the admin API is off: :func:`admin_api` gives None and the ops server
answers 404 under both prefixes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import importlib.resources
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar
from urllib.parse import parse_qs, unquote

from gateway.admin.fleet import ChargerInfo, Fleet, RouteChange
from gateway.ops_http import AdminRequest, AdminResponse
from gateway.routing import Route, rules_to_data
from gateway.session.links import TraceEvent

__all__ = ["API_PREFIX", "ROUTES", "AdminApi", "admin_api", "openapi_document"]

log = logging.getLogger(__name__)
T = TypeVar("T")

API_PREFIX: Final = "/api/v1"
JSON: Final = "application/json"
EVENT_STREAM: Final = "text/event-stream; charset=utf-8"

#: A charge point id as the charger listener accepts it (gateway.transport.server).
STATION_ID: Final = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,48}")
#: A wave's name.
WAVE_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Routes a charger can be listed with ("passthrough": a native 2.0.1 charger).
LISTED_ROUTES: Final = frozenset({"translate", "legacy", "passthrough"})
PROTOCOLS: Final = frozenset({"ocpp1.6", "ocpp2.0.1"})

#: Seconds without a frame after which the trace stream sends an SSE comment, so that
#: proxies keep it open and a client that went away is noticed.
KEEPALIVE_SECONDS: Final = 15.0
#: At most one refusal warning per this many seconds (a wrong token in a loop must not
#: flood the log); the next one tells how many were left out.
_REFUSAL_LOG_INTERVAL: Final = 10.0

_JSON_HEADERS: Final = (("X-Content-Type-Options", "nosniff"),)
_PAGE_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
)
_STATIC: Final = {
    "/admin/": ("index.html", "text/html; charset=utf-8"),
    "/admin/index.html": ("index.html", "text/html; charset=utf-8"),
    "/admin/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/admin/style.css": ("style.css", "text/css; charset=utf-8"),
}


class _BadRequest(Exception):
    """A request the API refuses with 400 and this message."""


def _json(status: int, data: object, *, headers: tuple[tuple[str, str], ...] = ()) -> AdminResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return AdminResponse(status=status, body=body, headers=_JSON_HEADERS + headers)


def _error(
    status: int, message: str, *, headers: tuple[tuple[str, str], ...] = ()
) -> AdminResponse:
    return _json(status, {"error": message}, headers=headers)


def _resource(name: str) -> bytes:
    return importlib.resources.files("gateway.admin").joinpath(name).read_bytes()


def openapi_document() -> dict[str, object]:
    """The OpenAPI 3.1 description of the admin API (``gateway/admin/openapi.json``)."""
    document: dict[str, object] = json.loads(_resource("openapi.json"))
    return document


def charger_data(info: ChargerInfo) -> dict[str, object]:
    return dataclasses.asdict(info)


def change_data(change: RouteChange) -> dict[str, object]:
    return {
        "station_id": change.station_id,
        "route": str(change.route),
        "shadow": change.shadow,
        "applied": change.applied,
    }


# --- request parsing ----------------------------------------------------------------------


def _station(text: str) -> str:
    station_id = unquote(text)
    if STATION_ID.fullmatch(station_id) is None:
        raise _BadRequest(
            "not a charge point id: 1 to 48 characters of A-Z a-z 0-9 * - _ = + | @ ."
        )
    return station_id


def _route(value: object) -> Route:
    if not isinstance(value, str) or value not in {route.value for route in Route}:
        names = " or ".join(repr(route.value) for route in Route)
        raise _BadRequest(f"route must be {names}, not {json.dumps(value)}")
    return Route(value)


def _body(request: AdminRequest, allowed: frozenset[str]) -> dict[str, object]:
    """The JSON object in the body, holding no key but ``allowed``."""
    try:
        data = json.loads(request.body.decode("utf-8")) if request.body.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _BadRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return data


def _shadow(data: Mapping[str, object]) -> bool:
    shadow = data.get("shadow", False)
    if not isinstance(shadow, bool):
        raise _BadRequest("shadow must be true or false")
    return shadow


def _query(request: AdminRequest, allowed: frozenset[str]) -> dict[str, str]:
    try:
        parsed = parse_qs(request.query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise _BadRequest(f"bad query string: {exc}") from None
    unknown = sorted(set(parsed) - allowed)
    if unknown:
        raise _BadRequest(f"unknown query parameter {unknown[0]!r}")
    single: dict[str, str] = {}
    for name, values in parsed.items():
        if len(values) != 1:
            raise _BadRequest(f"query parameter {name!r} given more than once")
        single[name] = values[0]
    return single


async def _refused_as_400(change: Awaitable[T]) -> T:
    """The fleet's answer; a ValueError (a change it refuses, e.g. legacy without a legacy
    upstream) becomes a 400 with its message."""
    try:
        return await change
    except ValueError as exc:
        log.info("admin API: change refused: %s", exc)
        raise _BadRequest(str(exc)) from None


# --- the routes -----------------------------------------------------------------------------

_Handler = Callable[["AdminApi", AdminRequest, dict[str, str]], Awaitable[AdminResponse]]


@dataclass(frozen=True, slots=True)
class _Endpoint:
    method: str
    template: str  # the OpenAPI path template
    handler: _Handler
    pattern: re.Pattern[str]


def _endpoint(method: str, template: str, handler: _Handler) -> _Endpoint:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return _Endpoint(method, template, handler, re.compile(regex))


class AdminApi:
    """The admin API over ``fleet``, guarded by ``token`` (a ``config.Secret`` works: it is
    a ``str``, compared by its text).  An empty token leaves the API off (404 throughout).
    ``clock`` stamps trace events (epoch seconds)."""

    def __init__(
        self,
        fleet: Fleet,
        token: str | None,
        *,
        keepalive: float = KEEPALIVE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fleet = fleet
        # str.encode: the text itself even for a Secret, whose str() hides it.
        self._token = str.encode(token, "utf-8") if token else b""
        self._keepalive = keepalive
        self._clock = clock
        self._openapi = _resource("openapi.json")
        self._static = {
            path: (_resource(f"static/{name}"), kind) for path, (name, kind) in _STATIC.items()
        }
        self._refusals_unlogged = 0
        self._last_refusal_log = -math.inf
        if not self._token:
            log.warning("admin API and live view off: no admin token configured")

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    async def handle(self, request: AdminRequest) -> AdminResponse:
        if not self._token:
            return _error(404, "not found")
        if request.path == "/admin":
            return AdminResponse(
                status=308,
                content_type="text/plain; charset=utf-8",
                headers=(("Location", "/admin/"),),
            )
        if request.path.startswith("/admin/"):
            return self._serve_static(request)
        if not self._authorized(request):
            return _error(
                401,
                "missing or wrong admin token (Authorization: Bearer <token>)",
                headers=(("WWW-Authenticate", 'Bearer realm="ocpp-gateway admin"'),),
            )
        method = "GET" if request.method == "HEAD" else request.method
        allowed: list[str] = []
        for endpoint in _ENDPOINTS:
            match = endpoint.pattern.fullmatch(request.path)
            if match is None:
                continue
            if endpoint.method != method:
                allowed.append(endpoint.method)
                continue
            try:
                return await endpoint.handler(self, request, match.groupdict())
            except _BadRequest as exc:
                return _error(400, str(exc))
        if allowed:
            if "GET" in allowed:
                allowed.append("HEAD")
            return _error(405, "method not allowed", headers=(("Allow", ", ".join(allowed)),))
        return _error(404, "no such endpoint; see /api/v1/openapi.json")

    # --- auth ----------------------------------------------------------------------------

    def _authorized(self, request: AdminRequest) -> bool:
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            self._refused(request, "no bearer token")
            return False
        # Headers arrive decoded as latin-1: back to the bytes the client sent.
        try:
            sent = given.strip().encode("latin-1")
        except UnicodeEncodeError:
            sent = b""
        if not hmac.compare_digest(sent, self._token):
            self._refused(request, "wrong token")
            return False
        return True

    def _refused(self, request: AdminRequest, reason: str) -> None:
        now = time.monotonic()
        if now - self._last_refusal_log < _REFUSAL_LOG_INTERVAL:
            self._refusals_unlogged += 1
            return
        more = self._refusals_unlogged
        self._last_refusal_log, self._refusals_unlogged = now, 0
        log.warning(
            "admin API refused %s %s from %s: %s%s",
            request.method,
            request.path,
            request.peer,
            reason,
            f" (and {more} more refusals not logged)" if more else "",
        )

    # --- the live view's files -----------------------------------------------------------

    def _serve_static(self, request: AdminRequest) -> AdminResponse:
        found = self._static.get(request.path)
        if found is None:
            return AdminResponse(
                status=404, body=b"not found\n", content_type="text/plain; charset=utf-8"
            )
        if request.method not in ("GET", "HEAD"):
            return AdminResponse(
                status=405,
                body=b"method not allowed\n",
                content_type="text/plain; charset=utf-8",
                headers=(("Allow", "GET, HEAD"),),
            )
        body, kind = found
        return AdminResponse(body=body, content_type=kind, headers=_PAGE_HEADERS)

    # --- endpoints -----------------------------------------------------------------------

    async def _chargers(self, request: AdminRequest, _: dict[str, str]) -> AdminResponse:
        query = _query(request, frozenset({"route", "protocol", "q"}))
        route, protocol = query.get("route", ""), query.get("protocol", "")
        text = query.get("q", "").casefold()
        if route and route not in LISTED_ROUTES:
            raise _BadRequest(f"route must be one of {', '.join(sorted(LISTED_ROUTES))}")
        if protocol and protocol not in PROTOCOLS:
            raise _BadRequest(f"protocol must be one of {', '.join(sorted(PROTOCOLS))}")

        def wanted(info: ChargerInfo) -> bool:
            if route and info.route != route:
                return False
            if protocol and info.protocol != protocol:
                return False
            fields = (info.station_id, info.vendor, info.model, info.firmware)
            return not text or any(text in (value or "").casefold() for value in fields)

        chargers = sorted(self._fleet.chargers(), key=lambda info: info.station_id)
        return _json(200, [charger_data(info) for info in chargers if wanted(info)])

    async def _routes(self, request: AdminRequest, _: dict[str, str]) -> AdminResponse:
        _query(request, frozenset())
        rules, default = self._fleet.rules()
        return _json(200, {"rules": rules_to_data(rules), "default": str(default)})

    async def _set_route(self, request: AdminRequest, params: dict[str, str]) -> AdminResponse:
        station_id = _station(params["station_id"])
        data = _body(request, frozenset({"route", "shadow"}))
        if "route" not in data:
            raise _BadRequest("route is required")
        route, shadow = _route(data["route"]), _shadow(data)
        change = await _refused_as_400(self._fleet.set_route(station_id, route, shadow=shadow))
        log.info(
            "admin API: %s routed %s%s (%s)",
            station_id,
            route,
            " with shadow" if shadow else "",
            change.applied,
        )
        return _json(200, change_data(change))

    async def _clear_route(self, request: AdminRequest, params: dict[str, str]) -> AdminResponse:
        station_id = _station(params["station_id"])
        if request.body.strip():
            raise _BadRequest("DELETE takes no body")
        change = await _refused_as_400(self._fleet.clear_route(station_id))
        log.info(
            "admin API: %s route rule cleared: now %s (%s)",
            station_id,
            change.route,
            change.applied,
        )
        return _json(200, change_data(change))

    async def _set_wave(self, request: AdminRequest, params: dict[str, str]) -> AdminResponse:
        name = unquote(params["name"])
        if WAVE_NAME.fullmatch(name) is None:
            raise _BadRequest("not a wave name: 1 to 64 characters of A-Z a-z 0-9 . _ -")
        data = _body(request, frozenset({"percent", "route", "shadow"}))
        percent = data.get("percent")
        if (
            isinstance(percent, bool)
            or not isinstance(percent, (int, float))
            or not 0 <= percent <= 100
        ):
            raise _BadRequest("percent must be a number from 0 to 100")
        route, shadow = _route(data.get("route", Route.TRANSLATE.value)), _shadow(data)
        moved = await _refused_as_400(
            self._fleet.set_wave(name, float(percent), route, shadow=shadow)
        )
        log.info("admin API: wave %s at %g%% to %s: %d chargers move", name, percent, route, moved)
        return _json(200, {"moved": moved})

    async def _trace(self, request: AdminRequest, params: dict[str, str]) -> AdminResponse:
        station_id = _station(params["station_id"])
        _query(request, frozenset())
        headers = (*_JSON_HEADERS, ("X-Accel-Buffering", "no"))
        if request.method == "HEAD":
            return AdminResponse(content_type=EVENT_STREAM, headers=headers)
        return AdminResponse(
            content_type=EVENT_STREAM,
            headers=headers,
            # Subscribed now, before the answer's head goes out: no frame falls in between.
            stream=self._events(station_id, aiter(self._fleet.trace(station_id))),
        )

    async def _openapi_json(self, request: AdminRequest, _: dict[str, str]) -> AdminResponse:
        return AdminResponse(body=self._openapi, headers=_JSON_HEADERS)

    async def _events(
        self, station_id: str, frames: AsyncIterator[TraceEvent]
    ) -> AsyncIterator[bytes]:
        """The station's trace as Server-Sent Events: one ``data:`` line of JSON each
        (``side``, ``direction``, ``text``, ``at``), a comment when idle."""
        waiting: asyncio.Future[TraceEvent] | None = None
        try:
            yield f"retry: 2000\n: trace of {station_id}\n\n".encode()
            while True:
                if waiting is None:
                    waiting = asyncio.ensure_future(anext(frames))
                done, _ = await asyncio.wait({waiting}, timeout=self._keepalive)
                if not done:
                    yield b": keepalive\n\n"
                    continue
                finished, waiting = waiting, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    return
                data = {
                    "side": str(event.side),
                    "direction": event.direction,
                    "text": event.text,
                    "at": self._clock(),
                }
                yield b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"
        finally:
            if waiting is not None:
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()


_ENDPOINTS: Final = (
    _endpoint("GET", f"{API_PREFIX}/chargers", AdminApi._chargers),
    _endpoint("GET", f"{API_PREFIX}/routes", AdminApi._routes),
    _endpoint("PUT", f"{API_PREFIX}/chargers/{{station_id}}/route", AdminApi._set_route),
    _endpoint("DELETE", f"{API_PREFIX}/chargers/{{station_id}}/route", AdminApi._clear_route),
    _endpoint("PUT", f"{API_PREFIX}/waves/{{name}}", AdminApi._set_wave),
    _endpoint("GET", f"{API_PREFIX}/chargers/{{station_id}}/trace", AdminApi._trace),
    _endpoint("GET", f"{API_PREFIX}/openapi.json", AdminApi._openapi_json),
)

#: What the API implements, as (method, OpenAPI path template) pairs.
ROUTES: Final = tuple((endpoint.method, endpoint.template) for endpoint in _ENDPOINTS)


def admin_api(fleet: Fleet, token: str | None) -> AdminApi | None:
    """The admin API for the ops server, or None (off) without a token."""
    if not token:
        return None
    return AdminApi(fleet, token)
