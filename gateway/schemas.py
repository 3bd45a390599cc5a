"""Validation against the official OCPP 1.6 and 2.0.1 JSON schemas.

Layer: bottom; imports ``gateway.errors`` and ``gateway.ocppj`` only. No I/O besides
reading the schema files shipped in the ``ocpp`` package, once per schema.

Validators are compiled with fastjsonschema on first use and cached for the life of the
process: DESIGN.md measured the ``ocpp`` package's jsonschema path at 0.09x of a bare
proxy and compiled validators at 0.59x, so only compiled ones touch the hot path.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Callable
from enum import StrEnum
from typing import Final

import fastjsonschema

from gateway.errors import ErrorCode, InvalidPayload
from gateway.ocppj import Payload, Version


class Kind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


_SCHEMA_DIRS: Final = {Version.V16: "v16", Version.V201: "v201"}

# Which CALLERROR a failed schema rule becomes (OCPP-J 1.6 §4.2.3 definitions).
_RULE_CODES: Final[dict[str, ErrorCode]] = {
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "format": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
}


def _schema_file(version: Version, action: str, kind: Kind) -> str:
    if kind is Kind.RESPONSE:
        return f"{action}Response.json"
    return f"{action}.json" if version is Version.V16 else f"{action}Request.json"


@functools.cache
def known_actions(version: Version) -> frozenset[str]:
    """Every action the official schemas of ``version`` define (both directions)."""
    root = importlib.resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas"
    names = (entry.name.removesuffix(".json") for entry in root.iterdir())
    if version is Version.V16:
        return frozenset(n for n in names if not n.endswith("Response"))
    return frozenset(n.removesuffix("Request") for n in names if n.endswith("Request"))


@functools.cache
def _validator(version: Version, action: str, kind: Kind) -> Callable[[Payload], object]:
    path = (
        importlib.resources.files("ocpp")
        / _SCHEMA_DIRS[version]
        / "schemas"
        / _schema_file(version, action, kind)
    )
    schema = json.loads(path.read_text(encoding="utf-8"))
    # fastjsonschema's regexes need no network; "$schema" picks the draft (04 / 06).
    # use_default=False: validation must not write schema defaults into the payload
    # (a 1.6 sample would gain format/location/unit fields the charger never sent).
    validator: Callable[[Payload], object] = fastjsonschema.compile(schema, use_default=False)
    return validator


def validate(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """Check ``payload`` against the official schema.

    Raises:
        InvalidPayload: naming the failing field, with the code for the failed rule.
        KeyError: the action has no schema in ``version`` (callers check
            :func:`known_actions` first).
    """
    if action not in known_actions(version):
        raise KeyError(action)
    try:
        _validator(version, action, kind)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_CODES.get(exc.rule or "", ErrorCode.FORMAT_VIOLATION)
        where = (exc.name or "data").removeprefix("data").lstrip(".") or "payload"
        raise InvalidPayload(f"{action} {kind}: {where}: {exc.message}", code=code) from None
