"""The error contract: every code of the core maps to one exception class with its fields.

The list of codes comes from the core (``ErrorCode::ALL``); a code added there without a row
here fails ``test_every_core_code_has_a_row``.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import durable_streams_client as ds
from durable_streams_client import _native

URL = "http://127.0.0.1:1/v1/stream/example"
WAIT = {"retry_after": 1.5}
# Answers whose meaning is in headers, not in a body the client keeps.
WITHOUT_SERVER_MESSAGE = {"STREAM_CLOSED", "STALE_EPOCH", "SEQUENCE_GAP"}

# code -> (class, status, retryable, extra attributes)
CONTRACT: dict[str, tuple[type[ds.DurableStreamError], int | None, bool, dict[str, Any]]] = {
    "NOT_FOUND": (ds.StreamNotFoundError, 404, False, {}),
    "CONFLICT_EXISTS": (ds.StreamExistsError, 409, False, {}),
    "CONFLICT": (ds.ConflictError, 409, False, {}),
    "CONFLICT_SEQ": (ds.SeqConflictError, 409, False, {}),
    "STREAM_CLOSED": (ds.StreamClosedError, 409, False, {"final_offset": "0000000000000042"}),
    "BAD_REQUEST": (ds.BadRequestError, 400, False, {}),
    "UNAUTHORIZED": (ds.UnauthorizedError, 401, False, {}),
    "FORBIDDEN": (ds.ForbiddenError, 403, False, {}),
    "GONE": (ds.GoneError, 410, False, {}),
    "PAYLOAD_TOO_LARGE": (ds.PayloadTooLargeError, 413, False, {}),
    "RATE_LIMITED": (ds.RateLimitedError, 429, True, WAIT),
    "BUSY": (ds.ServerError, 503, True, WAIT),
    "SERVER_ERROR": (ds.ServerError, 500, True, {"retry_after": None}),
    "UNEXPECTED_STATUS": (ds.DurableStreamError, 418, False, {}),
    "STALE_EPOCH": (
        ds.StaleEpochError,
        403,
        False,
        {"producer_id": "writer-1", "epoch": 3, "current_epoch": 7},
    ),
    "SEQUENCE_GAP": (ds.SequenceGapError, 409, False, {"expected_seq": 5, "received_seq": 9}),
    "PRODUCER_SESSION_CONFLICT": (
        ds.ProducerSessionConflictError,
        None,
        False,
        {"producer_id": "agent-7", "epoch": 3, "server_seq": 41},
    ),
    "NETWORK_ERROR": (ds.NetworkError, None, True, {}),
    "TIMEOUT": (ds.StreamTimeoutError, None, True, {}),
    "PARSE_ERROR": (ds.ParseError, None, False, {}),
    "INVALID_ARGUMENT": (ds.InvalidArgumentError, None, False, {}),
    "ALREADY_CONSUMED": (ds.AlreadyConsumedError, None, False, {}),
    "ALREADY_CLOSED": (ds.AlreadyClosedError, None, False, {}),
    "CANCELLED": (ds.DurableStreamError, None, False, {}),
    "BUFFER_FULL": (
        ds.BufferFullError,
        None,
        False,
        {"requested": 10, "buffered": 60, "limit": 64},
    ),
    "FENCED": (ds.FencedError, 409, False, {"subscription_code": "FENCED"}),
    "ALREADY_CLAIMED": (
        ds.AlreadyClaimedError,
        409,
        False,
        {"subscription_code": "ALREADY_CLAIMED", "current_holder": "worker-2"},
    ),
    "NO_PENDING_WORK": (
        ds.NoPendingWorkError,
        409,
        False,
        {"subscription_code": "NO_PENDING_WORK"},
    ),
    "INVALID_SIGNATURE": (ds.InvalidSignatureError, None, False, {"check": "bad_signature"}),
}


def test_every_core_code_has_a_row() -> None:
    codes = _native._error_codes()
    assert len(codes) == len(set(codes))
    missing = sorted(set(codes) - set(CONTRACT))
    assert not missing, f"core error codes without a Python mapping: {missing}"
    stale = sorted(set(CONTRACT) - set(codes))
    assert not stale, f"rows for codes the core no longer has: {stale}"


@pytest.mark.parametrize("code", sorted(CONTRACT))
def test_code_maps_to_its_class_and_fields(code: str) -> None:
    cls, status, retryable, extra = CONTRACT[code]
    err = _native._error_for_code(code)
    assert type(err) is cls, f"{code}: {type(err).__name__}"
    assert isinstance(err, ds.DurableStreamError)
    assert (err.code, err.status, err.retryable) == (code, status, retryable)
    carries_message = status is not None and code not in WITHOUT_SERVER_MESSAGE
    assert err.server_message == ("server says no" if carries_message else None)
    for name, value in extra.items():
        assert getattr(err, name) == value, f"{code}.{name}"
    # Public names, not the private module, in tracebacks and reprs.
    assert type(err).__module__ == "durable_streams_client"
    assert repr(err).startswith(f"{cls.__name__}(")
    assert str(err) == err.message
    assert err.message
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls
    assert str(again) == str(err)


def test_builtin_families() -> None:
    assert isinstance(_native._error_for_code("NETWORK_ERROR"), ConnectionError)
    assert isinstance(_native._error_for_code("TIMEOUT"), TimeoutError)
    assert isinstance(_native._error_for_code("INVALID_ARGUMENT"), ValueError)
    for code in ("FENCED", "ALREADY_CLAIMED", "NO_PENDING_WORK"):
        err = _native._error_for_code(code)
        assert isinstance(err, ds.SubscriptionError)
        assert isinstance(err, ds.ConflictError)
    with pytest.raises(ValueError, match="NO_SUCH_CODE"):
        _native._error_for_code("NO_SUCH_CODE")


def test_traceback_names_the_public_class() -> None:
    import traceback

    err = _native._error_for_code("NOT_FOUND")
    text = "".join(traceback.format_exception_only(type(err), err))
    assert text.startswith("durable_streams_client.StreamNotFoundError: stream not found: ")
    assert "_errors" not in text
