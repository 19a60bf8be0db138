"""Types of the native module (bindings/python). Private: use the package's public names."""

from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any, Literal, final, overload

from typing_extensions import Self, disjoint_base

from ._producer import Delivery

__version__: str
__all__ = [
    "WEBHOOK_DONE",
    "AsyncProducerBase",
    "AsyncReceipt",
    "Batches",
    "Client",
    "Job",
    "Producer",
    "ProducerBase",
    "Queue",
    "Receipt",
    "Response",
    "Stream",
    "Subscriptions",
    "Verifier",
    "Wake",
    "__version__",
    "_error_codes",
    "_error_for_code",
    "_json_messages",
    "_retry_defaults",
    "read",
    "shutdown",
]

_Pairs = Sequence[tuple[str, object]]
_Payload = str | bytes
_Policy = tuple[float, float, float, int | None]
_Result = dict[str, Any]

@final
class Client:
    """HTTP client settings shared by any number of stream handles.

    Every argument left as ``None`` keeps the default: connect timeout 10 s, request timeout
    30 s, long-poll timeout 90 s, idle connections kept 90 s, at most 64 idle connections per
    host, TLS certificates verified, redirects followed within the same origin only, and the
    package's own ``User-Agent``. Timeouts are in seconds. A client can be shared by threads,
    event loops and (after ``fork()``) child processes, which build their own connection pool.
    """

    def __new__(
        cls,
        *,
        connect_timeout: float | None = None,
        request_timeout: float | None = None,
        long_poll_timeout: float | None = None,
        pool_idle_timeout: float | None = None,
        pool_max_idle_per_host: int | None = None,
        danger_accept_invalid_certs: bool = False,
        follow_cross_origin_redirects: bool = False,
        user_agent: str | None = None,
    ) -> Client: ...
    @property
    def request_timeout(self) -> float:
        """The timeout of requests that are not live reads, in seconds."""
    @property
    def long_poll_timeout(self) -> float:
        """The timeout of one long-poll request, in seconds."""

@final
class Stream:
    def __new__(
        cls,
        url: str,
        *,
        client: Client | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
        content_type: str | None = None,
        retry: _Policy | None = None,
        append_retry: _Policy | None = None,
        on_failed_attempt: Callable[[BaseException, int, bool, str], object] | None = None,
    ) -> Stream: ...
    @property
    def url(self) -> str: ...
    @property
    def content_type(self) -> str | None: ...
    def release(self) -> None: ...
    @overload
    def create(
        self,
        *,
        blocking: Literal[True],
        content_type: str | None = None,
        ttl_seconds: int | None = None,
        expires_at: str | None = None,
        closed: bool = False,
        body: _Payload | None = None,
        fork_from: str | None = None,
        fork_offset: str | None = None,
        fork_sub_offset: int | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> _Result: ...
    @overload
    def create(
        self,
        *,
        blocking: Literal[False],
        content_type: str | None = None,
        ttl_seconds: int | None = None,
        expires_at: str | None = None,
        closed: bool = False,
        body: _Payload | None = None,
        fork_from: str | None = None,
        fork_offset: str | None = None,
        fork_sub_offset: int | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> Awaitable[_Result]: ...
    @overload
    def append(
        self,
        data: _Payload,
        *,
        blocking: Literal[True],
        seq: str | None = None,
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> _Result: ...
    @overload
    def append(
        self,
        data: _Payload,
        *,
        blocking: Literal[False],
        seq: str | None = None,
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> Awaitable[_Result]: ...
    @overload
    def append_batch(
        self,
        messages: Sequence[_Payload],
        *,
        blocking: Literal[True],
        seq: str | None = None,
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> _Result: ...
    @overload
    def append_batch(
        self,
        messages: Sequence[_Payload],
        *,
        blocking: Literal[False],
        seq: str | None = None,
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> Awaitable[_Result]: ...
    @overload
    def append_stream(
        self,
        pull: Callable[[], str | bytes | None],
        *,
        blocking: Literal[True],
        seq: str | None = None,
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> _Result: ...
    @overload
    def append_stream(
        self,
        pull: Callable[[], Awaitable[str | bytes | None]],
        *,
        blocking: Literal[False],
        seq: str | None = None,
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> Awaitable[_Result]: ...
    @overload
    def close(
        self,
        final_message: _Payload | None = None,
        *,
        blocking: Literal[True],
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> _Result: ...
    @overload
    def close(
        self,
        final_message: _Payload | None = None,
        *,
        blocking: Literal[False],
        content_type: str | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> Awaitable[_Result]: ...
    @overload
    def head(self, *, blocking: Literal[True]) -> _Result: ...
    @overload
    def head(self, *, blocking: Literal[False]) -> Awaitable[_Result]: ...
    @overload
    def exists(self, *, blocking: Literal[True]) -> bool: ...
    @overload
    def exists(self, *, blocking: Literal[False]) -> Awaitable[bool]: ...
    @overload
    def stream(
        self,
        *,
        blocking: Literal[True],
        offset: str | None = None,
        live: str | None = None,
        json: bool = False,
        headers: _Pairs = ...,
        params: _Pairs = ...,
        retry: _Policy | None = None,
        on_error: Callable[..., Any] | None = None,
        max_chunk_bytes: int | None = None,
        max_read_bytes: int | None = None,
    ) -> Response: ...
    @overload
    def stream(
        self,
        *,
        blocking: Literal[False],
        offset: str | None = None,
        live: str | None = None,
        json: bool = False,
        headers: _Pairs = ...,
        params: _Pairs = ...,
        retry: _Policy | None = None,
        on_error: Callable[..., Any] | None = None,
        max_chunk_bytes: int | None = None,
        max_read_bytes: int | None = None,
    ) -> Awaitable[Response]: ...
    def producer(
        self,
        producer_id: str,
        *,
        epoch: int,
        auto_claim: bool,
        linger: float | None,
        max_batch_bytes: int | None,
        max_batch_messages: int | None,
        max_in_flight: int | None,
        max_buffered_bytes: int | None,
        buffer_timeout: float | None,
        delivery_timeout: float | None,
        validate_json: bool,
        retry: _Policy | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
        on_error: Callable[..., Any] | None = None,
        asyncio: bool = False,
    ) -> Producer: ...
    @overload
    def delete(self, *, blocking: Literal[True]) -> None: ...
    @overload
    def delete(self, *, blocking: Literal[False]) -> Awaitable[None]: ...

@final
class Response:
    """A read in progress (see durable_streams_client._response)."""

    @property
    def url(self) -> str: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def is_json(self) -> bool: ...
    @property
    def live(self) -> str: ...
    @property
    def start_offset(self) -> str: ...
    @property
    def offset(self) -> str: ...
    @property
    def cursor(self) -> str | None: ...
    @property
    def up_to_date(self) -> bool: ...
    @property
    def stream_closed(self) -> bool: ...
    def cancel(self) -> None: ...
    def release_position(self) -> None: ...
    @overload
    def read_bytes(self, *, blocking: Literal[True]) -> bytes: ...
    @overload
    def read_bytes(self, *, blocking: Literal[False]) -> Awaitable[bytes]: ...
    @overload
    def read_text(self, *, blocking: Literal[True]) -> str: ...
    @overload
    def read_text(self, *, blocking: Literal[False]) -> Awaitable[str]: ...
    @overload
    def read_json(
        self,
        *,
        blocking: Literal[True],
        field: str | None = None,
        fields: list[str] | None = None,
    ) -> list[Any]: ...
    @overload
    def read_json(
        self,
        *,
        blocking: Literal[False],
        field: str | None = None,
        fields: list[str] | None = None,
    ) -> Awaitable[list[Any]]: ...
    def batches(
        self, kind: str, field: str | None = None, fields: list[str] | None = None
    ) -> Batches: ...

_BatchTuple = tuple[Any, str, str | None, bool, bool, bool]

@final
class Batches:
    @overload
    def next(self, *, blocking: Literal[True]) -> _BatchTuple | None: ...
    @overload
    def next(self, *, blocking: Literal[False]) -> Awaitable[_BatchTuple | None]: ...

def read(
    url: str,
    *,
    blocking: bool,
    client: Client | None = None,
    offset: str | None = None,
    live: str | None = None,
    json: bool = False,
    headers: _Pairs = ...,
    params: _Pairs = ...,
    retry: _Policy | None = None,
    on_error: object | None = None,
    max_chunk_bytes: int | None = None,
    max_read_bytes: int | None = None,
) -> Any: ...

@final
class Receipt:
    """The outcome of one appended message (blocking flavour); dropping it costs nothing."""

    @property
    def message_number(self) -> int:
        """The message's number in its producer (0 for the first append)."""
    def done(self) -> bool:
        """Whether the message's batch was delivered or failed."""
    def result(self, timeout: float | None = None) -> Delivery:
        """Waits (GIL released, Ctrl-C interrupts) for the delivery, or raises the batch's
        error. ``TimeoutError`` when ``timeout`` seconds passed first."""
    # None: the timeout passed first.
    @overload
    def _result(
        self, *, blocking: Literal[True], timeout: float | None = None
    ) -> _Result | None: ...
    @overload
    def _result(
        self, *, blocking: Literal[False], timeout: float | None = None
    ) -> Awaitable[_Result | None]: ...

@final
class AsyncReceipt:
    """The outcome of one appended message (asyncio): ``delivery = await receipt``."""

    def __new__(cls, native: Receipt) -> Self: ...
    @property
    def message_number(self) -> int:
        """The message's number in its producer (0 for the first append)."""
    def done(self) -> bool:
        """Whether the message's batch was delivered or failed."""
    def result(self, timeout: float | None = None) -> Coroutine[Any, Any, Delivery]:
        """The delivery, or the batch's error; ``TimeoutError`` once ``timeout`` seconds
        passed. Cancelling the awaiting task only stops the wait."""
    def __await__(self) -> Generator[Any, None, Delivery]: ...

@disjoint_base
class AsyncProducerBase:
    def __new__(cls, *_args: object, **_kwargs: object) -> Self: ...
    def _bind(self, producer: Producer) -> None: ...
    def append(self, data: str | bytes | bytearray | memoryview) -> AsyncReceipt:
        """Appends one message if there is room now, else raises :class:`BufferFullError`.
        Never waits."""

@disjoint_base
class ProducerBase:
    def __new__(cls, *_args: object, **_kwargs: object) -> Self: ...
    def _bind(self, producer: Producer) -> None: ...
    def append(self, data: str | bytes | bytearray | memoryview) -> Receipt:
        """Appends one message (``str`` as UTF-8, or bytes-like), waiting for room if the
        buffer is full. In JSON mode the message must be one serialized JSON value."""

@final
class Producer:
    @property
    def producer_id(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def pending_count(self) -> int: ...
    @property
    def in_flight_count(self) -> int: ...
    @property
    def buffered_bytes(self) -> int: ...
    @property
    def last_offset(self) -> str | None: ...
    def metrics(self) -> dict[str, Any]: ...
    def try_append(self, data: _Payload) -> Receipt: ...
    def append_many(
        self,
        messages: Iterable[str | bytes],
        first: list[str | bytes] | None,
        error: BaseException | None,
        blocking: bool,
    ) -> tuple[int, Receipt | None, list[str | bytes] | None, BaseException | None]: ...
    @overload
    def append(self, data: _Payload, blocking: Literal[True]) -> Receipt: ...
    @overload
    def append(self, data: _Payload, blocking: Literal[False]) -> Awaitable[Receipt]: ...
    @overload
    def wait_for_room(self, n: int, *, blocking: Literal[True]) -> None: ...
    @overload
    def wait_for_room(self, n: int, *, blocking: Literal[False]) -> Awaitable[None]: ...
    @overload
    def flush(self, *, blocking: Literal[True]) -> None: ...
    @overload
    def flush(self, *, blocking: Literal[False]) -> Awaitable[None]: ...
    @overload
    def restart(self, *, blocking: Literal[True]) -> None: ...
    @overload
    def restart(self, *, blocking: Literal[False]) -> Awaitable[None]: ...
    @overload
    def detach(self, *, blocking: Literal[True]) -> None: ...
    @overload
    def detach(self, *, blocking: Literal[False]) -> Awaitable[None]: ...
    @overload
    def close(
        self, final_message: _Payload | None = None, *, blocking: Literal[True]
    ) -> str | None: ...
    @overload
    def close(
        self, final_message: _Payload | None = None, *, blocking: Literal[False]
    ) -> Awaitable[str | None]: ...

def _error_codes() -> list[str]: ...
def _error_for_code(code: str, retried: bool = False) -> BaseException: ...
def _retry_defaults() -> tuple[float, float, float, int | None]: ...
def _json_messages(texts: list[str]) -> tuple[list[Any], int]: ...
def shutdown() -> None:
    """Registered with ``atexit``: closes the runtime threads' way into Python, waits for those
    inside it to leave, then stops the runtime and drops every task still running. Afterwards
    the async API raises ``RuntimeError``; the blocking API still works."""

# Subscriptions (bindings/python/src/subscriptions.rs). Methods taking ``blocking`` return the
# value when it is true and an awaitable of it otherwise, hence ``Any``.

WEBHOOK_DONE: str

@final
class Wake:
    @property
    def subscription_id(self) -> str: ...
    @property
    def wake_id(self) -> str: ...
    @property
    def generation(self) -> int: ...
    @property
    def lease_ttl_ms(self) -> int | None: ...
    @property
    def callback_url(self) -> str | None: ...
    @property
    def streams(self) -> list[tuple[str, str, str, str, bool]]: ...

@final
class Subscriptions:
    def __new__(
        cls,
        root: str,
        *,
        client: Client | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
    ) -> Subscriptions: ...
    @property
    def root(self) -> str: ...
    @property
    def jwks_url(self) -> str: ...
    def create(
        self,
        id: str,
        *,
        blocking: bool,
        wake_stream: str | None = None,
        webhook_url: str | None = None,
        pattern: str | None = None,
        streams: Sequence[str] = ...,
        lease: float | None = None,
        description: str | None = None,
    ) -> Any: ...
    def get(self, id: str, blocking: bool) -> Any: ...
    def delete(self, id: str, blocking: bool) -> Any: ...
    def add_streams(self, id: str, streams: Sequence[str], blocking: bool) -> Any: ...
    def remove_stream(self, id: str, path: str, blocking: bool) -> Any: ...
    def claim(self, id: str, worker: str, blocking: bool) -> Any: ...
    def ack(
        self, wake: Wake, acks: Sequence[tuple[str, str]], *, done: bool, blocking: bool
    ) -> Any: ...
    def callback(
        self, wake: Wake, acks: Sequence[tuple[str, str]], *, done: bool, blocking: bool
    ) -> Any: ...
    def release(self, wake: Wake, blocking: bool) -> Any: ...
    def jobs(
        self,
        id: str,
        worker: str,
        wake_stream: str,
        *,
        from_offset: str | None = None,
        heartbeats: bool = True,
    ) -> Queue: ...

@final
class Queue:
    def next(self, *, blocking: bool, timeout: float | None = None) -> Any: ...
    @property
    def ended(self) -> bool: ...
    def request_stop(self) -> None: ...
    def stop(self, blocking: bool) -> Any: ...

@final
class Job:
    @property
    def stream(self) -> str: ...
    @property
    def start_offset(self) -> str: ...
    @property
    def offset(self) -> str: ...
    @property
    def messages_json(self) -> str | None: ...
    @property
    def data(self) -> bytes: ...
    @property
    def answered(self) -> bool: ...
    def ack(self) -> None: ...
    def fail(self, reason: str) -> None: ...

@final
class Verifier:
    def __new__(
        cls, jwks_url: str, *, client: Client | None = None, replay_window: float | None = None
    ) -> Verifier: ...
    def verify(
        self, signature: str | None, body: bytes, *, blocking: bool, now: float | None = None
    ) -> Any: ...
