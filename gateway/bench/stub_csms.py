"""The stub CSMS: answers every CALL at once from pre-serialised frames.

Layer: bench. Must not import the gateway outside ``gateway.bench``.

It speaks 2.0.1 (the gateway's upstream) and 1.6 (the direct baseline and the naive
proxy's upstream), picked by the negotiated subprotocol. The answers are minimal but
schema-valid (``tests/integration/test_bench.py`` validates them against the official
schemas), serialised once at start-up with the message id spliced in per call, so the
stub costs a fraction of what a real CSMS would and the figures describe the party in
the middle. It validates nothing: it only counts what it received, per station tag
(target and phase) and action, and keeps the first frame of each kind so the bench can
show that the gateway really sent 2.0.1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Final
from urllib.parse import unquote, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.bench.child import receive, run_child
from gateway.bench.control import PeerStats, Problems, Ready, StatsRequest, Stop, tag_of
from gateway.bench.frames import not_implemented, peek_call

__all__ = ["ANSWERS", "LISTEN_BACKLOG", "StubCsms", "answers", "main"]

V16: Final = "ocpp1.6"
V201: Final = "ocpp2.0.1"
LISTEN_BACKLOG: Final = 4096  # a fleet connecting at once must not overflow the accept queue
_ACCEPTED: Final = {"status": "Accepted"}


def answers(now: str) -> dict[str, dict[str, object]]:
    """The response payload per subprotocol and action (``now`` is the currentTime)."""
    boot = {"currentTime": now, "interval": 300, "status": "Accepted"}
    return {
        V16: {
            "BootNotification": boot,
            "Heartbeat": {"currentTime": now},
            "MeterValues": {},
            "StatusNotification": {},
            "Authorize": {"idTagInfo": _ACCEPTED},
            "StartTransaction": {"idTagInfo": _ACCEPTED, "transactionId": 1},
            "StopTransaction": {},
            "DataTransfer": _ACCEPTED,
            "DiagnosticsStatusNotification": {},
            "FirmwareStatusNotification": {},
        },
        V201: {
            "BootNotification": boot,
            "Heartbeat": {"currentTime": now},
            "MeterValues": {},
            "StatusNotification": {},
            "TransactionEvent": {},
            "Authorize": {"idTokenInfo": _ACCEPTED},
            "NotifyEvent": {},
            "NotifyReport": {},
            "SecurityEventNotification": {},
            "FirmwareStatusNotification": {},
            "LogStatusNotification": {},
            "DataTransfer": _ACCEPTED,
        },
    }


def _serialised(now: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Each answer as ``(head, tail)``: the CALLRESULT is ``head + message id + tail``."""
    return {
        version: {
            action: ('[3,"', '",' + orjson.dumps(payload).decode() + "]")
            for action, payload in by_action.items()
        }
        for version, by_action in answers(now).items()
    }


ANSWERS: Final = _serialised(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))


class StubCsms:
    """The websocket handler and its counters."""

    def __init__(self) -> None:
        self.connections = 0
        self.received: dict[str, dict[str, dict[str, int]]] = {}
        self.samples: dict[str, str] = {}
        self.problems = Problems()

    def stats(self) -> PeerStats:
        return PeerStats(
            connections=self.connections,
            received={
                tag: {version: dict(counts) for version, counts in versions.items()}
                for tag, versions in self.received.items()
            },
            samples=dict(self.samples),
            problems=self.problems,
        )

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        path = ws.request.path if ws.request is not None else "/"
        tag = tag_of(unquote(urlsplit(path).path.rsplit("/", 1)[-1]))
        version = ws.subprotocol or V16
        table = ANSWERS.get(version, ANSWERS[V16])
        counts = self.received.setdefault(tag, {}).setdefault(version, {})
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                peeked = peek_call(text)
                if peeked is None:
                    # The stub never sends CALLs, so nothing else should ever arrive.
                    self.problems.add(f"{tag}: not a CALL: {text[:120]}")
                    continue
                message_id, action = peeked
                seen = counts.get(action, 0) + 1
                counts[action] = seen
                if seen == 1:
                    self.samples[f"{tag} {version} {action}"] = text
                answer = table.get(action)
                if answer is None:
                    self.problems.add(f"{tag}: no answer for {version} {action}")
                    await ws.send(not_implemented(message_id))
                else:
                    await ws.send(answer[0] + message_id + answer[1])
        except ConnectionClosed:
            pass


async def _run(conn: Connection) -> None:
    stub = StubCsms()
    server = await serve(
        stub.handle,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol(V201), Subprotocol(V16)],
        compression=None,
        ping_interval=None,
        max_size=2**20,
        backlog=LISTEN_BACKLOG,
    )
    conn.send(Ready(next(iter(server.sockets)).getsockname()[1]))
    while True:
        command = await receive(conn)
        if isinstance(command, StatsRequest):
            conn.send(stub.stats())
        elif isinstance(command, Stop):
            # Connections are not closed one by one: the process exits next.
            server.close(close_connections=False)
            return
        else:
            raise TypeError(f"the stub CSMS got an unknown command {command!r}")


def main(conn: Connection) -> None:
    """Process entry point (``multiprocessing`` spawn target)."""
    run_child(conn, _run)
