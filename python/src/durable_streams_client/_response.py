"""Reading a stream: :func:`stream` / :func:`astream` and the responses they return.

A response is consumed once, in one of three styles: everything at once (``read_bytes``,
``read_text``, ``read_json``), chunk by chunk (``iter_bytes``, ``iter_text``, ``iter_json``,
or plain iteration, which yields byte chunks), or batch by batch with the offset to resume
from (``iter_batches``, ``iter_text_batches``, ``iter_json_batches``). A second consumer
raises :class:`AlreadyConsumedError`. Both flavours share the native response and have the
same semantics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Generic, Literal, Optional, TypeVar, Union

from . import _native
from ._errors import DurableStreamError
from ._types import RetryPolicy


def _pairs(values: Mapping[str, object] | None, what: str) -> list[tuple[str, object]]:
    if values is None:
        return []
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} must be a mapping of names to values")
    return list(values.items())


def _pick(field: str | None, fields: Iterable[str] | None) -> dict[str, Any]:
    """The native arguments of a JSON read that keeps only some of each message."""
    if field is not None and not isinstance(field, str):
        raise TypeError(f"field must be a member name (str), got {type(field).__name__}")
    if fields is None:
        return {} if field is None else {"field": field}
    if isinstance(fields, (str, bytes)):
        raise TypeError(
            "fields takes a list of member names, not one string; "
            "use field= for the value of one member"
        )
    names = list(fields)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"fields must hold member names (str), got {type(n).__name__}")
    return {"field": field, "fields": names}


def _policy(p: RetryPolicy | None) -> tuple[float, float, float, int | None] | None:
    return None if p is None else p._native()


__all__ = [
    "AsyncOnError",
    "AsyncStreamResponse",
    "Batch",
    "Live",
    "OnError",
    "StreamResponse",
    "astream",
    "stream",
]

T = TypeVar("T")
_Row = tuple[Any, str, Optional[str], bool, bool, bool]
"""A batch as the native layer hands it over."""
_R = TypeVar("_R", bound="StreamResponse")
_AR = TypeVar("_AR", bound="AsyncStreamResponse")

Live = Union[bool, Literal["auto", "long-poll", "sse"]]
"""How a read continues once it has caught up: ``False`` stops there; ``True`` or ``"auto"``
(the default, as in every language of this client) follows the stream live (SSE for JSON
streams, long-poll for others); ``"long-poll"`` and ``"sse"`` choose the transport. The
accumulating forms (``read_bytes``/``read_text``/``read_json``) end at the first up-to-date
point whatever the mode."""

OnError = Callable[[DurableStreamError], Optional[Mapping[str, Any]]]
"""Called after every failed attempt of a read request. Return ``{"headers": {...},
"params": {...}}`` to send it again with those values merged over the read's (e.g. a fresh
token), or ``None`` to leave it to the retry policy: the read goes on while the policy retries,
and ends with the error once it gives up or the error is not retryable. A read that is not
live gives up after 10 retries by default; a live one retries without limit."""

AsyncOnError = Callable[
    [DurableStreamError],
    Union[Optional[Mapping[str, Any]], Awaitable[Optional[Mapping[str, Any]]]],
]
"""Like :data:`OnError`; may also be ``async``."""


@dataclass(frozen=True)
class Batch(Generic[T]):
    """The data of one response, or of a part of one still arriving, or of the SSE events
    before one control event, with the position after it. When ``checkpoint`` is true, store
    ``offset`` once ``data`` is processed: a later read from there resumes exactly after it. A
    part of a response (``checkpoint`` false) carries the offset where that response started:
    resuming from it loses nothing but repeats that part."""

    data: T
    """``bytes``, ``str``, or a ``list`` of JSON messages (possibly empty)."""
    offset: str
    """The offset to resume from after this batch."""
    cursor: str | None
    """The server's cursor."""
    up_to_date: bool
    """Whether the reader had caught up with the stream here."""
    stream_closed: bool
    """Whether the stream is closed and this batch holds its last data."""
    checkpoint: bool = True
    """Whether the batch ends where a response ends (``offset`` resumes exactly after it)."""


def _live(live: Live | None) -> str | None:
    if live is None:
        return None  # not set: the core's default ("auto")
    if live is False:
        return "off"
    if live is True:
        return "auto"
    return live


class _Response:
    """What both flavours share: the read's metadata and closing."""

    __slots__ = ("_closed", "_native")

    def __init__(self, native: _native.Response) -> None:
        self._native = native
        self._closed = False

    @property
    def url(self) -> str:
        """The stream URL."""
        return self._native.url

    @property
    def content_type(self) -> str | None:
        """The stream's content type, from the first response."""
        return self._native.content_type

    @property
    def is_json(self) -> bool:
        """Whether the JSON consumers apply (a JSON stream, or ``json=True``)."""
        return self._native.is_json

    @property
    def live(self) -> str:
        """The live mode: ``"off"``, ``"auto"``, ``"long-poll"`` or ``"sse"``."""
        return self._native.live

    @property
    def start_offset(self) -> str:
        """The offset the read started from."""
        return self._native.start_offset

    @property
    def offset(self) -> str:
        """The offset after the data handed out so far: always safe to resume from."""
        return self._native.offset

    @property
    def cursor(self) -> str | None:
        """The last cursor the server sent."""
        return self._native.cursor

    @property
    def up_to_date(self) -> bool:
        """Whether the consumer has caught up with the stream."""
        return self._native.up_to_date

    @property
    def stream_closed(self) -> bool:
        """Whether the consumer has received the last data of a closed stream."""
        return self._native.stream_closed

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Ends the read now, from any thread: the request in flight is abandoned, iterations
        end, and a pending ``read_*`` fails. Idempotent."""
        self._closed = True
        self._native.cancel()

    def _got(self, data: T) -> T:
        """``data`` of this read is in our hands: :attr:`offset` moves past it. Until then it
        stays before it, so a call cancelled after the native read finished (the result
        thrown away with the ``CancelledError``) leaves an offset that reads the data again."""
        self._native.release_position()
        return data

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.url!r}, offset={self.offset!r}, live={self.live!r}, "
            f"up_to_date={self.up_to_date}, stream_closed={self.stream_closed})"
        )


class StreamResponse(_Response):
    """A read in progress, for blocking code (from :func:`stream` or
    :meth:`DurableStream.stream`). Consume it once; each wait releases the GIL and Ctrl-C
    interrupts it. Use it as a context manager to end the read on exit.

    Example::

        with stream(url, offset=saved, live=True) as resp:
            for batch in resp.iter_json_batches():
                handle(batch.data)
                saved = batch.offset
    """

    __slots__ = ()

    def read_bytes(self) -> bytes:
        """All bytes up to the first up-to-date point (or the end of a closed stream)."""
        return self._got(self._native.read_bytes(blocking=True))

    def read_text(self) -> str:
        """All text up to the first up-to-date point (UTF-8; invalid data is a
        :class:`ParseError`)."""
        return self._got(self._native.read_text(blocking=True))

    def read_json(
        self, *, field: str | None = None, fields: Iterable[str] | None = None
    ) -> list[Any]:
        """All JSON messages up to the first up-to-date point (JSON streams, or
        ``json=True``).

        To build only what you use, name it: ``field="text"`` gives the value of that
        top-level member of each message (``None`` where a message has no such member or is
        not an object), ``fields=["id", "text"]`` a dict of those members that each message
        has (``None`` for a message that is not an object). Every message is still checked
        whole; the rest of it is never turned into Python objects."""
        return self._got(self._native.read_json(blocking=True, **_pick(field, fields)))

    def _pull(self, kind: str, pick: dict[str, Any] | None = None) -> Iterator[_Row]:
        b = self._native.batches(kind, **(pick or {}))
        while True:
            t = b.next(blocking=True)
            if t is None:
                return
            yield self._got(t)

    def iter_batches(self) -> Iterator[Batch[bytes]]:
        """Batches of bytes with the offset after each; follows the live mode."""
        for t in self._pull("bytes"):
            yield Batch(*t)

    def iter_text_batches(self) -> Iterator[Batch[str]]:
        """Batches of text (a character split between responses comes whole in the second)."""
        for t in self._pull("text"):
            yield Batch(*t)

    def iter_json_batches(
        self, *, field: str | None = None, fields: Iterable[str] | None = None
    ) -> Iterator[Batch[list[Any]]]:
        """Batches of JSON messages (``field``/``fields`` as in :meth:`read_json`)."""
        for t in self._pull("json", _pick(field, fields)):
            yield Batch(*t)

    def iter_bytes(self) -> Iterator[bytes]:
        """Byte chunks (empty ones skipped); follows the live mode."""
        for t in self._pull("bytes"):
            if t[0]:
                yield t[0]

    def iter_text(self) -> Iterator[str]:
        """Text chunks (empty ones skipped)."""
        for t in self._pull("text"):
            if t[0]:
                yield t[0]

    def iter_json(
        self, *, field: str | None = None, fields: Iterable[str] | None = None
    ) -> Iterator[Any]:
        """JSON messages one by one (``field``/``fields`` as in :meth:`read_json`)."""
        for t in self._pull("json", _pick(field, fields)):
            yield from t[0]

    def __iter__(self) -> Iterator[bytes]:
        """Iterates byte chunks (:meth:`iter_bytes`)."""
        return self.iter_bytes()

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStreamResponse(_Response):
    """A read in progress, for asyncio (from :func:`astream` or
    :meth:`AsyncDurableStream.stream`). Same consumers as :class:`StreamResponse`, awaited
    or with ``async for``; cancelling the task that waits ends the request. Use ``async with``
    to end the read on exit."""

    __slots__ = ()

    async def read_bytes(self) -> bytes:
        """All bytes up to the first up-to-date point (or the end of a closed stream)."""
        return self._got(await self._native.read_bytes(blocking=False))

    async def read_text(self) -> str:
        """All text up to the first up-to-date point."""
        return self._got(await self._native.read_text(blocking=False))

    async def read_json(
        self, *, field: str | None = None, fields: Iterable[str] | None = None
    ) -> list[Any]:
        """All JSON messages up to the first up-to-date point (``field``/``fields`` as in
        :meth:`StreamResponse.read_json`)."""
        return self._got(await self._native.read_json(blocking=False, **_pick(field, fields)))

    async def _pull(self, kind: str, pick: dict[str, Any] | None = None) -> AsyncIterator[_Row]:
        b = self._native.batches(kind, **(pick or {}))
        while True:
            t = await b.next(blocking=False)
            if t is None:
                return
            yield self._got(t)

    async def iter_batches(self) -> AsyncIterator[Batch[bytes]]:
        """Batches of bytes with the offset after each; follows the live mode."""
        async for t in self._pull("bytes"):
            yield Batch(*t)

    async def iter_text_batches(self) -> AsyncIterator[Batch[str]]:
        """Batches of text."""
        async for t in self._pull("text"):
            yield Batch(*t)

    async def iter_json_batches(
        self, *, field: str | None = None, fields: Iterable[str] | None = None
    ) -> AsyncIterator[Batch[list[Any]]]:
        """Batches of JSON messages (``field``/``fields`` as in
        :meth:`StreamResponse.read_json`)."""
        async for t in self._pull("json", _pick(field, fields)):
            yield Batch(*t)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Byte chunks (empty ones skipped)."""
        async for t in self._pull("bytes"):
            if t[0]:
                yield t[0]

    async def iter_text(self) -> AsyncIterator[str]:
        """Text chunks (empty ones skipped)."""
        async for t in self._pull("text"):
            if t[0]:
                yield t[0]

    async def iter_json(
        self, *, field: str | None = None, fields: Iterable[str] | None = None
    ) -> AsyncIterator[Any]:
        """JSON messages one by one (``field``/``fields`` as in
        :meth:`StreamResponse.read_json`)."""
        async for t in self._pull("json", _pick(field, fields)):
            for m in t[0]:
                yield m

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterates byte chunks (:meth:`iter_bytes`)."""
        return self.iter_bytes()

    async def __aenter__(self: _AR) -> _AR:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_kwargs(
    offset: str,
    live: Live | None,
    json: bool,
    headers: Mapping[str, object] | None,
    params: Mapping[str, object] | None,
    retry: RetryPolicy | None,
    on_error: object | None,
    max_chunk_bytes: int | None = None,
    max_read_bytes: int | None = None,
) -> dict[str, Any]:
    if not isinstance(offset, str):
        raise TypeError(
            f'offset must be a str ("-1", "now" or a saved offset), not {type(offset).__name__}'
        )
    if on_error is not None and not callable(on_error):
        raise TypeError("on_error must be a callable")
    return {
        "offset": offset,
        "live": _live(live),
        "json": json,
        "headers": _pairs(headers, "headers"),
        "params": _pairs(params, "params"),
        "retry": _policy(retry),
        "on_error": on_error,
        "max_chunk_bytes": max_chunk_bytes,
        "max_read_bytes": max_read_bytes,
    }


def stream(
    url: str,
    *,
    offset: str = "-1",
    live: Live | None = None,
    json: bool = False,
    headers: Mapping[str, str | Callable[[], str]] | None = None,
    params: Mapping[str, str | Callable[[], str]] | None = None,
    retry: RetryPolicy | None = None,
    on_error: OnError | None = None,
    client: _native.Client | None = None,
    max_chunk_bytes: int | None = None,
    max_read_bytes: int | None = None,
) -> StreamResponse:
    """Reads the stream at ``url`` (blocking): sends the first request and returns the
    response to consume.

    Args:
        url: The stream URL.
        offset: Where to start: ``"-1"`` (the beginning, the default), ``"now"`` (only what
            is appended from now on) or an offset saved from an earlier read.
        live: ``True``/``"auto"`` (the default: catch up, then follow the stream),
            ``False`` (stop when caught up), ``"long-poll"`` or ``"sse"``; see :data:`Live`.
            Every mode ends when the stream is closed.
        json: Treat the data as JSON messages even if the content type is not JSON.
        headers: Headers for every request of the read (strings or callables).
        params: Query parameters, like ``headers``.
        retry: Retries of failed requests (default: 0.1 s to 60 s, no limit on retries).
        on_error: See :data:`OnError`.
        client: HTTP settings (default: the shared client).
        max_chunk_bytes: The most response data held before it is handed on (default
            8 MiB): batches and chunks of the ``iter_*`` forms carry at most about this much,
            so their memory does not grow with a response; a JSON message larger than this
            is a :class:`ParseError` naming the option.
        max_read_bytes: The most data ``read_bytes``/``read_text``/``read_json`` collect
            (default 256 MiB); past it they raise a :class:`ParseError` naming the option.

    Raises:
        StreamNotFoundError: There is no stream at ``url`` (and other errors of the first
            request, after retries and ``on_error``).
    """
    kw = _read_kwargs(
        offset, live, json, headers, params, retry, on_error, max_chunk_bytes, max_read_bytes
    )
    return StreamResponse(_native.read(url, blocking=True, client=client, **kw))


async def astream(
    url: str,
    *,
    offset: str = "-1",
    live: Live | None = None,
    json: bool = False,
    headers: Mapping[str, str | Callable[[], str | Awaitable[str]]] | None = None,
    params: Mapping[str, str | Callable[[], str | Awaitable[str]]] | None = None,
    retry: RetryPolicy | None = None,
    on_error: AsyncOnError | None = None,
    client: _native.Client | None = None,
    max_chunk_bytes: int | None = None,
    max_read_bytes: int | None = None,
) -> AsyncStreamResponse:
    """Like :func:`stream`, for asyncio: ``resp = await astream(url, live=True)``."""
    kw = _read_kwargs(
        offset, live, json, headers, params, retry, on_error, max_chunk_bytes, max_read_bytes
    )
    return AsyncStreamResponse(await _native.read(url, blocking=False, client=client, **kw))
