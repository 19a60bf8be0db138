"""A fast, exactly-once client for the Durable Streams protocol, on a Rust core.

A stream is a URL. :class:`DurableStream` (blocking) and :class:`AsyncDurableStream`
(asyncio) create, append to, read, close, inspect and delete it, with the same semantics;
:func:`stream` / :func:`astream` read a URL directly, and :class:`IdempotentProducer` /
:class:`AsyncIdempotentProducer` append exactly once with batching.
:class:`Client` holds HTTP settings shared by handles; every error is a
:class:`DurableStreamError`. :class:`Subscriptions` turns a server into a work queue
(pull-wake workers, verified webhooks). The core's logs go to the ``logging`` logger
``durable_streams_client``.
"""

import atexit

from ._errors import (
    AlreadyClaimedError,
    AlreadyClosedError,
    AlreadyConsumedError,
    BadRequestError,
    BufferFullError,
    ConflictError,
    DurableStreamError,
    FencedError,
    ForbiddenError,
    GoneError,
    InvalidArgumentError,
    InvalidSignatureError,
    InvalidStateError,
    NetworkError,
    NoPendingWorkError,
    ParseError,
    PayloadTooLargeError,
    ProducerSessionConflictError,
    RateLimitedError,
    SeqConflictError,
    SequenceGapError,
    ServerError,
    StaleEpochError,
    StreamCancelledError,
    StreamClosedError,
    StreamExistsError,
    StreamNotFoundError,
    StreamTimeoutError,
    SubscriptionError,
    UnauthorizedError,
    UnexpectedStatusError,
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
from ._subscriptions import (
    WEBHOOK_DONE,
    AckResult,
    AsyncJobQueue,
    AsyncPullWakeWorker,
    AsyncSubscriptions,
    AsyncWebhookVerifier,
    CreateSubscriptionResult,
    Job,
    JobQueue,
    PullWakeWorker,
    SigningInfo,
    StreamLink,
    Subscription,
    Subscriptions,
    Wake,
    WakeStream,
    WebhookVerifier,
    WorkItem,
)
from ._types import (
    AppendResult,
    CloseResult,
    CreateResult,
    FailedAttempt,
    HeadResult,
    RetryPolicy,
)

__all__ = [
    "WEBHOOK_DONE",
    "AckResult",
    "AlreadyClaimedError",
    "AlreadyClosedError",
    "AlreadyConsumedError",
    "AppendResult",
    "AsyncDurableStream",
    "AsyncHeaders",
    "AsyncIdempotentProducer",
    "AsyncJobQueue",
    "AsyncOnError",
    "AsyncPullWakeWorker",
    "AsyncReceipt",
    "AsyncStreamResponse",
    "AsyncSubscriptions",
    "AsyncWebhookVerifier",
    "BadRequestError",
    "Batch",
    "BufferFullError",
    "Client",
    "CloseResult",
    "ConflictError",
    "CreateResult",
    "CreateSubscriptionResult",
    "Data",
    "Delivery",
    "DurableStream",
    "DurableStreamError",
    "FailedAttempt",
    "FencedError",
    "ForbiddenError",
    "GoneError",
    "HeadResult",
    "Headers",
    "IdempotentProducer",
    "InvalidArgumentError",
    "InvalidSignatureError",
    "InvalidStateError",
    "Job",
    "JobQueue",
    "Live",
    "NetworkError",
    "NoPendingWorkError",
    "OnError",
    "ParseError",
    "PayloadTooLargeError",
    "ProducerMetrics",
    "ProducerSessionConflictError",
    "PullWakeWorker",
    "RateLimitedError",
    "Receipt",
    "RetryPolicy",
    "SeqConflictError",
    "SequenceGapError",
    "ServerError",
    "SigningInfo",
    "StaleEpochError",
    "StreamCancelledError",
    "StreamClosedError",
    "StreamExistsError",
    "StreamLink",
    "StreamNotFoundError",
    "StreamResponse",
    "StreamTimeoutError",
    "Subscription",
    "SubscriptionError",
    "Subscriptions",
    "UnauthorizedError",
    "UnexpectedStatusError",
    "Wake",
    "WakeStream",
    "WebhookVerifier",
    "WorkItem",
    "__version__",
    "astream",
    "stream",
]

# Stop the native runtime before the interpreter finalizes: a runtime thread still inside Python
# when finalization begins is killed by CPython (Python < 3.14) through Rust frames, which crashes
# the process (bindings/python/src/runtime.rs). Registered after the imports above, so it runs
# before logging's own atexit hook.
atexit.register(_shutdown)
