"""The exceptions of durable_streams_client.

Every failure is a :class:`DurableStreamError` with a stable ``code`` (e.g. ``"STREAM_CLOSED"``),
the HTTP ``status`` when a response was received, the server's message and whether retrying may
help. Subclasses add what a caller needs to react (``final_offset``, ``retry_after``, ...) and
also derive from a builtin where one fits: :class:`NetworkError` is a :class:`ConnectionError`,
:class:`StreamTimeoutError` a :class:`TimeoutError`, :class:`InvalidArgumentError` a
:class:`ValueError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyClaimedError",
    "AlreadyClosedError",
    "AlreadyConsumedError",
    "BadRequestError",
    "BufferFullError",
    "ConflictError",
    "DurableStreamError",
    "FencedError",
    "ForbiddenError",
    "GoneError",
    "InvalidArgumentError",
    "InvalidSignatureError",
    "InvalidStateError",
    "NetworkError",
    "NoPendingWorkError",
    "ParseError",
    "PayloadTooLargeError",
    "ProducerSessionConflictError",
    "RateLimitedError",
    "SeqConflictError",
    "SequenceGapError",
    "ServerError",
    "StaleEpochError",
    "StreamCancelledError",
    "StreamClosedError",
    "StreamExistsError",
    "StreamNotFoundError",
    "StreamTimeoutError",
    "SubscriptionError",
    "UnauthorizedError",
    "UnexpectedStatusError",
]


class DurableStreamError(Exception):
    """Base class of every error raised by this package.

    Attributes:
        message: A description (never contains header values or URL credentials).
        code: A stable code shared with the other languages, e.g. ``"NOT_FOUND"``.
        status: The HTTP status, when the server answered.
        server_message: The server's own message, when it sent one.
        retryable: Whether repeating the request may succeed (network errors, timeouts,
            429 and 5xx). It does not say whether repeating is safe: a plain append is not
            idempotent.
        url: The stream URL the failed request went to (credentials and query removed), when
            the error concerns one.
        attempts: How many attempts a request made before it gave up, when it was retried
            (at least 2); ``None`` when it was not retried.

    The cause chain is ``__cause__``: a request that gave up after its retries has the last
    attempt's failure there (a :class:`DurableStreamError` with the same code and
    ``attempts`` ``None``); a :class:`NetworkError`, :class:`StreamTimeoutError` or
    :class:`ParseError` has the transport's or parser's own error there, as the builtin
    exception it is (:class:`ConnectionRefusedError`, :class:`ConnectionResetError`,
    :class:`TimeoutError`, :class:`OSError`, or :class:`ValueError` for JSON), when one is
    known. ``__cause__`` is ``None`` otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "UNKNOWN",
        status: int | None = None,
        server_message: str | None = None,
        retryable: bool = False,
        url: str | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.server_message = server_message
        self.retryable = retryable
        self.url = url
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class StreamNotFoundError(DurableStreamError):
    """404: there is no stream at the URL (or, when forking, no source stream)."""


class ConflictError(DurableStreamError):
    """409: the request conflicts with the stream's state (e.g. a content type mismatch)."""


class StreamExistsError(ConflictError):
    """409 on create: a stream already exists at the URL with another configuration."""


class SeqConflictError(ConflictError):
    """409 on an append with ``seq``: the sequence did not increase."""


class StreamClosedError(DurableStreamError):
    """The stream is closed: nothing more can be appended.

    Attributes:
        final_offset: The stream's final offset, when the server reported it.
    """

    def __init__(self, message: str, *, final_offset: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.final_offset = final_offset


class StaleEpochError(DurableStreamError):
    """403 from an idempotent producer: another session owns a newer epoch.

    Attributes:
        producer_id: The producer id.
        epoch: The epoch this producer used.
        current_epoch: The epoch the server holds.
    """

    def __init__(
        self,
        message: str,
        *,
        producer_id: str = "",
        epoch: int = 0,
        current_epoch: int = 0,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.producer_id = producer_id
        self.epoch = epoch
        self.current_epoch = current_epoch


class ProducerSessionConflictError(DurableStreamError):
    """Another session of this producer id has written in this producer's epoch.

    A restarted writer that starts again at the same epoch, or two writers sharing one id: the
    server answered a batch as a duplicate this session never sent, so it was not stored. Use a
    new epoch (``auto_claim=True``, or ``restart()``).

    Attributes:
        producer_id: The producer id.
        epoch: The epoch both sessions wrote in.
        server_seq: The highest sequence the server holds for that epoch, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        producer_id: str = "",
        epoch: int = 0,
        server_seq: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.producer_id = producer_id
        self.epoch = epoch
        self.server_seq = server_seq


class SequenceGapError(DurableStreamError):
    """409 from an idempotent producer: the server expected another sequence number.

    Attributes:
        expected_seq: The sequence number the server expected.
        received_seq: The sequence number it received.
    """

    def __init__(
        self, message: str, *, expected_seq: int = 0, received_seq: int = 0, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.expected_seq = expected_seq
        self.received_seq = received_seq


class RateLimitedError(DurableStreamError):
    """429: the server asks the client to slow down.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After``), if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(DurableStreamError):
    """5xx: the server failed.

    Attributes:
        retry_after: Seconds the server asked to wait (a 503 may say), if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BadRequestError(DurableStreamError):
    """400: the server refused the request as malformed."""


class UnauthorizedError(DurableStreamError):
    """401: the request lacks valid credentials."""


class ForbiddenError(DurableStreamError):
    """403: the credentials do not allow this operation."""


class GoneError(DurableStreamError):
    """410: the offset is before the retained data, or the stream was deleted."""


class PayloadTooLargeError(DurableStreamError):
    """413: the body is larger than the server accepts."""


class NetworkError(DurableStreamError, ConnectionError):
    """The connection failed before a response arrived (refused, reset, DNS, TLS)."""


class StreamTimeoutError(DurableStreamError, TimeoutError):
    """A request or an operation ran past its deadline."""


class StreamCancelledError(DurableStreamError):
    """The operation was cancelled (code ``CANCELLED``)."""


class UnexpectedStatusError(DurableStreamError):
    """The server answered with a status the operation does not expect (``UNEXPECTED_STATUS``);
    ``status`` says which."""


class ParseError(DurableStreamError):
    """A response from the server could not be understood."""


class InvalidArgumentError(DurableStreamError, ValueError):
    """A value was refused before any request was sent."""


class InvalidStateError(DurableStreamError):
    """The object is not in a state for the call: :class:`AlreadyConsumedError`,
    :class:`AlreadyClosedError` and :class:`BufferFullError` (as Kotlin's
    ``InvalidStateException`` and Node's ``InvalidStateError``)."""


class AlreadyConsumedError(InvalidStateError):
    """A response body was already consumed: a stream response can be read once."""


class AlreadyClosedError(InvalidStateError):
    """The handle or producer was closed or released and cannot be used any more."""


class BufferFullError(InvalidStateError):
    """An idempotent producer has no room for a message right now (``try_append``, and
    ``append`` of :class:`AsyncIdempotentProducer`, which never waits).

    Attributes:
        requested: The size of the refused message in bytes.
        buffered: The bytes buffered when it was refused.
        limit: The producer's ``max_buffered_bytes``.
    """

    def __init__(
        self, message: str, *, requested: int = 0, buffered: int = 0, limit: int = 0, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.requested = requested
        self.buffered = buffered
        self.limit = limit


class SubscriptionError(DurableStreamError):
    """A subscription request was refused with a protocol code (``SUBSCRIPTION_NOT_FOUND``,
    ``SUBSCRIPTION_ALREADY_EXISTS``, ``INVALID_OFFSET``, ``TOKEN_INVALID``, ...).

    Attributes:
        subscription_code: The protocol's code, as the server sent it (known codes only;
            ``"OTHER"`` for any other).
    """

    def __init__(self, message: str, *, subscription_code: str = "OTHER", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.subscription_code = subscription_code


class FencedError(SubscriptionError, ConflictError):
    """409 ``FENCED``: the wake is stale (another generation is current), the lease is lost.

    Nothing was acked: stop working on this wake, another worker has (or will get) the work."""


class AlreadyClaimedError(SubscriptionError, ConflictError):
    """409 ``ALREADY_CLAIMED``: another worker holds the subscription's lease.

    Attributes:
        current_holder: The worker holding it, when the server said.
    """

    def __init__(self, message: str, *, current_holder: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.current_holder = current_holder


class NoPendingWorkError(SubscriptionError, ConflictError):
    """409 ``NO_PENDING_WORK``: a claim found nothing to do."""


class InvalidSignatureError(DurableStreamError):
    """A webhook delivery failed verification; answer it with 401 and do not process it.

    Attributes:
        check: Which check failed: ``"missing_header"``, ``"malformed_header"``,
            ``"timestamp_out_of_window"``, ``"unknown_key"``, ``"bad_signature"`` or
            ``"malformed_payload"``.
    """

    def __init__(self, message: str, *, check: str = "bad_signature", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.check = check


# The classes print (and pickle) under the public package name, not this private module.
for _name in __all__:
    globals()[_name].__module__ = "durable_streams_client"
del _name
