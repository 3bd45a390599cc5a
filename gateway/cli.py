"""The ``ocpp-gateway`` command: serve, demo, check-config, example-csms, bench, and the
commands of their own modules: credentials and csr (``gateway.credentials_cli``) and
route (``gateway.route_cli``).

Layer: top. With config.py, the only place that reads argv and the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gateway import __version__
from gateway.bench.options import add_bench_arguments
from gateway.collector import tune_for_serving
from gateway.config import (
    ConfigError,
    Settings,
    add_settings_arguments,
    settings_from_namespace,
    split_host_port,
)
from gateway.credentials_cli import add_credentials_parser, add_csr_parser, credentials_or_csr
from gateway.logs import configure_logging
from gateway.mappings import MappingError, load_tables
from gateway.route_cli import add_route_parser, route
from gateway.state import StateError, open_store

log = logging.getLogger("gateway.cli")
T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when installed (DESIGN.md measured 1.3-1.8x), else asyncio."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve(settings: Settings) -> int:
    from gateway.app import Gateway  # noqa: PLC0415 - keep `--help` fast

    gateway = Gateway(settings)
    await gateway.start()
    tune_for_serving()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down: closing chargers with 1001 and flushing state")
    await gateway.stop()
    return 0


def _check_config(settings: Settings) -> int:
    open_store(settings.state)  # the URL names a store this gateway has
    tables = load_tables(Path(settings.mappings) if settings.mappings else None)
    print(
        f"configuration OK: listen {settings.listen}, upstream {settings.upstream}, "
        f"state {settings.state.split('://', 1)[0]}, metrics {settings.metrics or 'off'}"
    )
    print(
        f"mapping tables OK: {len(tables.error_events)} error codes, "
        f"{len(tables.id_tokens.rules)} idToken rules, "
        f"{len(tables.vendor_id_tokens)} vendor overrides"
    )
    rows = tables.device_model.variables
    vendors = ", ".join(
        f"{v.vendor}/{v.model or '*'} ({len(v.variables)} variables)"
        for v in tables.vendor_device_models
    )
    print(
        f"device model OK: {len(rows)} variables, {sum(r.key is not None for r in rows)} "
        f"from 1.6 keys; vendor files: {vendors or 'none'}"
    )
    _check_security_files(settings)
    return 0


def _check_security_files(settings: Settings) -> None:
    """Load what ``serve`` loads at start-up: TLS files, keys, password hashes
    (ConfigError names the file or the charger, never a secret)."""
    # Imported here: keep `--help` fast (ssl contexts, cryptography).
    from gateway.state import open_store  # noqa: PLC0415
    from gateway.transport.charger_auth import ChargerAuthenticator  # noqa: PLC0415
    from gateway.transport.server import server_tls_context  # noqa: PLC0415
    from gateway.transport.upstream_security import UpstreamSecurityFactory  # noqa: PLC0415

    ChargerAuthenticator(settings, open_store(settings.state))  # parses every password_hash
    if settings.tls_cert is not None and settings.tls_key is not None:
        server_tls_context(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    UpstreamSecurityFactory(settings)
    profile = settings.security_profile
    print(
        f"security OK: charger listener {'wss' if settings.tls else 'ws'}, profile {profile}, "
        f"{len(settings.chargers)} [chargers] tables"
    )


_EXAMPLE_CSMS_KEEP = 1000  # received messages kept in memory by the long-running example CSMS


async def _example_csms(host: str, port: int) -> int:
    """Run the sim CSMS (accepts every boot, answers what a station sends) until SIGTERM.

    Schema violations are logged by the sim as warnings when they happen.
    """
    from gateway.sim.csms import CsmsSim  # noqa: PLC0415 - keep `--help` fast

    csms = CsmsSim(host, port)
    await csms.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"example CSMS (OCPP 2.0.1 test/demo peer, not a production CSMS) listening on "
        f"ws://{shown}:{csms.port}/ocpp",
        flush=True,
    )
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await stop.wait()
        # The sim records everything for tests (and logs violations as it finds them);
        # under docker compose it may run for days, so keep memory bounded.
        csms.violations.clear()
        del csms.messages[:-_EXAMPLE_CSMS_KEEP]
        del csms.connections[:-_EXAMPLE_CSMS_KEEP]
        del csms.security_errors[:-_EXAMPLE_CSMS_KEEP]
    log.info("example CSMS: stopping")
    await csms.stop()
    return 0


def _host_port(text: str) -> tuple[str, int]:
    try:
        return split_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-gateway",
        description="OCPP 1.6J to OCPP 2.0.1 gateway: presents 1.6J chargers to a 2.0.1 CSMS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    add_settings_arguments(serve)
    check = commands.add_parser("check-config", help="validate configuration and mapping tables")
    add_settings_arguments(check)
    demo = commands.add_parser(
        "demo", help="built-in CSMS + gateway + simulated 1.6 chargers, with a live view"
    )
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    demo.add_argument("--chargers", type=int, default=3, help="simulated chargers (default 3)")
    demo.add_argument(
        "--state-dir",
        default=None,
        help="directory for the SQLite state (default: a temporary one)",
    )
    demo.add_argument("--log-level", default="warning", help="gateway log level (default warning)")
    csms = commands.add_parser(
        "example-csms",
        help="run the built-in OCPP 2.0.1 CSMS simulator (a test/demo peer, not a real CSMS)",
        description="Run the built-in OCPP 2.0.1 CSMS simulator as an upstream for the "
        "gateway in demos and tests (docker compose uses it). It accepts every "
        "BootNotification, authorizes every idToken, answers the other messages a "
        "station sends and logs schema violations; it keeps no state on disk. It is a "
        "test/demo peer, NOT a production CSMS. Stops on SIGTERM or SIGINT.",
    )
    csms.add_argument(
        "--listen",
        type=_host_port,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="websocket address to listen on (default 127.0.0.1:8080; any URL path, the "
        "last segment is the station id)",
    )
    csms.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level (default info)",
    )
    bench = commands.add_parser(
        "bench",
        help="load benchmark: gateway vs direct and a naive proxy (throughput, latency, memory)",
        description="Start a stub CSMS, the gateway, a naive proxy and load generators on "
        "loopback, each in its own process, and measure round trips/s at saturation, added "
        "latency at a paced rate, memory per idle charger and connect+boot time. See "
        "docs/performance.md.",
    )
    add_bench_arguments(bench)
    add_credentials_parser(commands)
    add_csr_parser(commands)
    add_route_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        from gateway.bench.command import main as bench  # noqa: PLC0415 - keep `--help` fast

        return bench(args)
    if args.command == "demo":
        from gateway.demo import run_demo  # noqa: PLC0415

        configure_logging(level=args.log_level, fmt="text", stream=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            return run_event_loop(
                run_demo(duration=args.duration, chargers=args.chargers, state_dir=args.state_dir)
            )
        return 130
    if args.command in ("credentials", "csr"):
        return credentials_or_csr(args)
    if args.command == "route":
        return route(args)
    if args.command == "example-csms":
        configure_logging(level=args.log_level, fmt="text", stream=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            return run_event_loop(_example_csms(*args.listen))
        return 130
    try:
        settings = settings_from_namespace(args, os.environ)
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        if args.command == "check-config":
            return _check_config(settings)
        settings.require_upstream()
        open_store(settings.state)
        # The tables are read again at start; this run names a broken file and entry
        # with exit 2 like check-config, instead of a traceback from inside the loop.
        load_tables(Path(settings.mappings) if settings.mappings else None)
    except (ConfigError, MappingError, StateError) as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return 2
    return run_event_loop(_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
