"""Tests for gateway.errors: every GatewayError carries the CALLERROR code it becomes."""

from __future__ import annotations

import pytest

from gateway.errors import (
    ActionNotSupported,
    CallTimeout,
    ErrorCode,
    FrameError,
    GatewayError,
    InvalidPayload,
    NotRegistered,
    Overloaded,
    PeerUnavailable,
    RemoteCallError,
    UnknownAction,
    UnmappedValue,
)

# The class codes STYLE.md and the class docstrings promise.
CLASS_CODES = [
    (GatewayError, ErrorCode.INTERNAL_ERROR),
    (FrameError, ErrorCode.RPC_FRAMEWORK_ERROR),
    (UnknownAction, ErrorCode.NOT_IMPLEMENTED),
    (ActionNotSupported, ErrorCode.NOT_SUPPORTED),
    (InvalidPayload, ErrorCode.FORMAT_VIOLATION),
    (UnmappedValue, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    (NotRegistered, ErrorCode.SECURITY_ERROR),
    (Overloaded, ErrorCode.GENERIC_ERROR),
    (PeerUnavailable, ErrorCode.INTERNAL_ERROR),
    (CallTimeout, ErrorCode.INTERNAL_ERROR),
]


@pytest.mark.parametrize(
    ("error_class", "code"), [pytest.param(c, code, id=c.__name__) for c, code in CLASS_CODES]
)
def test_each_error_class_declares_its_callerror_code(
    error_class: type[GatewayError], code: ErrorCode
) -> None:
    """An instance built with only a description carries its class's code."""
    error = error_class("what went wrong")
    assert error.code is code
    assert error.description == "what went wrong"
    assert str(error) == "what went wrong"
    assert error.details == {}


def test_every_gateway_error_subclass_has_a_test_row() -> None:
    """A new error class cannot be added without deciding (and testing) its code."""
    tested = {cls for cls, _ in CLASS_CODES} | {RemoteCallError}
    assert set(GatewayError.__subclasses__()) | {GatewayError} == tested


def test_frame_error_code_override_applies_to_that_instance_only() -> None:
    """FrameError(code=...) changes the instance's code, not the class default."""
    special = FrameError("bad type", unique_id="u1", code=ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED)
    plain = FrameError("not json")
    assert special.code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED
    assert special.unique_id == "u1"
    assert plain.code is ErrorCode.RPC_FRAMEWORK_ERROR
    assert plain.unique_id is None
    assert FrameError.code is ErrorCode.RPC_FRAMEWORK_ERROR


def test_invalid_payload_code_override_follows_the_failed_rule() -> None:
    """InvalidPayload(code=...) carries the rule's code, leaving the class default alone."""
    error = InvalidPayload("missing idTag", code=ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION)
    assert error.code is ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    assert InvalidPayload.code is ErrorCode.FORMAT_VIOLATION


def test_remote_call_error_relays_code_and_details() -> None:
    """A CALLERROR from the other side keeps its code, description and details."""
    error = RemoteCallError(ErrorCode.SECURITY_ERROR, "not accepted", {"reason": "Pending"})
    assert isinstance(error, GatewayError)
    assert error.code is ErrorCode.SECURITY_ERROR
    assert error.description == "not accepted"
    assert error.details == {"reason": "Pending"}


def test_details_default_is_not_shared_between_instances() -> None:
    """Each error gets its own details dict, so mutating one cannot leak into another."""
    first, second = GatewayError("a"), GatewayError("b")
    first.details["k"] = "v"
    assert second.details == {}
