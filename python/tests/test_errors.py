"""The error contract: every code of the core maps to one exception class with its fields.

The list of codes comes from the core (``ErrorCode::ALL``); a code added there without a row
here fails ``test_every_core_code_has_a_row``.
"""

from __future__ import annotations

import errno
import pickle
import socket
from typing import Any

import pytest
from conftest import inject

import durable_streams_client as ds
from durable_streams_client import _native

URL = "http://127.0.0.1:1/v1/stream/example"
SUBS_URL = "http://127.0.0.1:1/v1/stream/__ds/subscriptions/example"
WAIT = {"retry_after": 1.5}
# Codes whose example concerns a stream URL (the others: producer, client-side and
# subscription errors, whose URL is not the stream's).
WITH_URL = {
    "NOT_FOUND",
    "CONFLICT_EXISTS",
    "CONFLICT",
    "CONFLICT_SEQ",
    "STREAM_CLOSED",
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "GONE",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "BUSY",
    "SERVER_ERROR",
    "UNEXPECTED_STATUS",
    "NETWORK_ERROR",
}
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
    "UNEXPECTED_STATUS": (ds.UnexpectedStatusError, 418, False, {}),
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
    "CANCELLED": (ds.StreamCancelledError, None, False, {}),
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
    # The structured fields every exception has, and the cause chain.
    subscription = code in {"FENCED", "ALREADY_CLAIMED", "NO_PENDING_WORK"}
    expected_url = SUBS_URL if subscription else URL if code in WITH_URL else None
    assert err.url == expected_url, f"{code}.url"
    assert err.attempts is None
    cause = err.__cause__
    if code == "NETWORK_ERROR":
        # The transport's own error, as the builtin it is.
        assert type(cause) is ConnectionRefusedError
        assert cause.errno == errno.ECONNREFUSED
        assert "connection refused" in str(cause)
    elif code == "PARSE_ERROR":
        assert type(cause) is ValueError
        assert "line 1 column 2" in str(cause)
    else:
        assert cause is None, f"{code}: {cause!r}"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls
    assert str(again) == str(err)


@pytest.mark.parametrize("code", sorted(CONTRACT))
def test_a_retried_code_keeps_its_class_and_fields_with_the_last_attempt_as_cause(
    code: str,
) -> None:
    cls, status, retryable, extra = CONTRACT[code]
    plain = _native._error_for_code(code)
    err = _native._error_for_code(code, retried=True)
    assert type(err) is cls, f"{code}: {type(err).__name__}"
    assert isinstance(err, ds.DurableStreamError)
    assert isinstance(plain, ds.DurableStreamError)
    assert (err.code, err.status, err.retryable, err.attempts) == (code, status, retryable, 3)
    assert (err.server_message, err.url) == (plain.server_message, plain.url)
    for name, value in extra.items():
        assert getattr(err, name) == value, f"{code}.{name}"
    assert err.message == f"{plain.message} (gave up after 3 attempts)"
    last = err.__cause__
    assert type(last) is cls
    assert isinstance(last, ds.DurableStreamError)
    assert (last.message, last.attempts) == (plain.message, None)
    assert type(last.__cause__) is type(plain.__cause__)


def test_builtin_families() -> None:
    assert isinstance(_native._error_for_code("NETWORK_ERROR"), ConnectionError)
    assert isinstance(_native._error_for_code("TIMEOUT"), TimeoutError)
    assert isinstance(_native._error_for_code("INVALID_ARGUMENT"), ValueError)
    for code in ("FENCED", "ALREADY_CLAIMED", "NO_PENDING_WORK"):
        err = _native._error_for_code(code)
        assert isinstance(err, ds.SubscriptionError)
        assert isinstance(err, ds.ConflictError)
    for code in ("ALREADY_CONSUMED", "ALREADY_CLOSED", "BUFFER_FULL"):
        assert isinstance(_native._error_for_code(code), ds.InvalidStateError)
    with pytest.raises(ValueError, match="NO_SUCH_CODE"):
        _native._error_for_code("NO_SUCH_CODE")


def test_traceback_names_the_public_class() -> None:
    import traceback

    err = _native._error_for_code("NOT_FOUND")
    text = "".join(traceback.format_exception_only(type(err), err))
    assert text.startswith("durable_streams_client.StreamNotFoundError: stream not found: ")
    assert "_errors" not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


FAST = ds.RetryPolicy(initial_delay=0.005, max_delay=0.01, multiplier=2, max_retries=2)


def test_cause_chain_of_a_refused_connection() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/stream/nothing-listens"
    # Without retries: NetworkError -> ConnectionRefusedError.
    with pytest.raises(ds.NetworkError) as info:
        ds.DurableStream(url, retry=ds.RetryPolicy.none()).head()
    err = info.value
    assert (err.code, err.status, err.retryable, err.attempts) == (
        "NETWORK_ERROR",
        None,
        True,
        None,
    )
    assert err.url == url
    root = err.__cause__
    assert type(root) is ConnectionRefusedError
    assert root.errno == errno.ECONNREFUSED
    assert "refused" in str(root).lower()
    assert root.__cause__ is None

    # With retries: NetworkError (gave up after 3 attempts) -> the last attempt's
    # NetworkError -> ConnectionRefusedError. A read goes the same way.
    with pytest.raises(ds.NetworkError) as info:
        ds.DurableStream(url, retry=FAST).head()
    err = info.value
    assert (err.code, err.attempts) == ("NETWORK_ERROR", 3)
    assert err.message.endswith("(gave up after 3 attempts)")
    last = err.__cause__
    assert type(last) is ds.NetworkError
    assert (last.code, last.attempts, last.url) == ("NETWORK_ERROR", None, url)
    assert not last.message.endswith("attempts)")
    assert type(last.__cause__) is ConnectionRefusedError

    with pytest.raises(ds.NetworkError) as info:
        ds.stream(url, live=False, retry=FAST).read_bytes()
    assert info.value.attempts == 3
    assert type(info.value.__cause__) is ds.NetworkError
    assert type(info.value.__cause__.__cause__) is ConnectionRefusedError


def test_cause_chain_of_a_503_until_the_retries_run_out(url: str) -> None:
    s = ds.DurableStream(url, retry=FAST)
    s.create()
    inject(url, status=503, count=10, method="HEAD")
    with pytest.raises(ds.ServerError) as info:
        s.head()
    err = info.value
    # Still BUSY with the 503's fields; the last attempt's 503 is the cause.
    assert (err.code, err.status, err.retryable, err.attempts) == ("BUSY", 503, True, 3)
    assert err.url == url
    last = err.__cause__
    assert type(last) is ds.ServerError
    assert (last.code, last.status, last.attempts) == ("BUSY", 503, None)
    assert last.__cause__ is None
