"""The generated docs match the code they describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from ocpp.v16.enums import ChargePointErrorCode

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


def test_mappings_page_names_every_error_code() -> None:
    """Every 1.6 ChargePointErrorCode has a row in the generated error code table."""
    text = DOCS["mappings.md"]()
    for code in ChargePointErrorCode:
        assert f"\n| {code.value} | " in text, f"{code.value} missing from docs/mappings.md"


def test_mappings_page_shows_the_shipped_rules() -> None:
    """The idToken rules (with table-safe pipes), their default and the quirk flags appear."""
    text = DOCS["mappings.md"]()
    assert "| 1 | `[0-9A-Fa-f]{8}\\|[0-9A-Fa-f]{14}` | ISO14443 |" in text
    assert "| otherwise | – | Local |" in text
    for flag in ("numeric_values", "unit_spelling", "energy_kwh_as_wh"):
        assert f"| `{flag}` | " in text
    assert "[device-model.md](device-model.md)" in text
