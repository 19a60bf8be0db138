"""Types of the native module (bindings/python). Private: use the package's public names."""

from collections.abc import Awaitable, Sequence
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
    def delete(self, *, blocking: Literal[True]) -> None: ...
    @overload
    def delete(self, *, blocking: Literal[False]) -> Awaitable[None]: ...
