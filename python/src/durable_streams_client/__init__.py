"""A fast, exactly-once client for the Durable Streams protocol, on a Rust core.

A stream is a URL. :class:`DurableStream` (blocking) and :class:`AsyncDurableStream`
(asyncio) create, append to, close, inspect and delete it, with the same semantics.
:class:`Client` holds HTTP settings shared by handles; every error is a
:class:`DurableStreamError`. The core's logs go to the ``logging`` logger
``durable_streams_client``.
"""

from ._errors import (
    AlreadyClosedError,
    AlreadyConsumedError,
    BadRequestError,
    ConflictError,
    DurableStreamError,
    ForbiddenError,
    GoneError,
    InvalidArgumentError,
    NetworkError,
    ParseError,
    PayloadTooLargeError,
    RateLimitedError,
    SeqConflictError,
    SequenceGapError,
    ServerError,
    StaleEpochError,
    StreamClosedError,
    StreamExistsError,
    StreamNotFoundError,
    StreamTimeoutError,
    UnauthorizedError,
)
from ._native import Client, __version__
from ._stream import AsyncDurableStream, AsyncHeaders, Data, DurableStream, Headers
from ._types import AppendResult, CloseResult, CreateResult, HeadResult, RetryPolicy

__all__ = [
    "AlreadyClosedError",
    "AlreadyConsumedError",
    "AppendResult",
    "AsyncDurableStream",
    "AsyncHeaders",
    "BadRequestError",
    "Client",
    "CloseResult",
    "ConflictError",
    "CreateResult",
    "Data",
    "DurableStream",
    "DurableStreamError",
    "ForbiddenError",
    "GoneError",
    "HeadResult",
    "Headers",
    "InvalidArgumentError",
    "NetworkError",
    "ParseError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RetryPolicy",
    "SeqConflictError",
    "SequenceGapError",
    "ServerError",
    "StaleEpochError",
    "StreamClosedError",
    "StreamExistsError",
    "StreamNotFoundError",
    "StreamTimeoutError",
    "UnauthorizedError",
    "__version__",
]
