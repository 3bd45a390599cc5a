"""The ``ocpp-gateway bench`` sub-command: options in, a table (and JSON) out, an exit code.

Layer: bench. ``gateway.cli`` parses argv and calls :func:`main`.

Exit codes: 0 with figures; 1 when the run broke (a party died, a CALLERROR, a
timeout, a message the CSMS never received), with the reason and *no* figures; 2 for
unusable options; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gateway.bench.options import BenchOptions, options_from
from gateway.bench.parties import BenchError, Parties
from gateway.bench.procfs import describe_machine
from gateway.bench.report import render
from gateway.bench.results import BenchResult
from gateway.bench.runner import Bench, check_file_budget

__all__ = ["main", "measure"]


def measure(options: BenchOptions, *, say: bool = True) -> BenchResult:
    """One complete run; :class:`BenchError` when it cannot give trustworthy figures.
    Every process it started is stopped before it returns or raises."""
    check_file_budget(options)
    with tempfile.TemporaryDirectory(prefix="ocpp-gateway-bench-") as workdir:
        parties = Parties(Path(workdir))
        try:
            return Bench(options, describe_machine(), parties, say=say).run()
        finally:
            parties.close()


def main(namespace: argparse.Namespace) -> int:
    try:
        options = options_from(namespace)
    except ValueError as exc:
        print(f"ocpp-gateway bench: {exc}", file=sys.stderr)
        return 2
    try:
        result = measure(options)
    except BenchError as exc:
        print(f"ocpp-gateway bench: FAILED, no figures reported: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ocpp-gateway bench: interrupted", file=sys.stderr)
        return 130
    print()
    print(render(result))
    if options.json_path is not None:
        Path(options.json_path).write_text(json.dumps(result.to_json(), indent=2) + "\n")
        print(f"\nfigures written to {options.json_path}")
    return 0
