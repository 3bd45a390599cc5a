"""The import rules that keep the architecture visible (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gateway"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "translate").glob("*.py")), ids=str)
def test_translate_is_free_of_io(path: Path) -> None:
    """translate/ imports no asyncio, websockets, state, session, transport or metrics."""
    forbidden = ("asyncio", "websockets", "gateway.state", "gateway.session",
                 "gateway.transport", "gateway.metrics", "sqlite3", "socket")  # fmt: skip
    bad = {name for name in _imports(path) if name.startswith(forbidden)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "sim").glob("*.py")), ids=str)
def test_simulators_share_no_code_with_the_gateway(path: Path) -> None:
    """A test peer must not share the code it checks: sim/ imports only gateway.sim."""
    bad = {n for n in _imports(path) if n.startswith("gateway") and not n.startswith("gateway.sim")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "session").glob("*.py")), ids=str)
def test_session_never_touches_websockets(path: Path) -> None:
    """Sessions see links as Protocols; websockets stays in transport/."""
    bad = {n for n in _imports(path) if n.startswith(("websockets", "gateway.transport"))}
    assert not bad, f"{path.name} imports {sorted(bad)}"
