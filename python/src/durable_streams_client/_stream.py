"""DurableStream (blocking) and AsyncDurableStream (asyncio): one stream URL and its write and
lifecycle operations. Both flavours share the native handle and have the same semantics."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Callable, TypeVar, Union

from . import _native
from ._errors import InvalidArgumentError
from ._response import (
    AsyncOnError,
    AsyncStreamResponse,
    Live,
    OnError,
    StreamResponse,
    _read_kwargs,
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
    "AsyncDurableStream",
    "AsyncHeaders",
    "Data",
    "DurableStream",
    "Headers",
]

Data = Union[str, bytes, bytearray, memoryview]
"""A message: text (sent as UTF-8) or bytes."""

Headers = Mapping[str, Union[str, Callable[[], str]]]
"""Headers or query parameters: fixed strings, or callables computed again for every request
(e.g. to refresh a token)."""

AsyncHeaders = Mapping[str, Union[str, Callable[[], Union[str, Awaitable[str]]]]]
"""Like :data:`Headers`; the callables may also be ``async``."""

_S = TypeVar("_S", bound="DurableStream")
_A = TypeVar("_A", bound="AsyncDurableStream")


def _payload(data: object, what: str = "data") -> str | bytes:
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"{what} must be str or bytes-like (bytes, bytearray, memoryview), not "
        f"{type(data).__name__}: serialize objects first, e.g. json.dumps(value), "
        "or use append_json(value)"
    )


class _Source:
    """The chunks of a streamed append, pulled one at a time by the native body: skips empty
    chunks, checks types, and keeps the exception the source raised (the append then raises
    it, as ``appendStream`` does)."""

    def __init__(self, source: Iterable[Data] | AsyncIterable[Data], asynchronous: bool) -> None:
        self.failure: BaseException | None = None
        self.done = False
        # The task of an async pull in progress: the native body runs each pull as a task of
        # its own, which a cancelled append does not cancel by itself (see aclose).
        self._pulling: asyncio.Task[object] | None = None
        self._sync: Iterator[Data] | None = None
        self._async: AsyncIterator[Data] | None = None
        if isinstance(source, (str, bytes, bytearray, memoryview)):
            raise TypeError(
                "append_stream takes an iterable of chunks (str or bytes-like); "
                "to append one str or bytes, use append()"
            )
        if isinstance(source, AsyncIterable):
            if not asynchronous:
                raise TypeError(
                    "an async iterable needs AsyncDurableStream.append_stream; "
                    "DurableStream.append_stream takes a plain iterable"
                )
            self._async = source.__aiter__()
        elif isinstance(source, Iterable):
            self._sync = iter(source)
        else:
            raise TypeError(
                "append_stream takes an iterable of chunks (str or bytes-like), not "
                f"{type(source).__name__}"
            )

    def _chunk(self, chunk: object) -> str | bytes | None:
        data = _payload(chunk, "each chunk of append_stream's source")
        return data if len(data) > 0 else None

    def pull(self) -> str | bytes | None:
        assert self._sync is not None
        try:
            for chunk in self._sync:
                data = self._chunk(chunk)
                if data is not None:
                    return data
        except BaseException as e:
            self.failure, self.done = e, True
            raise
        self.done = True
        return None

    async def apull(self) -> str | bytes | None:
        if self.done:
            # Asked for before the append stopped, run after aclose(): the source is left alone.
            return None
        if self._sync is not None:
            return self.pull()
        assert self._async is not None
        self._pulling = asyncio.current_task()
        try:
            async for chunk in self._async:
                data = self._chunk(chunk)
                if data is not None:
                    return data
        except BaseException as e:
            self.failure, self.done = e, True
            raise
        finally:
            self._pulling = None
        self.done = True
        return None

    def close(self) -> None:
        """Closes a generator the append did not read to its end (sync sources)."""
        close = getattr(self._sync, "close", None)
        if not self.done and callable(close):
            # ValueError: still running a pull on the client's thread (the wait was
            # interrupted, by Ctrl-C say); it ends with that pull.
            with contextlib.suppress(ValueError):
                close()

    async def aclose(self) -> None:
        if self._async is None:
            self.close()
            return
        pulling, ended = self._pulling, self.done
        self.done = True
        if pulling is not None and not pulling.done():
            # The append ended (cancelled, or failed) while a pull waits on the source: that
            # pull is stopped and waited for first, as the generator is running until then.
            pulling.cancel()
            await asyncio.wait((pulling,))
        aclose = getattr(self._async, "aclose", None)
        if not ended and callable(aclose):
            await aclose()


def _pairs(values: Mapping[str, object] | None, what: str) -> list[tuple[str, object]]:
    if values is None:
        return []
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} must be a mapping of names to values")
    return list(values.items())


def _expires_at(value: str | datetime | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(
                "expires_at must be timezone-aware (e.g. datetime.now(timezone.utc))",
                code="INVALID_ARGUMENT",
            )
        return value.isoformat()
    return value


def _json(value: object) -> str:
    # NaN and infinities are not JSON: refuse them here rather than at the server.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _observer(
    f: Callable[[FailedAttempt], object] | None,
) -> Callable[[BaseException, int, bool, str], object] | None:
    """The native observer's call, with the attempt as one :class:`FailedAttempt`."""
    if f is None:
        return None
    if not callable(f):
        raise TypeError("on_failed_attempt must be a callable")

    def call(error: BaseException, attempt: int, will_retry: bool, operation: str) -> object:
        return f(FailedAttempt(error, attempt, will_retry, operation))  # type: ignore[arg-type]

    return call


def _policy(p: RetryPolicy | None) -> tuple[float, float, float, int | None] | None:
    return None if p is None else p._native()


class _Handle:
    """What both flavours share: construction, properties, argument checks."""

    __slots__ = ("_native",)

    def __init__(
        self,
        url: str,
        *,
        client: _native.Client | None = None,
        headers: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
        content_type: str | None = None,
        retry: RetryPolicy | None = None,
        append_retry: RetryPolicy | None = None,
        on_failed_attempt: Callable[[FailedAttempt], object] | None = None,
    ) -> None:
        self._native = _native.Stream(
            url,
            client=client,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
            content_type=content_type,
            retry=_policy(retry),
            append_retry=_policy(append_retry),
            on_failed_attempt=_observer(on_failed_attempt),
        )

    @property
    def url(self) -> str:
        """The stream URL."""
        return self._native.url

    @property
    def content_type(self) -> str | None:
        """The stream's content type, once known (given, or learned by create, head or
        connect). ``application/json`` means JSON mode: each append is one JSON value."""
        return self._native.content_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, content_type={self.content_type!r})"


class DurableStream(_Handle):
    """A handle to one stream, for blocking code. Creating it sends nothing.

    Every call releases the GIL while it waits, and Ctrl-C interrupts it. Used as a context
    manager, the handle is released on exit (the stream itself stays as it is: :meth:`close`
    is what ends a stream).

    Args:
        url: The stream URL (http or https).
        client: HTTP settings to use (default: one shared client).
        headers: Headers sent with every request; values are strings or callables computed
            for each request.
        params: Query parameters sent with every request, like ``headers``.
        content_type: The stream's content type when known in advance (else learned from
            create or the first head).
        retry: Retries of create, head, delete and close (default: 0.1 s to 5 s, at most
            5 retries).
        append_retry: Opts plain appends into retries. An append is not idempotent: a retry
            after a lost response stores the data twice.
        on_failed_attempt: Called with a :class:`FailedAttempt` after every failed attempt of
            create, head, append, close or delete (retried or not), on the client's own
            thread, before the retry pause: for metrics or a "reconnecting" notice. It cannot
            change what happens next; what it raises is logged. (Reads have ``on_error``.)

    Example::

        with DurableStream("http://127.0.0.1:4437/v1/stream/chat") as s:
            s.create(content_type="application/json")
            s.append_json({"role": "user", "text": "hi"})
    """

    __slots__ = ()

    def __init__(
        self,
        url: str,
        *,
        client: _native.Client | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
        content_type: str | None = None,
        retry: RetryPolicy | None = None,
        append_retry: RetryPolicy | None = None,
        on_failed_attempt: Callable[[FailedAttempt], object] | None = None,
    ) -> None:
        super().__init__(
            url,
            client=client,
            headers=headers,
            params=params,
            content_type=content_type,
            retry=retry,
            append_retry=append_retry,
            on_failed_attempt=on_failed_attempt,
        )

    @classmethod
    def connect(
        cls: type[_S],
        url: str,
        *,
        client: _native.Client | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
        retry: RetryPolicy | None = None,
        append_retry: RetryPolicy | None = None,
        on_failed_attempt: Callable[[FailedAttempt], object] | None = None,
    ) -> _S:
        """A handle to an existing stream: one ``HEAD`` learns its content type.

        Raises:
            StreamNotFoundError: There is no stream at ``url``.
        """
        s = cls(
            url,
            client=client,
            headers=headers,
            params=params,
            retry=retry,
            append_retry=append_retry,
            on_failed_attempt=on_failed_attempt,
        )
        s.head()
        return s

    def create(
        self,
        *,
        content_type: str | None = None,
        ttl_seconds: int | None = None,
        expires_at: str | datetime | None = None,
        closed: bool = False,
        body: Data | None = None,
        fork_from: str | None = None,
        fork_offset: str | None = None,
        fork_sub_offset: int | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> CreateResult:
        """Creates the stream (``PUT``); succeeds too when it exists with the same configuration.

        Args:
            content_type: The stream's content type (``application/json`` for JSON mode);
                default: the handle's, else the server's (``application/octet-stream``).
            ttl_seconds: Sliding time-to-live. Exclusive with ``expires_at``.
            expires_at: Absolute expiry (RFC 3339 string or aware datetime).
            closed: Create the stream already closed.
            body: Initial content.
            fork_from: Create a fork of this stream (a path on the same server or a URL).
            fork_offset: Where the fork diverges (default: the source's tail).
            fork_sub_offset: Messages (JSON) or bytes past ``fork_offset`` also inherited.
            headers: Headers for this request only.
            params: Query parameters for this request only.

        Raises:
            StreamExistsError: A stream with another configuration exists.
            InvalidArgumentError: ``ttl_seconds`` together with ``expires_at``.
        """
        raw = self._native.create(
            blocking=True,
            content_type=content_type,
            ttl_seconds=ttl_seconds,
            expires_at=_expires_at(expires_at),
            closed=closed,
            body=None if body is None else _payload(body, "body"),
            fork_from=fork_from,
            fork_offset=fork_offset,
            fork_sub_offset=fork_sub_offset,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return CreateResult(**raw)

    def append(
        self,
        data: Data,
        *,
        seq: str | None = None,
        content_type: str | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> AppendResult:
        """Appends one message (``POST``): bytes, or in JSON mode one serialized JSON value.

        Args:
            data: ``str`` (sent as UTF-8) or bytes-like. Anything else is a ``TypeError``.
            seq: ``Stream-Seq``, a writer sequence that must increase (as a string) from
                append to append.
            content_type: Overrides the content type sent (it must match the stream's).
            headers: Headers for this request only.
            params: Query parameters for this request only.

        Raises:
            StreamClosedError: The stream is closed (``final_offset`` says where it ends).
            SeqConflictError: ``seq`` did not increase.
            InvalidArgumentError: An empty message.
        """
        raw = self._native.append(
            _payload(data),
            blocking=True,
            seq=seq,
            content_type=content_type,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return AppendResult(**raw)

    def append_json(
        self,
        value: object,
        *,
        seq: str | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> AppendResult:
        """Serializes ``value`` with :func:`json.dumps` and appends it as one message."""
        return self.append(_json(value), seq=seq, headers=headers, params=params)

    def append_batch(
        self,
        messages: Iterable[Data],
        *,
        seq: str | None = None,
        content_type: str | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> AppendResult:
        """Appends several messages in one request: one JSON array in JSON mode (the messages
        are joined as they are, not parsed again), their concatenation otherwise."""
        raw = self._native.append_batch(
            [_payload(m, "each message") for m in messages],
            blocking=True,
            seq=seq,
            content_type=content_type,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return AppendResult(**raw)

    def append_stream(
        self,
        source: Iterable[Data],
        *,
        seq: str | None = None,
        content_type: str | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> AppendResult:
        """Appends everything ``source`` yields as ONE message, sent as one streamed request
        while the source produces it (the reference's ``appendStream``). Chunks are ``str``
        (sent as UTF-8) or bytes-like; the next one is taken only when the connection has sent
        the one before, so memory stays bounded. On a JSON stream the whole body must be one
        JSON value or an array of messages.

        Never retried (a source cannot be replayed). An exception raised by the source aborts
        the request before its end, so nothing of it is stored, and is raised here; a
        generator the append did not read to its end is closed.
        """
        src = _Source(source, asynchronous=False)
        try:
            raw = self._native.append_stream(
                src.pull,
                blocking=True,
                seq=seq,
                content_type=content_type,
                headers=_pairs(headers, "headers"),
                params=_pairs(params, "params"),
            )
        except Exception:
            if src.failure is not None:
                raise src.failure from None
            raise
        finally:
            src.close()
        return AppendResult(**raw)

    def close(
        self,
        final_message: Data | None = None,
        *,
        content_type: str | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> CloseResult:
        """Closes the stream: readers see its end. Closing a closed stream succeeds, unless a
        ``final_message`` (appended in the same request) is given: then it raises
        :class:`StreamClosedError`."""
        raw = self._native.close(
            None if final_message is None else _payload(final_message, "final_message"),
            blocking=True,
            content_type=content_type,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return CloseResult(**raw)

    def stream(
        self,
        *,
        offset: str = "-1",
        live: Live | None = None,
        json: bool = False,
        headers: Headers | None = None,
        params: Headers | None = None,
        retry: RetryPolicy | None = None,
        on_error: OnError | None = None,
        max_chunk_bytes: int | None = None,
        max_read_bytes: int | None = None,
    ) -> StreamResponse:
        """Reads this stream: sends the first request and returns the response to consume.

        The handle's headers and parameters apply, with the read's over them; the arguments
        are those of :func:`durable_streams_client.stream`.

        Raises:
            StreamNotFoundError: There is no stream (and other errors of the first request).
        """
        kw = _read_kwargs(
            offset, live, json, headers, params, retry, on_error, max_chunk_bytes, max_read_bytes
        )
        return StreamResponse(self._native.stream(blocking=True, **kw))

    def delete(self) -> None:
        """Deletes the stream (``DELETE``).

        Raises:
            StreamNotFoundError: There is no stream at the URL.
        """
        self._native.delete(blocking=True)

    def head(self) -> HeadResult:
        """Stream metadata (``HEAD``); also records the content type on this handle.

        Raises:
            StreamNotFoundError: There is no stream at the URL.
        """
        return HeadResult(**self._native.head(blocking=True))

    def exists(self) -> bool:
        """Whether the stream exists (``HEAD``; other failures raise)."""
        return self._native.exists(blocking=True)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._native.release()


class AsyncDurableStream(_Handle):
    """A handle to one stream, for asyncio. Creating it sends nothing.

    The same operations as :class:`DurableStream`, as coroutines; call them from a running
    event loop. Cancelling a task cancels its request. Header and parameter callables may be
    ``async``. Used as an async context manager, the handle is released on exit (the stream
    itself stays as it is).

    Example::

        async with AsyncDurableStream("http://127.0.0.1:4437/v1/stream/chat") as s:
            await s.create(content_type="application/json")
            await s.append_json({"role": "user", "text": "hi"})
    """

    __slots__ = ()

    def __init__(
        self,
        url: str,
        *,
        client: _native.Client | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
        content_type: str | None = None,
        retry: RetryPolicy | None = None,
        append_retry: RetryPolicy | None = None,
        on_failed_attempt: Callable[[FailedAttempt], object] | None = None,
    ) -> None:
        super().__init__(
            url,
            client=client,
            headers=headers,
            params=params,
            content_type=content_type,
            retry=retry,
            append_retry=append_retry,
            on_failed_attempt=on_failed_attempt,
        )

    @classmethod
    async def connect(
        cls: type[_A],
        url: str,
        *,
        client: _native.Client | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
        retry: RetryPolicy | None = None,
        append_retry: RetryPolicy | None = None,
        on_failed_attempt: Callable[[FailedAttempt], object] | None = None,
    ) -> _A:
        """A handle to an existing stream: one ``HEAD`` learns its content type.
        See :meth:`DurableStream.connect`."""
        s = cls(
            url,
            client=client,
            headers=headers,
            params=params,
            retry=retry,
            append_retry=append_retry,
            on_failed_attempt=on_failed_attempt,
        )
        await s.head()
        return s

    async def create(
        self,
        *,
        content_type: str | None = None,
        ttl_seconds: int | None = None,
        expires_at: str | datetime | None = None,
        closed: bool = False,
        body: Data | None = None,
        fork_from: str | None = None,
        fork_offset: str | None = None,
        fork_sub_offset: int | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
    ) -> CreateResult:
        """Creates the stream. See :meth:`DurableStream.create`."""
        raw = await self._native.create(
            blocking=False,
            content_type=content_type,
            ttl_seconds=ttl_seconds,
            expires_at=_expires_at(expires_at),
            closed=closed,
            body=None if body is None else _payload(body, "body"),
            fork_from=fork_from,
            fork_offset=fork_offset,
            fork_sub_offset=fork_sub_offset,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return CreateResult(**raw)

    async def append(
        self,
        data: Data,
        *,
        seq: str | None = None,
        content_type: str | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
    ) -> AppendResult:
        """Appends one message. See :meth:`DurableStream.append`."""
        raw = await self._native.append(
            _payload(data),
            blocking=False,
            seq=seq,
            content_type=content_type,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return AppendResult(**raw)

    async def append_json(
        self,
        value: object,
        *,
        seq: str | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
    ) -> AppendResult:
        """Serializes ``value`` with :func:`json.dumps` and appends it as one message."""
        return await self.append(_json(value), seq=seq, headers=headers, params=params)

    async def append_batch(
        self,
        messages: Iterable[Data],
        *,
        seq: str | None = None,
        content_type: str | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
    ) -> AppendResult:
        """Appends several messages in one request. See :meth:`DurableStream.append_batch`."""
        raw = await self._native.append_batch(
            [_payload(m, "each message") for m in messages],
            blocking=False,
            seq=seq,
            content_type=content_type,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return AppendResult(**raw)

    async def append_stream(
        self,
        source: AsyncIterable[Data] | Iterable[Data],
        *,
        seq: str | None = None,
        content_type: str | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
    ) -> AppendResult:
        """Appends everything ``source`` (an async or a plain iterable) yields as ONE message,
        sent as one streamed request. See :meth:`DurableStream.append_stream`."""
        src = _Source(source, asynchronous=True)
        try:
            raw = await self._native.append_stream(
                src.apull,
                blocking=False,
                seq=seq,
                content_type=content_type,
                headers=_pairs(headers, "headers"),
                params=_pairs(params, "params"),
            )
        except Exception:
            if src.failure is not None:
                raise src.failure from None
            raise
        finally:
            await src.aclose()
        return AppendResult(**raw)

    async def close(
        self,
        final_message: Data | None = None,
        *,
        content_type: str | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
    ) -> CloseResult:
        """Closes the stream. See :meth:`DurableStream.close`."""
        raw = await self._native.close(
            None if final_message is None else _payload(final_message, "final_message"),
            blocking=False,
            content_type=content_type,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )
        return CloseResult(**raw)

    async def stream(
        self,
        *,
        offset: str = "-1",
        live: Live | None = None,
        json: bool = False,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
        retry: RetryPolicy | None = None,
        on_error: AsyncOnError | None = None,
        max_chunk_bytes: int | None = None,
        max_read_bytes: int | None = None,
    ) -> AsyncStreamResponse:
        """Reads this stream; like :meth:`DurableStream.stream`."""
        kw = _read_kwargs(
            offset, live, json, headers, params, retry, on_error, max_chunk_bytes, max_read_bytes
        )
        return AsyncStreamResponse(await self._native.stream(blocking=False, **kw))

    async def delete(self) -> None:
        """Deletes the stream. See :meth:`DurableStream.delete`."""
        await self._native.delete(blocking=False)

    async def head(self) -> HeadResult:
        """Stream metadata. See :meth:`DurableStream.head`."""
        return HeadResult(**(await self._native.head(blocking=False)))

    async def exists(self) -> bool:
        """Whether the stream exists. See :meth:`DurableStream.exists`."""
        return await self._native.exists(blocking=False)

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._native.release()
