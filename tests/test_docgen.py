"""The generated docs match the code they describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.docgen import DOCS

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", sorted(DOCS))
def test_generated_doc_is_up_to_date(name: str) -> None:
    """docs/<name> equals what `python -m gateway.docgen` writes now."""
    assert (DOCS_DIR / name).read_text(encoding="utf-8") == DOCS[name](), (
        f"docs/{name} is stale: run `python -m gateway.docgen`"
    )


def test_coverage_lists_every_route_as_translated() -> None:
    """Each dispatch-table row appears as translated in the coverage table."""
    text = DOCS["coverage.md"]()
    for action in ("BootNotification", "Heartbeat", "Authorize"):
        assert f"| {action} | {action} | translated" in text
    assert "| StartTransaction | TransactionEvent | session:" in text
    assert "| GetVariables | GetConfiguration | session:" in text
    assert "| TriggerMessage | TriggerMessage / ExtendedTriggerMessage | translated |" in text
    assert "| SetNetworkProfile | – | NotSupported |" in text
