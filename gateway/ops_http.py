"""The operations HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

A deliberately tiny HTTP/1.1 server on ``asyncio.start_server``: one request per connection
(always ``Connection: close``), GET and HEAD only, no request bodies, bounded header size and
read time, and every failure confined to the connection that caused it.

This module must not import anything from the rest of the gateway (session, translate,
transport, state, config): the caller hands in the Prometheus registry and a readiness
callback.  No third-party web framework either; standard library and prometheus_client only.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import prometheus_client

__all__ = ["MAX_HEADER_BYTES", "OpsServer", "Readiness"]

_log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[tuple[bool, str]]]
"""Async callback answering ``(ready, detail)`` for ``/readyz``."""

MAX_HEADER_BYTES = 16 * 1024
_MAX_DISCARDED_BODY = 64 * 1024
_LINGER_SECONDS = 1.0
_TEXT = "text/plain; charset=utf-8"
_REQUEST_LINE = re.compile(
    rb"(?P<method>[!#$%&'*+.^_`|~0-9A-Za-z-]+) (?P<target>[^\s]+) HTTP/1\.[0-9]\r?\n"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    method: str = "GET"
    path: str = "/"
    content_length: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


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
    path = target.partition("?")[0].partition("#")[0]

    total = len(line)
    content_length = 0
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
        if name.lower() == b"content-length":
            text = value.strip()
            if not text.isdigit():
                return _text(400, "bad Content-Length\n")
            content_length = int(text)
    return _Request(method=method, path=path, content_length=content_length)


class OpsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (port 0 = any free).

    ``readiness_timeout`` bounds the readiness callback (503 when exceeded),
    ``request_timeout`` drops clients that do not deliver a complete request head (or do not
    read the answer) in time, ``max_connections`` answers 503 beyond that many connections.
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
    ) -> None:
        self._host = host
        self._requested_port = port
        self._registry = registry
        self._readiness = readiness
        self._readiness_timeout = readiness_timeout
        self._request_timeout = request_timeout
        self._max_connections = max_connections
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
            "ops HTTP server listening on %s:%d (/metrics /healthz /readyz)",
            self._host,
            self.port,
        )

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
        try:
            async with asyncio.timeout(self._request_timeout):
                if len(self._clients) > self._max_connections:
                    busy = _text(503, "too many connections\n")
                    await self._send(writer, busy, head_only=False)
                    return
                request = await _read_request(reader)
                if request is None:
                    return
                if isinstance(request, _Response):
                    await self._send(writer, request, head_only=False)
                    return
                if 0 < request.content_length <= _MAX_DISCARDED_BODY:
                    await reader.readexactly(request.content_length)
                unread_input = request.content_length > _MAX_DISCARDED_BODY
                response = await self._route(request)
                await self._send(writer, response, head_only=request.method == "HEAD")
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
            if task is not None:
                self._clients.discard(task)
            await self._close(reader, writer, linger=unread_input and not self._stopping)

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
    async def _send(writer: asyncio.StreamWriter, response: _Response, *, head_only: bool) -> None:
        reason = http.HTTPStatus(response.status).phrase
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in response.headers),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(response.body)
        await writer.drain()
