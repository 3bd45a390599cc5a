"""A real Redis server for the tests that need one (the store contract suite, replicas).

The ``redis_url`` fixture (session scope) finds one, in this order: ``REDIS_URL`` if
set (it must answer); a server already answering on 127.0.0.1:6379; a private
``redis-server`` started on a free loopback port for the session, with persistence off,
and stopped at the end. Without any, the tests that need it skip on a developer machine
and fail under CI (``CI=true``), so a CI run never passes by skipping them (STYLE.md:
store contract suite). ``.ci/run`` installs Debian's redis-server package.

``redis_prefix`` gives each test its own key prefix and deletes its keys afterwards, so
tests are independent and may run in parallel against one server. ``redis_server()``
starts a private server for tests that need their own (a password, TLS only).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: How long a started redis-server may take to answer, polled this often.
START_BOUND = 20.0
POLL_INTERVAL = 0.05


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def unavailable(message: str) -> None:
    """Skip on a developer machine; fail under CI, where Redis must be there."""
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


def answers(url: str) -> bool:
    """True if a Redis server at ``url`` answers PING (auth included)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def redis_server(directory: Path, *, password: str = "", tls: bool = False) -> Iterator[str]:
    """A private redis-server on a free loopback port (persistence off), for the block:
    requiring ``password`` if one is given; speaking only TLS if ``tls``, with a
    certificate for 127.0.0.1 from a CA made for it. Yields its URL, password included
    (and for TLS ``ssl_ca_certs`` naming that CA's file)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable(
            "no redis-server binary (apt-get install redis-server; see .ci/run), and no "
            "Redis answers on 127.0.0.1:6379 or at REDIS_URL"
        )
        raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises
    port = free_port()
    auth = f":{password}@" if password else ""
    log = directory / f"redis-{port}.log"
    options = ["--requirepass", password] if password else []
    if tls:
        ca, certificate, key = tls_files(directory)
        url = f"rediss://{auth}127.0.0.1:{port}/0?ssl_ca_certs={ca}"
        options += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certificate),
                    "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                    "--tls-auth-clients", "no"]  # fmt: skip
    else:
        url = f"redis://{auth}127.0.0.1:{port}/0"
        options += ["--port", str(port)]
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--logfile", str(log), *options],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _await_start(server, url, log)
        yield url
    finally:
        _stop(server)


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed, as PEM files:
    (CA certificate, server certificate, server key)."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
        signer: ec.EllipticCurvePrivateKey, *, ca: bool,
    ) -> x509.Certificate:  # fmt: skip
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            builder = builder.add_extension(x509.SubjectAlternativeName([address]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("ocpp-gateway test CA", ca_key, None, ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    files = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _await_start(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_BOUND
    while not answers(url):
        if server.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"redis-server ({log.name}) did not start:\n{text[-2000:]}")
        time.sleep(POLL_INTERVAL)


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Redis server that answers (see the module docstring)."""
    explicit = os.environ.get("REDIS_URL")
    if explicit:
        if not answers(explicit):
            pytest.fail("REDIS_URL is set but no Redis server answers there")
        yield explicit
        return
    if answers(DEFAULT_URL):
        yield DEFAULT_URL
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted when the test ends."""
    prefix = f"ocppgw-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=10.0)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
