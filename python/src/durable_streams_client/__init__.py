"""A fast, exactly-once client for the Durable Streams protocol, on a Rust core.

A stream is a URL. :class:`DurableStream` (blocking) and :class:`AsyncDurableStream`
(asyncio) create, append to, read, close, inspect and delete it, with the same semantics;
:func:`stream` / :func:`astream` read a URL directly, and :class:`IdempotentProducer` /
:class:`AsyncIdempotentProducer` append exactly once with batching.
:class:`Client` holds HTTP settings shared by handles; every error is a
:class:`DurableStreamError`. The core's logs go to the ``logging`` logger
``durable_streams_client``.
"""

import atexit

from ._errors import (
    AlreadyClosedError,
    AlreadyConsumedError,
    BadRequestError,
    BufferFullError,
    ConflictError,
    DurableStreamError,
    ForbiddenError,
    GoneError,
    InvalidArgumentError,
    NetworkError,
    ParseError,
    PayloadTooLargeError,
    ProducerSessionConflictError,
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
from ._native import shutdown as _shutdown
from ._producer import (
    AsyncIdempotentProducer,
    AsyncReceipt,
    Delivery,
    IdempotentProducer,
    ProducerMetrics,
    Receipt,
)
from ._response import (
    AsyncOnError,
    AsyncStreamResponse,
    Batch,
    Live,
    OnError,
    StreamResponse,
    astream,
    stream,
)
from ._stream import AsyncDurableStream, AsyncHeaders, Data, DurableStream, Headers
from ._types import AppendResult, CloseResult, CreateResult, HeadResult, RetryPolicy

__all__ = [
    "AlreadyClosedError",
    "AlreadyConsumedError",
    "AppendResult",
    "AsyncDurableStream",
    "AsyncHeaders",
    "AsyncIdempotentProducer",
    "AsyncOnError",
    "AsyncReceipt",
    "AsyncStreamResponse",
    "BadRequestError",
    "Batch",
    "BufferFullError",
    "Client",
    "CloseResult",
    "ConflictError",
    "CreateResult",
    "Data",
    "Delivery",
    "DurableStream",
    "DurableStreamError",
    "ForbiddenError",
    "GoneError",
    "HeadResult",
    "Headers",
    "IdempotentProducer",
    "InvalidArgumentError",
    "Live",
    "NetworkError",
    "OnError",
    "ParseError",
    "PayloadTooLargeError",
    "ProducerMetrics",
    "ProducerSessionConflictError",
    "RateLimitedError",
    "Receipt",
    "RetryPolicy",
    "SeqConflictError",
    "SequenceGapError",
    "ServerError",
    "StaleEpochError",
    "StreamClosedError",
    "StreamExistsError",
    "StreamNotFoundError",
    "StreamResponse",
    "StreamTimeoutError",
    "UnauthorizedError",
    "__version__",
    "astream",
    "stream",
]

# Stop the native runtime before the interpreter finalizes: a runtime thread still inside Python
# when finalization begins is killed by CPython (Python < 3.14) through Rust frames, which crashes
# the process (bindings/python/src/runtime.rs). Registered after the imports above, so it runs
# before logging's own atexit hook.
atexit.register(_shutdown)
