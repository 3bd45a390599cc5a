"""The operations HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz`` and, when given an
admin handler, the admin API and live view under ``/api/`` and ``/admin/``.

A deliberately tiny HTTP/1.1 server on ``asyncio.start_server``: one request per connection
(always ``Connection: close``), bounded header size and read time, and every failure confined
to the connection that caused it.  GET and HEAD only, without request bodies, everywhere but
under ``/api/`` and ``/admin/``: there POST, PUT and DELETE are passed on too, with a body of
at most :data:`MAX_ADMIN_BODY_BYTES` (``Content-Length`` only), and an answer may be a stream
(Server-Sent Events), which the request timeout no longer bounds once its head is sent.

This module must not import anything from the rest of the gateway (session, translate,
transport, state, config, admin): the caller hands in the Prometheus registry, a readiness
callback and the :class:`AdminHandler`.  No third-party web framework either; standard
library and prometheus_client only.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Protocol

import prometheus_client

__all__ = [
    "ADMIN_METHODS",
    "MAX_ADMIN_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "AdminHandler",
    "AdminRequest",
    "AdminResponse",
    "OpsServer",
    "Readiness",
    "is_admin_path",
]

_log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[tuple[bool, str]]]
"""Async callback answering ``(ready, detail)`` for ``/readyz``."""

MAX_HEADER_BYTES = 16 * 1024
MAX_ADMIN_BODY_BYTES = 64 * 1024
"""The largest request body accepted under ``/api/`` and ``/admin/`` (413 beyond)."""
ADMIN_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")
"""The methods passed to the admin handler (405 for others)."""
_MAX_DISCARDED_BODY = 64 * 1024
_LINGER_SECONDS = 1.0
_TEXT = "text/plain; charset=utf-8"
_REQUEST_LINE = re.compile(
    rb"(?P<method>[!#$%&'*+.^_`|~0-9A-Za-z-]+) (?P<target>[^\s]+) HTTP/1\.[0-9]\r?\n"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminRequest:
    """One request under ``/api/`` or ``/admin/``, body read."""

    method: str
    path: str  # as received (percent-encoded), without the query
    query: str  # after "?", as received ("" if none)
    headers: Mapping[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes
    peer: str  # the client's address, for logs


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminResponse:
    """The admin handler's answer.  With ``stream`` the server sends the head without
    ``Content-Length``, then each chunk as it comes, until the stream ends or
    the client goes away (the stream is then closed); ``body`` is ignored."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    stream: AsyncIterator[bytes] | None = None


class AdminHandler(Protocol):
    """What the ops server passes ``/api/`` and ``/admin/`` requests to (the admin API)."""

    async def handle(self, request: AdminRequest) -> AdminResponse: ...


def is_admin_path(path: str) -> bool:
    """True for the paths the admin handler owns: ``/api``, ``/admin`` and below."""
    return path in ("/api", "/admin") or path.startswith(("/api/", "/admin/"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    method: str = "GET"
    path: str = "/"
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()
    stream: AsyncIterator[bytes] | None = None


def _text(status: int, text: str, *, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status=status, body=text.encode(), headers=headers)


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).strip()


async def _read_request(reader: asyncio.StreamReader) -> _Request | _Response | None:
    """Read the request head; a _Response for a bad request, None when the client went away."""
    try:
        line = await reader.readline()
    except ValueError:  # the line alone exceeds the reader's limit
        return _text(431, "request header fields too large\n")
    if not line.endswith(b"\n"):
        return None
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        return _text(400, "bad request line\n")
    method = match["method"].decode("ascii")
    target = match["target"].decode("ascii", errors="replace")
    if target.startswith(("http://", "https://")):  # absolute-form
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    target = target.partition("#")[0]
    path, _, query = target.partition("?")

    total = len(line)
    content_length = 0
    headers: dict[str, str] = {}
    while True:
        try:
            line = await reader.readline()
        except ValueError:
            return _text(431, "request header fields too large\n")
        total += len(line)
        if total > MAX_HEADER_BYTES:
            return _text(431, "request header fields too large\n")
        if not line.endswith(b"\n"):
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            return _text(400, "malformed header line\n")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if key == "content-length":
            if not text.isdigit():
                return _text(400, "bad Content-Length\n")
            content_length = int(text)
    return _Request(
        method=method, path=path, query=query, headers=headers, content_length=content_length
    )


class OpsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (port 0 = any free).

    ``readiness_timeout`` bounds the readiness callback (503 when exceeded),
    ``request_timeout`` drops clients that do not deliver a complete request (or do not
    read the answer) in time, ``max_connections`` answers 503 beyond that many connections.
    ``admin`` answers ``/api/`` and ``/admin/``; without it they are 404 (and ``start`` logs
    once that the admin API is off).
    Usable as ``async with OpsServer(...) as server:``.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: prometheus_client.CollectorRegistry,
        readiness: Readiness,
        readiness_timeout: float = 2.0,
        request_timeout: float = 10.0,
        max_connections: int = 64,
        admin: AdminHandler | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._registry = registry
        self._readiness = readiness
        self._readiness_timeout = readiness_timeout
        self._request_timeout = request_timeout
        self._max_connections = max_connections
        self._admin = admin
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def start(self) -> None:
        """Bind and start accepting; RuntimeError if already started."""
        if self._server is not None:
            raise RuntimeError("OpsServer is already started")
        self._server = await asyncio.start_server(
            self._serve_client, self._host, self._requested_port, limit=MAX_HEADER_BYTES
        )
        _log.info(
            "ops HTTP server listening on %s:%d (/metrics /healthz /readyz%s)",
            self._host,
            self.port,
            " /api/v1/ /admin/" if self._admin is not None else "",
        )
        if self._admin is None:
            _log.info("admin API and live view off (no admin token): /api/ and /admin/ are 404")

    async def stop(self) -> None:
        """Stop accepting, abort connections in progress and wait until all are closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        try:
            while self._clients:
                clients = list(self._clients)
                for task in clients:
                    task.cancel()
                await asyncio.gather(*clients, return_exceptions=True)
                self._clients.difference_update(clients)
            await server.wait_closed()
        finally:
            self._stopping = False

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0); needs ``start()``."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("OpsServer is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ----------------------------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        unread_input = True
        stream: AsyncIterator[bytes] | None = None
        try:
            async with asyncio.timeout(self._request_timeout):
                received = await self._receive(reader, writer)
                if received is None:
                    return
                request, body = received
                unread_input = request.content_length > _MAX_DISCARDED_BODY
                stream = await self._answer(request, body, writer)
            if stream is not None:
                await self._stream(reader, writer, stream)
                stream = None
        except TimeoutError:
            _log.debug("ops HTTP client dropped: no complete request in time")
            unread_input = False
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            _log.debug("ops HTTP client went away: %r", exc)
            unread_input = False
        except asyncio.CancelledError:
            unread_input = False
            if not self._stopping:
                raise
            # stop() cancelled us: end normally, or asyncio logs the cancellation as an error.
        except Exception:
            _log.exception("ops HTTP request failed")
        finally:
            if stream is not None:
                await _close_stream(stream)
            if task is not None:
                self._clients.discard(task)
            await self._close(reader, writer, linger=unread_input and not self._stopping)

    async def _receive(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[_Request, bytes] | None:
        """The request and its body; None when it was answered already (busy, malformed,
        a body refused) or the client went away."""
        if len(self._clients) > self._max_connections:
            await self._send(writer, _text(503, "too many connections\n"), head_only=False)
            return None
        request = await _read_request(reader)
        if request is None:
            return None
        if isinstance(request, _Response):
            await self._send(writer, request, head_only=False)
            return None
        refusal = self._refuse_body(request) if is_admin_path(request.path) else None
        if refusal is not None:
            await self._send(writer, refusal, head_only=False)
            return None
        body = b""
        if 0 < request.content_length <= _MAX_DISCARDED_BODY:
            body = await reader.readexactly(request.content_length)
        return request, body

    async def _answer(
        self, request: _Request, body: bytes, writer: asyncio.StreamWriter
    ) -> AsyncIterator[bytes] | None:
        """Route and send the answer; the stream still to send, if it is one."""
        if is_admin_path(request.path):
            response = await self._admin_route(request, body, writer)
        else:
            response = await self._route(request)
        head_only = request.method == "HEAD"
        stream, response = response.stream, replace(response, stream=None)
        if head_only and stream is not None:
            await _close_stream(stream)
            stream = None
        try:
            await self._send(writer, response, head_only=head_only, streaming=stream is not None)
        except BaseException:
            if stream is not None:
                await _close_stream(stream)
            raise
        return stream

    def _refuse_body(self, request: _Request) -> _Response | None:
        """The answer to an admin request whose body is not acceptable, else None."""
        if self._admin is None:
            return None  # 404 below, whatever the body
        if "transfer-encoding" in request.headers:
            return _text(411, "Transfer-Encoding is not supported: send Content-Length\n")
        if request.content_length > MAX_ADMIN_BODY_BYTES:
            return _text(413, f"request body larger than {MAX_ADMIN_BODY_BYTES} bytes\n")
        return None

    async def _admin_route(
        self, request: _Request, body: bytes, writer: asyncio.StreamWriter
    ) -> _Response:
        if self._admin is None:
            return _text(404, "not found\n")
        if request.method not in ADMIN_METHODS:
            return _text(
                405, "method not allowed\n", headers=(("Allow", ", ".join(ADMIN_METHODS)),)
            )
        peer = writer.get_extra_info("peername")
        admin_request = AdminRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=body,
            peer=str(peer[0]) if isinstance(peer, tuple) and peer else "?",
        )
        try:
            answer = await self._admin.handle(admin_request)
        except Exception:
            _log.exception("admin request %s %s failed", request.method, request.path)
            return _text(500, "internal error\n")
        return _Response(
            status=answer.status,
            body=answer.body,
            content_type=answer.content_type,
            headers=answer.headers,
            stream=answer.stream,
        )

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stream: AsyncIterator[bytes],
    ) -> None:
        """Send the chunks of ``stream`` until it ends or the client goes away (anything
        the client sends after its request, or end of input, ends the stream)."""

        async def pump() -> None:
            try:
                async for chunk in stream:
                    writer.write(chunk)
                    async with asyncio.timeout(self._request_timeout):  # a client not reading
                        await writer.drain()
            finally:
                await _close_stream(stream)

        pumping = asyncio.create_task(pump())
        watching = asyncio.create_task(reader.read(1))
        try:
            await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, watching):
                task.cancel()
            results = await asyncio.gather(pumping, watching, return_exceptions=True)
        error = results[0]
        if isinstance(error, Exception) and not isinstance(
            error, (TimeoutError, ConnectionError, OSError)
        ):
            _log.error("admin stream failed", exc_info=error)

    async def _close(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, linger: bool
    ) -> None:
        """Close the connection; with ``linger``, first let the client read our answer.

        Closing a socket with unread input makes the kernel send RST, which can destroy the
        response before the client reads it.  So after an early answer (400, 431, 503) we
        half-close and discard what the client still sends, for a bounded time and amount.
        """
        try:
            if linger and writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
                async with asyncio.timeout(_LINGER_SECONDS):
                    discarded = 0
                    while discarded <= _MAX_DISCARDED_BODY:
                        chunk = await reader.read(4096)
                        if not chunk:
                            break
                        discarded += len(chunk)
        except (TimeoutError, ConnectionError, ValueError, OSError):
            pass
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _route(self, request: _Request) -> _Response:
        if request.method not in ("GET", "HEAD"):
            return _text(405, "method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        if request.path == "/healthz":
            return _text(200, "ok\n")
        if request.path == "/readyz":
            return await self._ready()
        if request.path == "/metrics":
            return self._metrics()
        return _text(404, "not found\n")

    def _metrics(self) -> _Response:
        try:
            body = prometheus_client.generate_latest(self._registry)
        except Exception:
            _log.exception("collecting metrics failed")
            return _text(500, "collecting metrics failed\n")
        return _Response(body=body, content_type=prometheus_client.CONTENT_TYPE_LATEST)

    async def _ready(self) -> _Response:
        deadline = asyncio.timeout(self._readiness_timeout)
        try:
            async with deadline:
                result = await self._readiness()
        except TimeoutError:
            if deadline.expired():
                reason = f"readiness check timed out after {self._readiness_timeout:g}s"
            else:
                reason = "readiness check failed: TimeoutError"
            return _text(503, f"not ready: {reason}\n")
        except Exception as exc:
            _log.warning("readiness check raised", exc_info=True)
            reason = f"readiness check failed: {type(exc).__name__}: {exc}"
            return _text(503, f"not ready: {_one_line(reason)}\n")
        if (
            not isinstance(result, tuple)
            or len(result) != 2
            or not isinstance(result[0], bool)
            or not isinstance(result[1], str)
        ):
            return _text(503, f"not ready: readiness check returned {result!r}\n")
        ready, detail = result
        if ready:
            return _text(200, f"ready: {_one_line(detail)}\n")
        return _text(503, f"not ready: {_one_line(detail)}\n")

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        response: _Response,
        *,
        head_only: bool,
        streaming: bool = False,
    ) -> None:
        """Send the head and body; ``streaming``: the head only, without Content-Length
        (the body follows until the connection closes)."""
        reason = http.HTTPStatus(response.status).phrase
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            *(() if streaming else (f"Content-Length: {len(response.body)}",)),
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in response.headers),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only and not streaming:
            writer.write(response.body)
        await writer.drain()


async def _close_stream(stream: AsyncIterator[bytes]) -> None:
    """Close an admin stream (an async generator's ``aclose``), whatever it raises."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            _log.debug("closing an admin stream raised", exc_info=True)
