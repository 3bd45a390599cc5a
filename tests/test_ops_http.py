"""Tests for gateway.ops_http: the /metrics, /healthz and /readyz server on a real socket."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import prometheus_client
import pytest

from gateway.ops_http import OpsServer

HOST = "127.0.0.1"


@dataclass(slots=True)
class ReadinessStub:
    """A readiness callback whose answer the test controls."""

    result: tuple[bool, str] = (True, "upstream connected")
    calls: int = 0
    error: Exception | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event | None = None

    async def __call__(self) -> tuple[bool, str]:
        self.calls += 1
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def registry() -> prometheus_client.CollectorRegistry:
    """A private registry so tests do not see each other's metrics."""
    return prometheus_client.CollectorRegistry()


@pytest.fixture
def readiness() -> ReadinessStub:
    """A readiness callback answering ready by default."""
    return ReadinessStub()


@pytest.fixture
async def server(
    registry: prometheus_client.CollectorRegistry, readiness: ReadinessStub
) -> AsyncIterator[OpsServer]:
    """An OpsServer listening on a free loopback port."""
    ops = OpsServer(host=HOST, port=0, registry=registry, readiness=readiness)
    await ops.start()
    try:
        yield ops
    finally:
        await ops.stop()


async def exchange(port: int, raw: bytes) -> Reply:
    """Send raw bytes, read until the server closes, and parse the response."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status=int(status_line.split()[1]), headers=headers, body=body)


async def get(port: int, path: str, method: str = "GET") -> Reply:
    """A minimal well-formed HTTP/1.1 request."""
    raw = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: t\r\n\r\n"
    return await exchange(port, raw.encode())


async def test_healthz_answers_ok_with_close_and_length(server: OpsServer) -> None:
    """/healthz answers 200 "ok" with Connection: close and a correct Content-Length."""
    reply = await get(server.port, "/healthz")
    assert reply.status == 200
    assert reply.body == b"ok\n"
    assert reply.headers["connection"] == "close"
    assert reply.headers["content-length"] == "3"


async def test_port_zero_binds_a_real_port(server: OpsServer) -> None:
    """Constructed with port 0, the server reports the port it actually bound."""
    assert server.port > 0


async def test_port_before_start_is_an_error(
    registry: prometheus_client.CollectorRegistry, readiness: ReadinessStub
) -> None:
    """Asking for the port of a server that is not started raises RuntimeError."""
    ops = OpsServer(host=HOST, port=0, registry=registry, readiness=readiness)
    with pytest.raises(RuntimeError):
        _ = ops.port


async def test_metrics_exposes_metrics_registered_in_the_registry(
    server: OpsServer, registry: prometheus_client.CollectorRegistry
) -> None:
    """A counter registered in the registry appears in /metrics in the Prometheus format."""
    counter = prometheus_client.Counter(
        "gateway_test_frames", "Frames seen by the test", ["direction"], registry=registry
    )
    counter.labels(direction="upstream").inc(3)
    reply = await get(server.port, "/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"] == prometheus_client.CONTENT_TYPE_LATEST
    assert b'gateway_test_frames_total{direction="upstream"} 3.0' in reply.body
    assert int(reply.headers["content-length"]) == len(reply.body)


async def test_readyz_reports_ready_with_the_detail(
    server: OpsServer, readiness: ReadinessStub
) -> None:
    """A ready callback gives 200 and "ready: <detail>"."""
    reply = await get(server.port, "/readyz")
    assert reply.status == 200
    assert reply.body == b"ready: upstream connected\n"
    assert readiness.calls == 1


async def test_readyz_reports_not_ready_as_503(server: OpsServer, readiness: ReadinessStub) -> None:
    """A not-ready callback gives 503 and "not ready: <detail>"."""
    readiness.result = (False, "state store unreachable")
    reply = await get(server.port, "/readyz")
    assert reply.status == 503
    assert reply.body == b"not ready: state store unreachable\n"


async def test_readyz_turns_a_raising_callback_into_503(
    server: OpsServer, readiness: ReadinessStub
) -> None:
    """A readiness callback that raises gives 503 naming the error, and the server lives on."""
    readiness.error = RuntimeError("database is locked")
    reply = await get(server.port, "/readyz")
    assert reply.status == 503
    assert reply.body.startswith(b"not ready: ")
    assert b"RuntimeError: database is locked" in reply.body
    assert (await get(server.port, "/healthz")).status == 200


async def test_readyz_turns_a_hanging_callback_into_503(
    registry: prometheus_client.CollectorRegistry, readiness: ReadinessStub
) -> None:
    """A readiness callback that does not answer within the timeout gives 503."""
    readiness.release = asyncio.Event()  # never set: the callback hangs
    async with OpsServer(
        host=HOST, port=0, registry=registry, readiness=readiness, readiness_timeout=0.05
    ) as ops:
        reply = await get(ops.port, "/readyz")
    assert reply.status == 503
    assert b"timed out" in reply.body


async def test_query_strings_are_ignored_for_routing(server: OpsServer) -> None:
    """/healthz?verbose=1 is still /healthz."""
    reply = await get(server.port, "/healthz?verbose=1")
    assert reply.status == 200
    assert reply.body == b"ok\n"


async def test_unknown_paths_are_404(server: OpsServer) -> None:
    """Paths other than the three endpoints answer 404."""
    assert (await get(server.port, "/")).status == 404
    assert (await get(server.port, "/metrics/extra")).status == 404


async def test_methods_other_than_get_and_head_are_405(server: OpsServer) -> None:
    """POST (with a body) answers 405 and advertises the allowed methods."""
    raw = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    reply = await exchange(server.port, raw)
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD"


async def test_head_returns_headers_without_a_body(server: OpsServer) -> None:
    """HEAD answers like GET, Content-Length included, but sends no body."""
    reply = await get(server.port, "/healthz", method="HEAD")
    assert reply.status == 200
    assert reply.headers["content-length"] == "3"
    assert reply.body == b""


async def test_garbage_request_line_is_400_and_harmless(server: OpsServer) -> None:
    """A request line that is not HTTP gets 400 and the server keeps serving."""
    reply = await exchange(server.port, b"\x16\x03\x01 hello there\r\n\r\n")
    assert reply.status == 400
    assert (await exchange(server.port, b"GET\r\n\r\n")).status == 400
    assert (await get(server.port, "/healthz")).status == 200


async def test_malformed_header_line_is_400(server: OpsServer) -> None:
    """A header line without a colon gets 400."""
    reply = await exchange(server.port, b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n")
    assert reply.status == 400


async def test_oversized_headers_are_rejected(server: OpsServer) -> None:
    """More than 16 KiB of headers gets 431 and the server keeps serving."""
    headers = "".join(f"X-Filler-{i}: {'a' * 100}\r\n" for i in range(200))
    reply = await exchange(server.port, f"GET /healthz HTTP/1.1\r\n{headers}\r\n".encode())
    assert reply.status == 431
    one_huge_line = f"GET /healthz HTTP/1.1\r\nX-Big: {'b' * 20000}\r\n\r\n".encode()
    assert (await exchange(server.port, one_huge_line)).status == 431
    assert (await get(server.port, "/healthz")).status == 200


async def test_a_silent_client_is_dropped(
    registry: prometheus_client.CollectorRegistry, readiness: ReadinessStub
) -> None:
    """A client that sends nothing is disconnected once the request timeout passes."""
    async with OpsServer(
        host=HOST, port=0, registry=registry, readiness=readiness, request_timeout=0.05
    ) as ops:
        reader, writer = await asyncio.open_connection(HOST, ops.port)
        try:
            assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        finally:
            writer.close()
            await writer.wait_closed()


async def test_connections_beyond_the_limit_get_503(
    registry: prometheus_client.CollectorRegistry, readiness: ReadinessStub
) -> None:
    """With max_connections=1, a second concurrent client gets 503 while the first is served."""
    readiness.release = asyncio.Event()
    async with OpsServer(
        host=HOST, port=0, registry=registry, readiness=readiness, max_connections=1
    ) as ops:
        first = asyncio.create_task(get(ops.port, "/readyz"))
        await readiness.entered.wait()
        second = await get(ops.port, "/healthz")
        readiness.release.set()
        assert second.status == 503
        assert (await first).status == 200


async def test_stop_closes_idle_connections(
    registry: prometheus_client.CollectorRegistry, readiness: ReadinessStub
) -> None:
    """stop() returns promptly even while a client holds a connection open without a request."""
    ops = OpsServer(host=HOST, port=0, registry=registry, readiness=readiness)
    await ops.start()
    reader, writer = await asyncio.open_connection(HOST, ops.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # incomplete head: the handler is waiting
    await writer.drain()
    try:
        await asyncio.wait_for(ops.stop(), timeout=5)
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_standard_http_client_can_read_every_endpoint(
    server: OpsServer, readiness: ReadinessStub, registry: prometheus_client.CollectorRegistry
) -> None:
    """urllib (in a thread) reads /healthz and /metrics and sees /readyz 503 as an HTTPError."""
    prometheus_client.Gauge("gateway_test_up", "Up", registry=registry).set(1)
    base = f"http://{HOST}:{server.port}"

    def fetch(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    assert await asyncio.to_thread(fetch, "/healthz") == (200, b"ok\n")
    status, body = await asyncio.to_thread(fetch, "/metrics")
    assert status == 200
    assert b"gateway_test_up 1.0" in body
    readiness.result = (False, "upstream down")
    assert await asyncio.to_thread(fetch, "/readyz") == (503, b"not ready: upstream down\n")
