"""Fuzzing a real gateway over loopback websockets: arbitrary frames and schema-shaped
payloads from a 1.6 charger, a native 2.0.1 charger and the 2.0.1 CSMS.

Each test runs one gateway for all its Hypothesis examples; every example is a batch of
inputs sent one at a time while a well-behaved 1.6 charger on another station id keeps
doing Heartbeat and MeterValues round trips (each must get a CALLRESULT). What the
examples show:

* ``test_arbitrary_frames_from_a_1_6_charger_*``: any frame gets exactly the reaction
  OCPP-J 1.6 asks for (a well-formed CALLERROR with a 1.6 code for a CALL or an unknown
  message type whose id is readable, nothing for an answer or an unreadable id), or the
  connection is closed with the close code RFC 6455 gives the fault (1009 too big, 1007
  not UTF-8); afterwards the same station connects again and boots.
* ``test_schema_shaped_payloads_from_a_1_6_charger_*``: nearly valid requests of every
  charger-initiated 1.6 action get a CALLRESULT valid against the 1.6 response schema or
  a 1.6 CALLERROR, and the validating CsmsSim receives nothing invalid.
* ``test_a_native_2_0_1_charger_*``: pass-through forwards nothing invalid upstream
  except, by design, well-formed answers (CALLRESULT/CALLERROR) whose content it does
  not check; every gateway-made answer is a well-formed 2.0.1 CALLERROR.
* ``test_arbitrary_and_schema_shaped_csms_calls_*``: the CSMS's frames and nearly
  valid 2.0.1 requests get a schema-valid CALLRESULT or a 2.0.1 CALLERROR, and the
  validating 1.6 ChargerSim receives nothing invalid.

Both peers always answer validly, so an InternalError from the gateway means it failed
(an exception only its last-resort guard caught, or a translation validate_outbound
stopped): it fails the test. The bugs this fuzzing found have regression tests at the end
of the file (and in ``tests/unit/test_fuzz_frames.py``).

Strategies and the oracle's building blocks come from ``tests/unit/test_fuzz_frames.py``.
Hypothesis runs derandomized and without an example database (reproducible in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway import schemas
from gateway.app import Gateway
from gateway.errors import GatewayError
from gateway.ocppj import Payload, Version
from gateway.schemas import Kind
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived, default_validator
from tests.unit.test_fuzz_frames import (
    EDGE_DATE_TIMES,
    JSON_VALUES,
    OVERFLOWING_DATE_TIMES,
    V16_CODES,
    V201_CODES,
    frame_texts,
    from_schema,
    readable_id,
    well_formed_frames,
)

from .helpers import RawCsms, charger_url_of, connect_native

pytestmark = pytest.mark.integration

#: Bounded, derandomized, database-free. Function-scoped fixtures (one gateway, its
#: peers) are shared by all examples of a test on purpose: state accumulates as in a
#: long-running gateway.
FUZZ: Final = settings(
    max_examples=75,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

MAX_FRAME: Final = 65536  # max_frame_bytes of the frame-fuzzing gateways
WAIT: Final = 10.0  # seconds any single answer may take
PACE: Final = 0.05  # seconds between the bystander's rounds of two CALLs: 40 frames/s
NOT_UTF8: Final = 1007  # RFC 6455 close codes
TOO_BIG: Final = 1009

#: Charger-initiated 1.6 actions (the security extension's included: the gateway routes them).
CHARGER_ACTIONS: Final = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "StartTransaction",
    "StopTransaction",
    "Authorize",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "SecurityEventNotification",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
    "LogStatusNotification",
)
#: CSMS-initiated 2.0.1 actions with a 1.6 translation (or an answer of the gateway's own).
CSMS_ACTIONS: Final = (
    "RequestStartTransaction",
    "RequestStopTransaction",
    "GetTransactionStatus",
    "SetVariables",
    "GetVariables",
    "GetBaseReport",
    "GetReport",
    "Reset",
    "ChangeAvailability",
    "UnlockConnector",
    "TriggerMessage",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetChargingProfiles",
    "GetCompositeSchedule",
    "DataTransfer",
    "ClearCache",
    "SendLocalList",
    "GetLocalListVersion",
    "ReserveNow",
    "CancelReservation",
    "UpdateFirmware",
    "GetLog",
    "CertificateSigned",
    "InstallCertificate",
    "DeleteCertificate",
    "GetInstalledCertificateIds",
    "SetMonitoringLevel",
    "CostUpdated",
)
#: Station-initiated 2.0.1 actions a native charger sends.
NATIVE_ACTIONS: Final = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "TransactionEvent",
    "MeterValues",
    "Authorize",
    "NotifyEvent",
    "DataTransfer",
    "SecurityEventNotification",
    "FirmwareStatusNotification",
)


# =========================================================================== mutations

#: Values that break a payload: wrong JSON types, integers out of every range (beyond 64
#: bits orjson reads a float), huge and empty strings, invalid dateTimes, nested junk.
#: (No NaN or Infinity: the sims write JSON with the stdlib, which would send a token
#: that is not JSON at all; the frame tests cover those.)
BREAKERS: Final = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            -1,
            0,
            2**31,
            2**63,
            2**64,
            2**70,
            -(2**63) - 1,
            1.5,
            1e308,
            -0.0,
            True,
            None,
            "",
            "x" * 5000,
            "\U0001f50c" * 600,
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-05-01T11:59:58",
            "2024-05-01 11:59:58Z",
            *EDGE_DATE_TIMES,
            *OVERFLOWING_DATE_TIMES,
            {},
            [],
            [[[[[[[[[[[]]]]]]]]]]],
            {"a": {"a": {"a": {"a": {"a": {"a": {}}}}}}},
            list(range(300)),
        ]
    ),
)


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a member of ``value`` (keys of objects, indexes of arrays)."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        for key, member in value.items():
            found.append((*prefix, key))
            found += _paths(member, (*prefix, key))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found.append((*prefix, index))
            found += _paths(member, (*prefix, index))
    return found


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def nearly_valid(draw: st.DrawFn, valid: st.SearchStrategy[Payload]) -> Payload:
    """A schema-valid payload with 0 to 3 mutations: a member replaced by a breaker,
    dropped, or a key added (objects only)."""
    payload = copy.deepcopy(draw(valid))
    mutations = draw(st.sampled_from([0, 0, 1, 1, 2, 3]))
    for _ in range(mutations):
        paths = _paths(payload)
        operation = draw(st.sampled_from(["replace", "drop", "add"]))
        if operation == "add" or not paths:
            containers = [()] + [p for p in paths if isinstance(_at(payload, p), dict)]
            target = _at(payload, draw(st.sampled_from(containers)))
            target[draw(st.text(max_size=12))] = draw(BREAKERS)
            continue
        path = draw(st.sampled_from(paths))
        parent = _at(payload, path[:-1])
        if operation == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(BREAKERS)
    return payload


def schema_shaped(
    version: Version, actions: Sequence[str]
) -> st.SearchStrategy[tuple[str, Payload]]:
    """(action, nearly valid request payload) for one of ``actions``."""
    return st.sampled_from(actions).flatmap(
        lambda action: st.tuples(
            st.just(action), nearly_valid(from_schema(version, action, Kind.REQUEST))
        )
    )


def check_internal_error(refused: CallErrorReceived, action: str, payload: Payload) -> None:
    """A CALLERROR from the gateway for a fuzzed CALL is never InternalError: both peers
    answer validly, so one would mean the gateway failed (an exception its last-resort
    guard caught, or an invalid translation that validate_outbound stopped)."""
    event(f"CALLERROR {refused.code}")
    assert refused.code != "InternalError", (
        f"InternalError for {action} {json.dumps(payload)[:2000]}: {refused.description}"
    )


# =========================================================================== raw frames


@dataclass(frozen=True)
class Fuzz:
    """One websocket message: ``text`` (a str), ``binary`` (bytes), or ``raw-text`` (bytes
    sent as a text frame, which may be invalid UTF-8)."""

    data: str | bytes
    opcode: Literal["text", "binary", "raw-text"] = "text"

    def __repr__(self) -> str:
        shown = self.data if len(self.data) <= 300 else self.data[:300]
        return f"Fuzz({shown!r}{'...' if len(self.data) > 300 else ''}, {self.opcode!r})"


SPECIAL_FRAMES: Final = (
    Fuzz(b'[2,"bad-utf8","Heartbeat",{"x":"\xff\xfe"}]', "raw-text"),
    Fuzz("[" * 40000 + "]" * 40000),  # 80 kB: over max_frame_bytes
    Fuzz('[2,"big","DataTransfer",{"vendorId":"v","data":"' + "x" * MAX_FRAME + '"}]'),
    Fuzz(b'[2,"bin","Heartbeat",{}]', "binary"),
    Fuzz(b'[2,"bin-\xff","Heartbeat",{}]', "binary"),
    Fuzz(b"\x00\x01\x02\xff", "binary"),
    Fuzz('[3,"nobody-asked",{}]'),
    Fuzz('[4,"nobody-asked","GenericError","",{}]'),
    Fuzz('[2,"' + "9" * 5000 + '","Heartbeat",{}]'),
    Fuzz('[2,"n","Heartbeat",{"a":1e308,"b":-1e308,"c":1e-400}]'),
    Fuzz('[2,"inf","Heartbeat",{"a":1e400}]'),
    Fuzz('[2,"nan","Heartbeat",{"a":NaN}]'),
    Fuzz('[2,"deep","Heartbeat",' + "[" * 1000 + "]" * 1000 + "]"),
    Fuzz('[2,"deeper","Heartbeat",' + "[" * 1100 + "]" * 1100 + "]"),
    Fuzz(""),
    Fuzz(" "),
    Fuzz("null"),
    Fuzz("[]"),
    Fuzz('[2,"\U0001f50c\u200b\u0000","Heartbeat",{}]'),
    Fuzz('[2,"dup","Heartbeat",{},{}]'),
    Fuzz('[2,"e","",{}]'),
    Fuzz('[2.0,"float-type","Heartbeat",{}]'),
    Fuzz('[true,"bool-type","Heartbeat",{}]'),
    Fuzz('[5,"t5",{}]'),
)
_SPECIAL_FRAMES: Final = st.sampled_from(SPECIAL_FRAMES)


def fuzz_frames() -> st.SearchStrategy[Fuzz]:
    """Arbitrary websocket messages a broken or hostile peer could send."""
    texts = frame_texts() | well_formed_frames() | st.text(max_size=50)
    return st.one_of(
        texts.map(Fuzz),
        texts.map(lambda text: Fuzz(text.encode(), "binary")),
        st.binary(max_size=40).map(lambda data: Fuzz(data, "binary")),
        _SPECIAL_FRAMES,
        _SPECIAL_FRAMES,
    )


@dataclass(frozen=True)
class Expected:
    """The reaction OCPP-J asks of the gateway to one frame.

    ``answer``: "none", "error" (a CALLERROR, ``code`` if one is required) or "any"
    (a CALL: a CALLRESULT or a CALLERROR). ``unique_id``: the id it must carry.
    ``close``: the close code instead, for frames the websocket layer refuses.
    """

    answer: Literal["none", "error", "any", "forward"]
    unique_id: str | None = None
    code: str | None = None
    close: int | None = None


def decoded(fuzz: Fuzz) -> tuple[bool, object]:
    """(is JSON, value) as the gateway reads the message: a binary one as UTF-8 with
    replacement characters (transport/server.py), JSON as its parser accepts it (orjson:
    RFC 8259 leaves NaN, numbers beyond a double and nesting depth to the parser)."""
    text = fuzz.data if isinstance(fuzz.data, str) else fuzz.data.decode("utf-8", "replace")
    try:
        return True, orjson.loads(text)
    except orjson.JSONDecodeError:
        return False, None


def expected_from_translating(fuzz: Fuzz) -> Expected:
    """OCPP-J 1.6 §4: a CALL or unknown message type with a readable id is answered
    (unknown types NotImplemented, the 1.6 spelling of MessageTypeNotSupported); an
    answer, or a message without a readable id, is not (1.6 has no id-less CALLERROR)."""
    size = len(fuzz.data if isinstance(fuzz.data, bytes) else fuzz.data.encode())
    if size > MAX_FRAME:
        return Expected("none", close=TOO_BIG)
    if fuzz.opcode == "raw-text" and isinstance(fuzz.data, bytes):
        try:
            fuzz.data.decode("utf-8")
        except UnicodeDecodeError:
            return Expected("none", close=NOT_UTF8)
    is_json, value = decoded(fuzz)
    unique_id = readable_id(value) if is_json else None
    if unique_id is None:
        return Expected("none")
    assert isinstance(value, list)
    kind = value[0]
    if type(kind) is int and kind in (3, 4):
        return Expected("none")
    if type(kind) is int and kind == 2:
        return Expected("any", unique_id)
    return Expected("error", unique_id, "NotImplemented")


@dataclass
class Exchange:
    """What came back for one fuzz message before the sync CALL's answer."""

    answers: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # CALLs the gateway sent meanwhile
    close: tuple[int, str] | None = None


class RawStation:
    """A raw websocket station that sends arbitrary messages, each followed by a sync
    Heartbeat CALL: the gateway handles a station's CALLs in order and answers broken
    frames at once, so whatever it answers a message arrives before the sync answer."""

    def __init__(self, url: str, station_id: str, subprotocol: str) -> None:
        self.url, self.station_id, self.subprotocol = url, station_id, subprotocol
        self.ws: ClientConnection | None = None
        self._syncs = 0

    async def open(self) -> ClientConnection:
        ws: ClientConnection = await connect_native(self.url, self.station_id, self.subprotocol)
        self.ws = ws
        return ws

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def open_and_sync(self) -> None:
        """Connect and wait for one Heartbeat round trip through the CSMS: the session and
        its upstream link are then up. (Closing a station before its upstream link is
        open leaves the station locked out: see the race xfails at the end.)"""
        await self.open()
        result = await self.exchange(Fuzz("[]"))
        assert result.close is None

    async def boot_1_6(self) -> None:
        ws = await self.open()
        boot = {"chargePointVendor": "Fuzz", "chargePointModel": "Raw"}
        await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
        async with asyncio.timeout(WAIT):
            while True:
                frame = json.loads(await ws.recv())
                if frame[:2] == [3, "boot"]:
                    assert frame[2]["status"] == "Accepted"
                    return

    async def exchange(self, fuzz: Fuzz) -> Exchange:
        assert self.ws is not None
        ws, result = self.ws, Exchange()
        self._syncs += 1
        sync_id = f"sync-{self._syncs}"
        try:
            if fuzz.opcode == "raw-text":
                await ws.send(fuzz.data, text=True)
            else:
                await ws.send(fuzz.data)
            await ws.send(json.dumps([2, sync_id, "Heartbeat", {}]))
            async with asyncio.timeout(WAIT):
                while True:
                    message = await ws.recv()
                    assert isinstance(message, str), f"binary frame from the gateway: {message!r}"
                    frame = json.loads(message)
                    if frame[:2] == [3, sync_id]:
                        assert "currentTime" in frame[2]
                        return result
                    if frame[0] == 2:  # a CALL of the gateway's own: refuse it politely
                        result.calls.append(message)
                        await ws.send(json.dumps([4, frame[1], "NotImplemented", "fuzz", {}]))
                    else:
                        result.answers.append(message)
        except ConnectionClosed:
            received = ws.protocol.close_rcvd
            result.close = (received.code, received.reason) if received else (1006, "")
            self.ws = None
            return result


def check_call_error(text: str, unique_id: str, codes: frozenset[str]) -> list[Any]:
    frame = json.loads(text)
    assert isinstance(frame, list)
    assert len(frame) == 5, text
    assert frame[:2] == [4, unique_id], text
    assert frame[2] in codes, text
    assert isinstance(frame[3], str)
    assert isinstance(frame[4], dict)
    return frame


# =========================================================================== bystander


async def keep_busy(charger: ChargerSim, stop: asyncio.Event) -> int:
    """Heartbeat and MeterValues round trips until ``stop``; each must get a CALLRESULT
    (ChargerSim raises on a CALLERROR, a timeout or an invalid answer). Paced below the
    gateway's default max_message_rate (200 frames/s per charger), as a real one is."""
    sample = {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    rounds = 0
    while not stop.is_set() or rounds == 0:
        assert "currentTime" in await charger.heartbeat()
        reading = {"timestamp": "2024-05-01T11:59:58Z", "sampledValue": [sample]}
        assert await charger.meter_values(1, [reading]) == {}
        rounds += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PACE):
                await stop.wait()
    return rounds


async def alongside(bystander: ChargerSim, work: Awaitable[None]) -> None:
    """Run ``work`` while ``bystander`` keeps doing round trips; both must succeed."""
    stop = asyncio.Event()
    busy = asyncio.create_task(keep_busy(bystander, stop))
    try:
        await work
    finally:
        stop.set()
        rounds = await busy
    event(f"bystander rounds per example: {min(rounds, 5)}{'+' if rounds >= 5 else ''}")
    assert bystander.violations == []


async def booted_charger(make: Callable[..., ChargerSim], url: str, station_id: str) -> ChargerSim:
    charger = make(url, station_id)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    return charger


@pytest.fixture
async def bystander(gateway: Gateway, chargers: Callable[..., ChargerSim]) -> ChargerSim:
    """A booted well-behaved charger on the ``gateway`` fixture, for a whole test."""
    return await booted_charger(chargers, charger_url_of(gateway), "CP-OK")


# =========================================================================== 1.6 frames


@pytest.fixture
async def small_frames_gateway(make_gateway: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await make_gateway(max_frame_bytes=MAX_FRAME)


@pytest.fixture
async def bystander_of_small(
    small_frames_gateway: Gateway, chargers: Callable[..., ChargerSim]
) -> ChargerSim:
    return await booted_charger(chargers, charger_url_of(small_frames_gateway), "CP-OK")


@pytest.fixture
async def raw_1_6(small_frames_gateway: Gateway) -> AsyncIterator[RawStation]:
    station = RawStation(charger_url_of(small_frames_gateway), "CP-FUZZ", "ocpp1.6")
    yield station
    await station.close()


def check_translating_reaction(fuzz: Fuzz, exchange: Exchange) -> None:
    expected = expected_from_translating(fuzz)
    if expected.close is not None:
        event(f"closed {expected.close}")
        assert exchange.close is not None, f"{fuzz!r} should close the connection"
        assert exchange.close[0] == expected.close, exchange.close
        return
    assert exchange.close is None, f"{fuzz!r} closed the connection: {exchange.close}"
    assert exchange.calls == [], "the gateway sent the charger a CALL"
    if expected.answer == "none":
        event("ignored")
        assert exchange.answers == [], f"{fuzz!r} must not be answered: {exchange.answers}"
        return
    assert expected.unique_id is not None
    assert len(exchange.answers) == 1, f"{fuzz!r}: one answer expected, got {exchange.answers}"
    (answer,) = exchange.answers
    frame = json.loads(answer)
    if frame[0] == 3:
        # A real CALL got through: its answer is valid against the 1.6 response schema.
        assert expected.answer == "any"
        _, value = decoded(fuzz)
        assert isinstance(value, list)
        action = value[2]
        assert frame[1] == expected.unique_id
        assert not default_validator().errors("1.6", action, "response", frame[2])
        event(f"CALLRESULT {action}")
        return
    check_call_error(answer, expected.unique_id, V16_CODES)
    if expected.code is not None:
        assert frame[2] == expected.code, answer
    event(f"CALLERROR {frame[2]}")


@FUZZ
@given(batch=st.lists(fuzz_frames(), min_size=1, max_size=6))
@example(batch=list(SPECIAL_FRAMES))
async def test_arbitrary_frames_from_a_1_6_charger_get_a_1_6_callerror_nothing_or_a_clean_close(
    small_frames_gateway: Gateway,
    raw_1_6: RawStation,
    bystander_of_small: ChargerSim,
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    batch: list[Fuzz],
) -> None:
    """Per message, exactly OCPP-J 1.6's reaction or the RFC 6455 close code; then the same
    station reconnects and boots, while the bystander's round trips all succeed."""
    gateway, station = small_frames_gateway, raw_1_6

    async def barrage() -> None:
        await station.boot_1_6()
        for fuzz in batch:
            exchange = await station.exchange(fuzz)
            check_translating_reaction(fuzz, exchange)
            if exchange.close is not None:
                await csms.wait_disconnected(station.station_id)
                await station.boot_1_6()
        await station.close()
        await csms.wait_disconnected(station.station_id)
        # The same station, as a validating charger, connects again and boots.
        again = chargers(charger_url_of(gateway), station.station_id)
        await again.connect()
        assert (await again.boot())["status"] == "Accepted"
        await again.close()
        await csms.wait_disconnected(station.station_id)

    await alongside(bystander_of_small, barrage())
    ready, detail = await gateway.ready()
    assert ready, detail
    assert csms.violations == []


# =========================================================================== 1.6 payloads


@FUZZ
@given(batch=st.lists(schema_shaped(Version.V16, CHARGER_ACTIONS), min_size=1, max_size=5))
async def test_schema_shaped_payloads_from_a_1_6_charger_get_a_valid_result_or_a_1_6_callerror(
    gateway: Gateway,
    chargers: Callable[..., ChargerSim],
    bystander: ChargerSim,
    csms: CsmsSim,
    batch: list[tuple[str, Payload]],
) -> None:
    """Nearly valid requests: a CALLRESULT valid against the 1.6 response schema (the
    ChargerSim checks) or a CALLERROR with a 1.6 code; the CsmsSim records no invalid
    payload, so nothing invalid was forwarded."""
    fuzzer = await booted_charger(chargers, charger_url_of(gateway), "CP-FUZZ")

    async def barrage() -> None:
        for action, payload in batch:
            try:
                await fuzzer.call(action, payload, validate=False, timeout=WAIT)
            except CallErrorReceived as refused:
                assert refused.code in V16_CODES, refused.code
                check_internal_error(refused, action, payload)
            else:
                event(f"CALLRESULT {action}")

    try:
        await alongside(bystander, barrage())
        # Outbox messages from before go up first: once this is answered, all did.
        assert "currentTime" in await fuzzer.heartbeat()
        assert fuzzer.violations == []
        assert csms.violations == [], "the gateway forwarded an invalid payload"
        assert fuzzer.connected
    finally:
        await fuzzer.close()
        await csms.wait_disconnected(fuzzer.charge_point_id)


# =========================================================================== pass-through


def _answer_upstream(station_id: str, text: str) -> str | None:
    """The pass-through test's CSMS: answers boots and heartbeats, refuses the fuzzed
    native station's other CALLs with a CALLERROR marked as its own ("raw csms")."""
    frame = json.loads(text)
    if frame[0] != 2:
        return None
    action, unique_id = frame[2], frame[1]
    if action == "BootNotification":
        payload: Payload = {
            "currentTime": "2024-01-01T00:00:00.000Z",
            "interval": 300,
            "status": "Accepted",
        }
    elif action == "Heartbeat":
        payload = {"currentTime": "2024-01-01T00:00:00.000Z"}
    elif action in ("MeterValues", "StatusNotification") and station_id == "CP-OK":
        payload = {}
    else:
        return json.dumps([4, unique_id, "NotImplemented", "raw csms", {}])
    return json.dumps([3, unique_id, payload])


@pytest.fixture
async def native_upstream() -> AsyncIterator[RawCsms]:
    async with RawCsms(_answer_upstream) as raw:
        yield raw


@pytest.fixture
async def native_gateway(
    make_gateway: Callable[..., Awaitable[Gateway]], native_upstream: RawCsms
) -> Gateway:
    return await make_gateway(upstream=native_upstream.url, max_frame_bytes=MAX_FRAME)


@pytest.fixture
async def native_bystander(
    native_gateway: Gateway, chargers: Callable[..., ChargerSim]
) -> ChargerSim:
    return await booted_charger(chargers, charger_url_of(native_gateway), "CP-OK")


def native_frames() -> st.SearchStrategy[Fuzz]:
    """Arbitrary messages and nearly valid 2.0.1 CALLs from a native charger."""
    calls = st.tuples(st.uuids().map(str), schema_shaped(Version.V201, NATIVE_ACTIONS)).map(
        lambda pair: Fuzz(json.dumps([2, pair[0], pair[1][0], pair[1][1]]))
    )
    return st.one_of(fuzz_frames(), calls, calls)


def expected_from_passthrough(fuzz: Fuzz) -> Expected:
    """passthrough.py: a CALL of a 2.0.1 action with a payload the gateway's validator
    accepts, or a well-formed CALLRESULT / CALLERROR, is forwarded; a broken answer is
    dropped; anything else gets the gateway's 2.0.1 CALLERROR, with id "-1" when the id
    is unreadable (2.0.1 Part 4 §4.2.3)."""
    size = len(fuzz.data if isinstance(fuzz.data, bytes) else fuzz.data.encode())
    if size > MAX_FRAME:
        return Expected("none", close=TOO_BIG)
    if fuzz.opcode == "raw-text" and isinstance(fuzz.data, bytes):
        try:
            fuzz.data.decode("utf-8")
        except UnicodeDecodeError:
            return Expected("none", close=NOT_UTF8)
    is_json, value = decoded(fuzz)
    if not is_json:
        return Expected("error", "-1", "RpcFrameworkError")
    unique_id = readable_id(value)
    if unique_id is None:
        return Expected("error", "-1", "RpcFrameworkError")
    assert isinstance(value, list)
    kind = value[0]
    if type(kind) is int and kind == 3:
        well_formed = len(value) == 3 and isinstance(value[2], dict)
        return Expected("forward" if well_formed else "none", unique_id)
    if type(kind) is int and kind == 4:
        well_formed = (
            len(value) == 5
            and isinstance(value[2], str)
            and isinstance(value[3], str)
            and isinstance(value[4], dict)
        )
        return Expected("forward" if well_formed else "none", unique_id)
    if type(kind) is not int or kind != 2:
        return Expected("error", unique_id, "MessageTypeNotSupported")
    shaped = (
        len(value) == 4 and isinstance(value[2], str) and value[2] and isinstance(value[3], dict)
    )
    if not shaped:
        return Expected("error", unique_id, "RpcFrameworkError")
    if value[2] not in schemas.known_actions(Version.V201):
        return Expected("error", unique_id, "NotImplemented")
    try:
        schemas.validate(Version.V201, value[2], Kind.REQUEST, value[3])
    except GatewayError:
        return Expected("error", unique_id)
    return Expected("forward", unique_id)


@FUZZ
@given(batch=st.lists(native_frames(), min_size=1, max_size=6))
@example(batch=list(SPECIAL_FRAMES))
async def test_a_native_2_0_1_charger_gets_its_frames_forwarded_verbatim_or_a_2_0_1_callerror(
    native_gateway: Gateway,
    native_upstream: RawCsms,
    native_bystander: ChargerSim,
    batch: list[Fuzz],
) -> None:
    """Pass-through: what reaches the CSMS is exactly text the charger sent, every CALL
    among it valid (gateway's and reference validator); answers are forwarded as they
    are, by design; the gateway's own answers are well-formed 2.0.1 CALLERRORs."""
    upstream = native_upstream
    station = RawStation(charger_url_of(native_gateway), "NATIVE-FUZZ", "ocpp2.0.1")

    async def barrage() -> None:
        await station.open_and_sync()
        for fuzz in batch:
            before = len(upstream.texts(station.station_id))
            exchange = await station.exchange(fuzz)
            # Everything the CSMS got since: the frame (if forwarded), then the sync CALL.
            forwarded = upstream.texts(station.station_id)[before:]
            check_passthrough_reaction(fuzz, exchange, forwarded)
            if exchange.close is not None:
                await station.open_and_sync()
        await station.close()

    try:
        await alongside(native_bystander, barrage())
    finally:
        await station.close()


def check_passthrough_reaction(fuzz: Fuzz, exchange: Exchange, forwarded: list[str]) -> None:
    expected = expected_from_passthrough(fuzz)
    if expected.close is not None:
        event(f"closed {expected.close}")
        assert exchange.close is not None and exchange.close[0] == expected.close
        assert forwarded == []
        return
    assert exchange.close is None, f"{fuzz!r} closed the connection: {exchange.close}"
    assert forwarded, "the sync Heartbeat must have reached the CSMS"
    assert json.loads(forwarded[-1])[2] == "Heartbeat"
    relayed = forwarded[:-1]
    text = fuzz.data if isinstance(fuzz.data, str) else fuzz.data.decode("utf-8", "replace")
    if expected.answer == "forward":
        assert relayed == [text], "forwarded byte for byte"
        frame = json.loads(text)
        if frame[0] == 2:
            errors = default_validator().errors("2.0.1", frame[2], "request", frame[3])
            assert not errors, f"forwarded an invalid {frame[2]}: {errors}"
            assert len(exchange.answers) == 1
            answer = json.loads(exchange.answers[0])
            assert answer[1] == frame[1]
            event(f"CALL forwarded: {frame[2]}")
        else:
            # By design pass-through does not check an answer's content: note what went up.
            assert exchange.answers == []
            unknown_code = frame[0] == 4 and frame[2] not in V201_CODES
            event(f"answer forwarded unchecked{' (code not 2.0.1)' if unknown_code else ''}")
        return
    assert relayed == [], f"{fuzz!r} must not be forwarded"
    if expected.answer == "none":
        event("dropped")
        assert exchange.answers == []
        return
    assert expected.unique_id is not None
    assert len(exchange.answers) == 1, exchange.answers
    frame = check_call_error(exchange.answers[0], expected.unique_id, V201_CODES)
    assert frame[3] != "raw csms", "answered by the gateway, not the CSMS"
    if expected.code is not None:
        assert frame[2] == expected.code, exchange.answers[0]
    event(f"CALLERROR {frame[2]} (id {'-1' if expected.unique_id == '-1' else 'read'})")


# =========================================================================== from the CSMS


def csms_inputs() -> st.SearchStrategy[Fuzz | tuple[str, Payload]]:
    """Raw text frames from the CSMS, or nearly valid 2.0.1 requests."""
    texts = frame_texts() | well_formed_frames() | st.text(max_size=50)
    calls = schema_shaped(Version.V201, CSMS_ACTIONS)
    return st.one_of(texts.map(Fuzz), calls, calls)


def expected_from_csms(fuzz: Fuzz) -> Expected:
    """The translating session answers the CSMS like OCPP-J 2.0.1 asks: a CALL or an
    unknown message type with a readable id gets an answer; a message with no readable
    id a CALLERROR with id "-1"; an answer (broken or not) nothing."""
    is_json, value = decoded(fuzz)
    if not is_json:
        return Expected("error", "-1", "RpcFrameworkError")
    unique_id = readable_id(value)
    if unique_id is None:
        return Expected("error", "-1", "RpcFrameworkError")
    assert isinstance(value, list)
    kind = value[0]
    if type(kind) is int and kind in (3, 4):
        return Expected("none")
    if type(kind) is int and kind == 2:
        return Expected("any", unique_id)
    return Expected("error", unique_id, "MessageTypeNotSupported")


async def drain_unmatched(csms: CsmsSim, station_id: str) -> list[str]:
    """The frames from ``station_id`` nobody waited for, received so far."""
    frames: list[str] = []
    while True:
        try:
            frames.append(await csms.next_unmatched(station_id, timeout=0.001))
        except TimeoutError:
            return frames


async def check_csms_frame(csms: CsmsSim, target: ChargerSim, fuzz: Fuzz) -> None:
    """Send a raw frame, then a sync DataTransfer; check what the CSMS got meanwhile."""
    station_id = target.charge_point_id
    assert isinstance(fuzz.data, str)
    await csms.send_raw(station_id, fuzz.data)
    await csms.call(station_id, "DataTransfer", {"vendorId": "sync"}, timeout=WAIT)
    answers = await drain_unmatched(csms, station_id)
    expected = expected_from_csms(fuzz)
    if expected.answer == "none":
        event("ignored")
        assert answers == [], f"{fuzz!r} must not be answered: {answers}"
        return
    assert expected.unique_id is not None
    assert len(answers) == 1, f"{fuzz!r}: one answer expected, got {answers}"
    frame = json.loads(answers[0])
    if frame[0] == 3:
        assert expected.answer == "any"
        _, value = decoded(fuzz)
        assert isinstance(value, list)
        assert frame[1] == expected.unique_id
        errors = default_validator().errors("2.0.1", value[2], "response", frame[2])
        assert not errors, errors
        event(f"CALLRESULT {value[2]}")
        return
    check_call_error(answers[0], expected.unique_id, V201_CODES)
    if expected.code is not None:
        assert frame[2] == expected.code, answers[0]
    event(f"CALLERROR {frame[2]}")


@FUZZ
@given(batch=st.lists(csms_inputs(), min_size=1, max_size=5))
async def test_arbitrary_and_schema_shaped_csms_calls_get_valid_answers_the_charger_nothing_invalid(
    gateway: Gateway,
    chargers: Callable[..., ChargerSim],
    bystander: ChargerSim,
    csms: CsmsSim,
    batch: list[Fuzz | tuple[str, Payload]],
) -> None:
    """Raw frames get OCPP-J 2.0.1's reaction; nearly valid requests a CALLRESULT valid
    against the 2.0.1 response schema (the CsmsSim checks) or a 2.0.1 CALLERROR; the
    validating 1.6 ChargerSim records nothing invalid."""
    target = await booted_charger(chargers, charger_url_of(gateway), "CP-1")

    async def barrage() -> None:
        for item in batch:
            if isinstance(item, Fuzz):
                await check_csms_frame(csms, target, item)
                continue
            action, payload = item
            try:
                await csms.call(
                    target.charge_point_id, action, payload, validate=False, timeout=WAIT
                )
            except CallErrorReceived as refused:
                assert refused.code in V201_CODES, refused.code
                check_internal_error(refused, action, payload)
                event(f"{action}: CALLERROR {refused.code}")
            else:
                event(f"{action}: CALLRESULT")

    try:
        await alongside(bystander, barrage())
        assert target.violations == [], "the gateway sent the charger an invalid payload"
        assert csms.violations == []
        assert target.connected
    finally:
        await target.close()
        await csms.wait_disconnected(target.charge_point_id)


# =========================================================================== found bugs

# Regression tests for the bugs this fuzzing found.

_STATUS: Final = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}


async def test_a_year_0000_timestamp_from_a_1_6_charger_is_not_forwarded_to_the_csms(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    before = len(csms.messages)
    with pytest.raises(CallErrorReceived) as refused:
        payload = {**_STATUS, "timestamp": "0000-01-01T00:00:00Z"}
        await booted.call("StatusNotification", payload, validate=False)  # the sim refuses it
    assert refused.value.code == "PropertyConstraintViolation"
    await booted.heartbeat()  # anything queued for the CSMS would have gone up before it
    assert [m.action for m in csms.messages[before:]] == ["Heartbeat"]


async def test_a_year_0000_timestamp_from_a_native_charger_is_not_forwarded(
    native_gateway: Gateway, native_upstream: RawCsms
) -> None:
    payload = {
        "timestamp": "0000-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    station = RawStation(charger_url_of(native_gateway), "NATIVE-0000", "ocpp2.0.1")
    await station.open_and_sync()
    try:
        await station.exchange(Fuzz(json.dumps([2, "s-1", "StatusNotification", payload])))
    finally:
        await station.close()
    for text in native_upstream.texts("NATIVE-0000"):
        frame = json.loads(text)
        if frame[0] == 2:
            assert not default_validator().errors("2.0.1", frame[2], "request", frame[3]), text


async def test_a_stop_transaction_id_beyond_64_bits_signed_is_not_an_internal_error(
    booted: ChargerSim,
) -> None:
    payload = {"transactionId": 2**64 - 1, "meterStop": 0, "timestamp": "2024-05-01T11:59:58Z"}
    try:
        await booted.call("StopTransaction", payload)
    except CallErrorReceived as refused:
        assert refused.code != "InternalError", refused.description


@pytest.mark.parametrize("timestamp", OVERFLOWING_DATE_TIMES)
async def test_a_timestamp_beyond_the_calendar_in_utc_is_not_an_internal_error(
    booted: ChargerSim, timestamp: str
) -> None:
    with pytest.raises(CallErrorReceived) as refused:
        await booted.status(1, "Available", timestamp=timestamp)
    assert refused.value.code == "PropertyConstraintViolation", refused.value.description


# A charger connection that ended while its upstream connection was still opening left
# that connection served forever (UpstreamLink.close() had nothing to close yet), so the
# session never ended and every later connection of the station waited for it.


def _answer_boots_and_heartbeats(_station_id: str, text: str) -> str | None:
    frame = json.loads(text)
    if frame[0] != 2:
        return None
    if frame[2] == "BootNotification":
        payload = {"currentTime": "2024-01-01T00:00:00.000Z", "interval": 300, "status": "Accepted"}
        return json.dumps([3, frame[1], payload])
    return json.dumps([3, frame[1], {"currentTime": "2024-01-01T00:00:00.000Z"}])


@pytest.mark.parametrize(
    ("subprotocol", "faults"),
    # Translated: the station loads its state first, so one fault hits the window.
    # Pass-through connects upstream at once: the fault of a reconnection hits it.
    [("ocpp1.6", 1), ("ocpp2.0.1", 2)],
)
async def test_a_station_whose_first_frame_closes_it_can_connect_again(
    make_gateway: Callable[..., Awaitable[Gateway]], subprotocol: str, faults: int
) -> None:
    async with RawCsms(_answer_boots_and_heartbeats) as upstream:
        gateway = await make_gateway(upstream=upstream.url, shutdown_grace=1.0)
        url = charger_url_of(gateway)
        for _ in range(faults):  # connect, and at once send a frame that is not UTF-8
            station = RawStation(url, "CP-RACE", subprotocol)
            async with asyncio.timeout(3):
                await station.open()
                closed = await station.exchange(
                    Fuzz(b'[2,"u","Heartbeat",{"x":"\xff"}]', "raw-text")
                )
            assert closed.close is not None
            assert closed.close[0] == NOT_UTF8
            await station.close()
        again = RawStation(url, "CP-RACE", subprotocol)
        try:
            async with asyncio.timeout(3):  # milliseconds when the station is served
                await again.open()
                answered = await again.exchange(Fuzz('[3,"nobody-asked",{}]'))
            assert answered.close is None
        finally:
            await again.close()
