"""Types of the native module (bindings/python). Private: use the package's public names."""

from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Literal, overload

__version__: str

_Pairs = Sequence[tuple[str, object]]
_Payload = str | bytes
_Policy = tuple[float, float, float, int | None]
_Result = dict[str, Any]

class Client:
    """HTTP client settings shared by any number of stream handles.

    Every argument left as ``None`` keeps the default: connect timeout 10 s, request timeout
    30 s, long-poll timeout 90 s, idle connections kept 90 s, at most 64 idle connections per
    host, TLS certificates verified, redirects followed within the same origin only, and the
    package's own ``User-Agent``. Timeouts are in seconds. A client can be shared by threads,
    event loops and (after ``fork()``) child processes, which build their own connection pool.
    """

    def __init__(
        self,
        *,
        connect_timeout: float | None = None,
        request_timeout: float | None = None,
        long_poll_timeout: float | None = None,
        pool_idle_timeout: float | None = None,
        pool_max_idle_per_host: int | None = None,
        danger_accept_invalid_certs: bool = False,
        follow_cross_origin_redirects: bool = False,
        user_agent: str | None = None,
    ) -> None: ...
    @property
    def request_timeout(self) -> float:
        """The timeout of requests that are not live reads, in seconds."""
    @property
    def long_poll_timeout(self) -> float:
        """The timeout of one long-poll request, in seconds."""

class Stream:
    def __init__(
        self,
        url: str,
        *,
        client: Client | None = None,
        headers: _Pairs = ...,
        params: _Pairs = ...,
        content_type: str | None = None,
        retry: _Policy | None = None,
        append_retry: _Policy | None = None,
    ) -> None: ...
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
    def stream(self, *, blocking: Literal[True], **kw: Any) -> Response: ...
    @overload
    def stream(self, *, blocking: Literal[False], **kw: Any) -> Awaitable[Response]: ...
    def producer(self, producer_id: str, **kw: Any) -> Producer: ...
    @overload
    def delete(self, *, blocking: Literal[True]) -> None: ...
    @overload
    def delete(self, *, blocking: Literal[False]) -> Awaitable[None]: ...

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
    @overload
    def read_bytes(self, *, blocking: Literal[True]) -> bytes: ...
    @overload
    def read_bytes(self, *, blocking: Literal[False]) -> Awaitable[bytes]: ...
    @overload
    def read_text(self, *, blocking: Literal[True]) -> str: ...
    @overload
    def read_text(self, *, blocking: Literal[False]) -> Awaitable[str]: ...
    @overload
    def read_json(self, *, blocking: Literal[True]) -> list[str]: ...
    @overload
    def read_json(self, *, blocking: Literal[False]) -> Awaitable[list[str]]: ...
    def batches(self, kind: str) -> Batches: ...

_BatchTuple = tuple[Any, str, str | None, bool, bool]

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
) -> Any: ...

class Receipt:
    @property
    def message_number(self) -> int: ...
    def done(self) -> bool: ...
    # None: the timeout passed first.
    @overload
    def result(
        self, *, blocking: Literal[True], timeout: float | None = None
    ) -> _Result | None: ...
    @overload
    def result(
        self, *, blocking: Literal[False], timeout: float | None = None
    ) -> Awaitable[_Result | None]: ...

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
        self, messages: Iterable[str | bytes], first: str | bytes | None, blocking: bool
    ) -> tuple[int, Receipt | None, str | bytes | None]: ...
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
    def close(self, final_message: _Payload | None, *, blocking: Literal[True]) -> str | None: ...
    @overload
    def close(
        self, final_message: _Payload | None, *, blocking: Literal[False]
    ) -> Awaitable[str | None]: ...

def _error_codes() -> list[str]: ...
def _error_for_code(code: str) -> BaseException: ...
def shutdown() -> None:
    """Registered with ``atexit``: closes the runtime threads' way into Python, waits for those
    inside it to leave, then stops the runtime and drops every task still running. Afterwards
    the async API raises ``RuntimeError``; the blocking API still works."""
