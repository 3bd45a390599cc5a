"""The generated docs match the code they describe."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from ocpp.v16.enums import ChargePointErrorCode

from gateway.docgen import (
    DOCS,
    CoversMark,
    coverage_markdown,
    coverage_rows,
    covered_rows,
    find_covers_marks,
    golden_counts,
)
from gateway.translate.dispatch import ROUTES, SESSION_ROUTES
from gateway.translate.types import Direction

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
INTEGRATION = Path(__file__).resolve().parent / "integration"
CHARGER_TO_CSMS, CSMS_TO_CHARGER = Direction.CHARGER_TO_CSMS, Direction.CSMS_TO_CHARGER

#: Translated or session rows that no integration test drives yet; each has golden pairs.
#: An entry must go once a test marked ``@pytest.mark.covers`` exists (a test checks it),
#: and a new route cannot be added here instead of writing its integration test.
KNOWN_WITHOUT_INTEGRATION_TEST: Final[frozenset[tuple[Direction, str]]] = frozenset()


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
    assert "| TriggerMessage | TriggerMessage / ExtendedTriggerMessage" in text
    assert "| GetConfiguration | – | NotSupported |" in text  # 1.6, sent the wrong way


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


# --- the tests column of docs/coverage.md ----------------------------------------------


def test_every_handled_row_has_an_integration_test() -> None:
    """Each translated or session row is driven through a real gateway by a marked test."""
    rows = coverage_rows()
    handled = {(row.direction, row.action) for row in rows if row.supported}
    assert handled == set(ROUTES) | set(SESSION_ROUTES)
    untested = {(row.direction, row.action) for row in rows if row.supported and not row.tests}
    missing = [f"{d.value}:{a}" for d, a in sorted(untested - KNOWN_WITHOUT_INTEGRATION_TEST)]
    assert not missing, (
        f"no integration test marked @pytest.mark.covers(...) drives {missing}: write one "
        "(tests/integration), then run `python -m gateway.docgen`"
    )


def test_the_allowlist_names_only_handled_rows_still_without_an_integration_test() -> None:
    """KNOWN_WITHOUT_INTEGRATION_TEST shrinks: a row that got its test leaves the list."""
    rows = {(row.direction, row.action): row for row in coverage_rows()}
    for key in sorted(KNOWN_WITHOUT_INTEGRATION_TEST):
        assert key in rows and rows[key].supported, f"{key} is not a translated or session row"
        assert not rows[key].tests, f"{key} has {rows[key].tests}: remove it from the allowlist"


def test_every_covers_mark_names_a_real_action_of_the_right_version() -> None:
    """No typo, no action of the wrong version: each argument names at least one row."""
    marks = find_covers_marks(INTEGRATION)
    assert len(marks) >= 100, "the marks were not found (a wrong path tests nothing)"
    wrong = [
        (mark.test_id, name) for mark in marks for name in mark.names if not covered_rows(name)
    ]
    assert not wrong, f"these covers arguments name no action the sender's version has: {wrong}"


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        pytest.param("GetVariables", {(CSMS_TO_CHARGER, "GetVariables")}, id="2.0.1-only"),
        pytest.param("StartTransaction", {(CHARGER_TO_CSMS, "StartTransaction")}, id="1.6-only"),
        pytest.param(
            "DataTransfer",
            {(CHARGER_TO_CSMS, "DataTransfer"), (CSMS_TO_CHARGER, "DataTransfer")},
            id="plain-is-both-directions",
        ),
        pytest.param(
            "csms_to_charger:DataTransfer", {(CSMS_TO_CHARGER, "DataTransfer")}, id="qualified"
        ),
        pytest.param("charger_to_csms:GetVariables", set(), id="wrong-version"),
        pytest.param("csms_to_charger:StartTransaction", set(), id="wrong-version-1.6"),
        pytest.param("GetVariable", set(), id="typo"),
        pytest.param("to_charger:Reset", set(), id="unknown-direction"),
        pytest.param("csms_to_charger:", set(), id="no-action"),
    ],
)
def test_a_covers_argument_names_rows_of_the_senders_version(
    name: str, rows: set[tuple[Direction, str]]
) -> None:
    """Qualified: that direction, if its sender's version has the action; plain: every one."""
    assert covered_rows(name) == rows


MARKED_MODULE = """
import pytest
from pytest import mark

pytestmark = [pytest.mark.integration, pytest.mark.covers("Heartbeat")]
CASES = [pytest.param(1, marks=pytest.mark.covers("csms_to_charger:Reset")), 2]


@pytest.mark.covers("GetVariables", "SetVariables")
@pytest.mark.parametrize("n", [1])
async def test_plain(n):
    pass


@pytest.mark.parametrize("n", CASES)
def test_table(n):
    pass


@mark.covers(ACTION)
class TestGroup:
    def test_method(self):
        pass

    def helper(self):
        pass


def not_a_test():
    pass
"""


def test_marks_are_read_from_decorators_classes_tables_and_pytestmark(tmp_path: Path) -> None:
    """The source is parsed, not imported: marks anywhere pytest applies them are found,
    and an argument that is not a string literal is reported as written (it names no row)."""
    (tmp_path / "test_marked.py").write_text(MARKED_MODULE)
    (tmp_path / "helpers.py").write_text('@pytest.mark.covers("Reset")\ndef test_no(): pass\n')
    assert find_covers_marks(tmp_path) == [
        CoversMark(
            "test_marked.py", "test_plain", 11, ("Heartbeat", "GetVariables", "SetVariables")
        ),
        CoversMark("test_marked.py", "test_table", 16, ("Heartbeat", "csms_to_charger:Reset")),
        CoversMark("test_marked.py", "TestGroup::test_method", 22, ("Heartbeat", "<ACTION>")),
    ]
    assert covered_rows("<ACTION>") == frozenset()


def test_golden_pairs_are_counted_per_direction(tmp_path: Path) -> None:
    """tests/data/<Action>/*.json, by the file's own "direction"."""
    for name, direction in [
        ("a", "csms_to_charger"),
        ("b", "charger_to_csms"),
        ("c", "csms_to_charger"),
    ]:
        (tmp_path / "DataTransfer").mkdir(exist_ok=True)
        (tmp_path / "DataTransfer" / f"{name}.json").write_text(f'{{"direction": "{direction}"}}')
    assert golden_counts(tmp_path) == {
        (CSMS_TO_CHARGER, "DataTransfer"): 2,
        (CHARGER_TO_CSMS, "DataTransfer"): 1,
    }


def test_the_tests_column_names_golden_pairs_and_marked_tests() -> None:
    """A row shows its golden count, then its integration tests as file::test."""
    text = DOCS["coverage.md"]()
    assert "| received | sent on | handling | tests |" in text
    (row,) = [
        line for line in text.splitlines() if line.startswith("| GetLocalListVersion | GetLocal")
    ]
    assert "golden ×" in row
    assert "`test_message_set.py::test_get_local_list_version`" in row
    (wrong_way,) = [line for line in text.splitlines() if line.startswith("| GetConfiguration |")]
    test = "test_bad_input.py::test_a_1_6_action_without_a_2_0_1_route_is_not_supported"
    assert wrong_way.endswith(f"| NotSupported | `{test}` |")


def test_an_installed_gateway_without_tests_shows_a_dash(tmp_path: Path) -> None:
    """No tests/ beside the package (a wheel): every tests cell is "–", nothing crashes."""
    text = coverage_markdown(tmp_path / "absent")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "received" not in line]
    assert rows
    assert all(line.endswith("| – |") for line in rows)
