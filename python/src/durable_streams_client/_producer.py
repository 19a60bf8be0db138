"""IdempotentProducer (blocking) and AsyncIdempotentProducer (asyncio): exactly-once appends
with batching and pipelining, on the core's producer.

``append`` returns at once with a receipt (the message is batched and sent in the background);
the receipt gives the :class:`Delivery` when the batch is acknowledged. The producer's task
runs on the package's runtime, so a blocking program keeps sending while it computes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, TypeVar

from . import _native
from ._errors import BufferFullError, DurableStreamError
from ._native import Producer as _NativeProducer
from ._response import _pairs, _policy
from ._stream import AsyncDurableStream, AsyncHeaders, DurableStream, _payload
from ._types import RetryPolicy

__all__ = [
    "AsyncIdempotentProducer",
    "AsyncReceipt",
    "Delivery",
    "IdempotentProducer",
    "ProducerMetrics",
    "Receipt",
]

_P = TypeVar("_P", bound="IdempotentProducer")
_AP = TypeVar("_AP", bound="AsyncIdempotentProducer")

ProducerErrorHandler = Callable[[DurableStreamError], object]


@dataclass(frozen=True)
class Delivery:
    """The outcome of one message."""

    offset: str | None
    """The stream's tail offset after the batch holding the message (``None`` for a
    duplicate, which the server reports without an offset)."""
    duplicate: bool
    """Whether the server had stored this batch already (a retry after a lost response)."""
    epoch: int
    """The epoch the batch was sent with."""
    seq: int
    """The batch's sequence number."""


@dataclass(frozen=True)
class ProducerMetrics:
    """A snapshot of a producer's counters. Latencies in seconds."""

    appended_messages: int
    messages: int
    bytes: int
    batches: int
    requests: int
    retries: int
    duplicates: int
    failed_batches: int
    failed_messages: int
    in_flight: int
    buffered_bytes: int
    latency_count: int
    latency_total: float
    latency_max: float
    latency_mean: float


def _delivery(raw: dict[str, Any] | None, timeout: float | None) -> Delivery:
    if raw is None:
        raise TimeoutError(
            f"the message was not delivered within {timeout} s (it is still pending)"
        )
    return Delivery(**raw)


#: The outcome of one appended message (blocking flavour): a native class, so that an append
#: costs no Python object of its own. ``message_number``, ``done()``, ``result(timeout=None)``.
Receipt = _native.Receipt


#: The outcome of one appended message (asyncio): ``delivery = await receipt`` (or
#: ``await receipt.result(timeout)``); ``message_number``, ``done()``. A native class too.
AsyncReceipt = _native.AsyncReceipt


async def _async_result(native: _native.Receipt, timeout: float | None) -> Delivery:
    """``AsyncReceipt.result``: the delivery, or the batch's error (``TimeoutError`` once
    ``timeout`` seconds passed). Cancelling the awaiting task only stops the wait."""
    return _delivery(await native._result(blocking=False, timeout=timeout), timeout)


def _check_data(data: object) -> str | bytes:
    try:
        return _payload(data)
    except TypeError:
        raise TypeError(
            f"a producer message must be str or bytes-like (bytes, bytearray, memoryview), not "
            f"{type(data).__name__}: serialize objects first, e.g. json.dumps(value), or use "
            "append_json(value)"
        ) from None


def _refuse_async(headers: object, params: object, why: str) -> None:
    """Raises TypeError for an ``async def`` header or parameter callable (one that returns a
    coroutine otherwise is only found when a batch is sent, and fails it)."""
    for what, values in (("header", headers), ("parameter", params)):
        if not isinstance(values, Mapping):
            continue
        for name, v in values.items():
            # An async function, or an object whose __call__ is one.
            if inspect.iscoroutinefunction(v) or (
                callable(v) and inspect.iscoroutinefunction(type(v).__call__)
            ):
                raise TypeError(f"the {what} {name!r} is an async callable: {why}")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Producer:
    """What both flavours share: construction and properties."""

    # The slot is the subclasses' (the blocking one has a native base).
    __slots__ = ()
    _native: _NativeProducer

    @staticmethod
    def _create(
        stream: DurableStream | AsyncDurableStream,
        producer_id: str,
        *,
        epoch: int,
        auto_claim: bool,
        linger_ms: float | None,
        max_batch_bytes: int | None,
        max_batch_messages: int | None,
        max_in_flight: int | None,
        max_buffered_bytes: int | None,
        buffer_timeout: float | None,
        delivery_timeout: float | None,
        validate_json: bool,
        retry: RetryPolicy | None,
        headers: Mapping[str, object] | None,
        params: Mapping[str, object] | None,
        on_error: Callable[[DurableStreamError], object] | None,
        on_loop: bool = False,
    ) -> _NativeProducer:
        if on_error is not None and not callable(on_error):
            raise TypeError("on_error must be a callable")
        return stream._native.producer(
            producer_id,
            epoch=epoch,
            auto_claim=auto_claim,
            linger=None if linger_ms is None else linger_ms / 1000.0,
            max_batch_bytes=max_batch_bytes,
            max_batch_messages=max_batch_messages,
            max_in_flight=max_in_flight,
            max_buffered_bytes=max_buffered_bytes,
            buffer_timeout=buffer_timeout,
            delivery_timeout=delivery_timeout,
            validate_json=validate_json,
            retry=_policy(retry),
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
            on_error=on_error,
            asyncio=on_loop,
        )

    @property
    def producer_id(self) -> str:
        """The producer id."""
        return self._native.producer_id

    @property
    def epoch(self) -> int:
        """The current epoch (raised by auto-claim or :meth:`restart`)."""
        return self._native.epoch

    @property
    def next_seq(self) -> int:
        """The sequence number the next batch gets."""
        return self._native.next_seq

    @property
    def pending_count(self) -> int:
        """Messages appended and not yet delivered or failed."""
        return self._native.pending_count

    @property
    def in_flight_count(self) -> int:
        """Requests in flight (one waiting to be retried counts)."""
        return self._native.in_flight_count

    @property
    def buffered_bytes(self) -> int:
        """Message bytes waiting in the producer (at most ``max_buffered_bytes``)."""
        return self._native.buffered_bytes

    @property
    def last_offset(self) -> str | None:
        """The greatest offset the server acknowledged to this producer."""
        return self._native.last_offset

    def metrics(self) -> ProducerMetrics:
        """A snapshot of the producer's counters."""
        return ProducerMetrics(**self._native.metrics())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.producer_id!r}, epoch={self.epoch}, "
            f"next_seq={self.next_seq}, pending={self.pending_count})"
        )


_DOC_ARGS = """
    Args:
        stream: The stream handle (its URL, client, headers, parameters and content type).
        producer_id: Identifies the writer; with ``epoch`` and the batch sequence numbers it
            lets the server drop retried batches it already stored.
        epoch: The session number. Every new session of a ``producer_id`` needs a higher
            epoch than the last (persist it, or use ``auto_claim``).
        auto_claim: On a 403 (a newer epoch exists), take over with that epoch + 1.
        Options left unset (``None``) take the core's defaults, the same in every language
        (5 ms linger, 1 MiB batches, 5 in flight, 32 MiB buffered, 60 s buffer timeout, 120 s
        delivery timeout); the core validates every value and names a bad one.

        linger_ms: How long a batch waits for more messages before it is sent.
        max_batch_bytes: A batch is sent once it holds this many bytes.
        max_batch_messages: ... or this many messages (default: no limit).
        max_in_flight: Requests sent concurrently (pipelining).
        max_buffered_bytes: Bytes buffered at most; beyond, appends wait or fail with
            :class:`BufferFullError`.
        buffer_timeout: Seconds an append waits for room before it fails with
            :class:`StreamTimeoutError`.
        delivery_timeout: Seconds a batch may take, retries included, before it fails.
        validate_json: On a JSON stream, check that each message is one JSON value.
        retry: Retries of failed batches (default: the core's producer policy).
        headers: Extra headers (strings or callables, computed for every request), on top of
            the stream handle's.
        params: Extra query parameters, like ``headers``.
        on_error: Called with the error of every batch that fails for good; never from the
            producer's own task, so a slow handler does not stall deliveries."""


class IdempotentProducer(_Producer, _native.ProducerBase):
    (
        """An exactly-once producer for blocking code.

    ``append`` returns a :class:`Receipt` at once; it only waits (GIL released, up to
    ``buffer_timeout``) when ``max_buffered_bytes`` are buffered. Used as a context manager,
    the producer is flushed and *detached* on exit: the stream stays open (call
    :meth:`close` to close the stream itself). Header and parameter callables must be plain
    (an ``async`` one fails the batch with :class:`InvalidArgumentError`).
    """
        + _DOC_ARGS
    )

    __slots__ = ("_native",)

    def __init__(
        self,
        stream: DurableStream,
        producer_id: str,
        *,
        epoch: int = 0,
        auto_claim: bool = False,
        linger_ms: float | None = None,
        max_batch_bytes: int | None = None,
        max_batch_messages: int | None = None,
        max_in_flight: int | None = None,
        max_buffered_bytes: int | None = None,
        buffer_timeout: float | None = None,
        delivery_timeout: float | None = None,
        validate_json: bool = True,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str | Callable[[], str]] | None = None,
        params: Mapping[str, str | Callable[[], str]] | None = None,
        on_error: ProducerErrorHandler | None = None,
    ) -> None:
        if not isinstance(stream, DurableStream):
            raise TypeError(
                "IdempotentProducer needs a DurableStream (AsyncIdempotentProducer takes an "
                "AsyncDurableStream)"
            )
        _refuse_async(
            headers,
            params,
            "IdempotentProducer takes plain callables (AsyncIdempotentProducer awaits async "
            "ones on its event loop)",
        )
        self._native = _Producer._create(
            stream,
            producer_id,
            epoch=epoch,
            auto_claim=auto_claim,
            linger_ms=linger_ms,
            max_batch_bytes=max_batch_bytes,
            max_batch_messages=max_batch_messages,
            max_in_flight=max_in_flight,
            max_buffered_bytes=max_buffered_bytes,
            buffer_timeout=buffer_timeout,
            delivery_timeout=delivery_timeout,
            validate_json=validate_json,
            retry=retry,
            headers=headers,
            params=params,
            on_error=on_error,
        )
        self._bind(self._native)

    # append(data) -> Receipt is the native base's method: one native call per message.

    def append_many(self, messages: Iterable[str | bytes]) -> Receipt | None:
        """Appends every message of ``messages`` (``str`` or ``bytes``), in order, in one call
        into the native layer: the batch form of :meth:`append`, much cheaper per message.
        Each message is checked as by :meth:`append`; waits (GIL released) for room whenever
        the buffer is full.

        Returns the receipt of the last message (``None`` when there was none); batches settle
        in order, so once it is done every earlier message is settled too (:meth:`flush`
        reports their failures). A failing message raises at once; the ones before it stay
        appended."""
        _, last, _, _ = self._native.append_many(messages, None, None, True)
        return last

    def try_append(self, data: str | bytes | bytearray | memoryview) -> Receipt:
        """Like :meth:`append`, but raises :class:`BufferFullError` instead of waiting."""
        return self._native.try_append(_check_data(data))

    def append_json(self, value: object) -> Receipt:
        """Serializes ``value`` with ``json.dumps`` and appends it."""
        return self.append(_dumps(value))

    def wait_for_room(self, nbytes: int) -> None:
        """Waits until ``nbytes`` more would fit in the buffer."""
        self._native.wait_for_room(nbytes, blocking=True)

    def flush(self) -> None:
        """Sends what is batched and waits until everything appended before is delivered or
        failed; raises the first failure since the previous flush."""
        self._native.flush(blocking=True)

    def close(
        self, final_message: str | bytes | bytearray | memoryview | None = None
    ) -> str | None:
        """Flushes, then closes the *stream* (optionally appending ``final_message`` in the
        same request). Returns the stream's final offset; calling it again returns it again."""
        body = None if final_message is None else _check_data(final_message)
        return self._native.close(body, blocking=True)

    def detach(self) -> None:
        """Flushes and stops the producer, leaving the stream open."""
        self._native.detach(blocking=True)

    def restart(self) -> None:
        """Flushes, then starts a new session (epoch + 1, sequence 0)."""
        self._native.restart(blocking=True)

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()


class AsyncIdempotentProducer(_Producer, _native.AsyncProducerBase):
    (
        """An exactly-once producer for asyncio. It never blocks the event loop.

    ``append`` is a plain (non-async) call: it returns an :class:`AsyncReceipt` at once, or
    raises :class:`BufferFullError` when ``max_buffered_bytes`` are buffered; use
    ``await append_wait(data)`` (or ``await wait_for_room(n)``) to wait for room instead.
    ``on_error`` runs on the event loop the producer was created in. Used with ``async with``,
    the producer is flushed and detached on exit; the stream stays open.

    Header and parameter callables (the producer's and the stream handle's) may be ``async``:
    batches are sent by the producer's own task, not by a caller, so their coroutines run on
    the event loop the producer was created in. That loop must be running when a batch is
    sent; a producer created outside a running loop takes plain callables only (an
    ``async`` one fails the batch with :class:`InvalidArgumentError`).
    """
        + _DOC_ARGS
    )

    __slots__ = ("_native",)

    def __init__(
        self,
        stream: AsyncDurableStream,
        producer_id: str,
        *,
        epoch: int = 0,
        auto_claim: bool = False,
        linger_ms: float | None = None,
        max_batch_bytes: int | None = None,
        max_batch_messages: int | None = None,
        max_in_flight: int | None = None,
        max_buffered_bytes: int | None = None,
        buffer_timeout: float | None = None,
        delivery_timeout: float | None = None,
        validate_json: bool = True,
        retry: RetryPolicy | None = None,
        headers: AsyncHeaders | None = None,
        params: AsyncHeaders | None = None,
        on_error: ProducerErrorHandler | None = None,
    ) -> None:
        if not isinstance(stream, AsyncDurableStream):
            raise TypeError(
                "AsyncIdempotentProducer needs an AsyncDurableStream (IdempotentProducer takes "
                "a DurableStream)"
            )
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            _refuse_async(
                headers,
                params,
                "its coroutines run on the event loop the producer is created in, and none is "
                "running; create the producer inside a coroutine, or pass plain callables",
            )
        handler = on_error
        if on_error is not None and loop is not None:
            user, running = on_error, loop

            def handler(e: DurableStreamError) -> None:
                if not running.is_closed():
                    running.call_soon_threadsafe(user, e)

        self._native = _Producer._create(
            stream,
            producer_id,
            epoch=epoch,
            auto_claim=auto_claim,
            linger_ms=linger_ms,
            max_batch_bytes=max_batch_bytes,
            max_batch_messages=max_batch_messages,
            max_in_flight=max_in_flight,
            max_buffered_bytes=max_buffered_bytes,
            buffer_timeout=buffer_timeout,
            delivery_timeout=delivery_timeout,
            validate_json=validate_json,
            retry=retry,
            headers=headers,
            params=params,
            on_error=handler,
            on_loop=True,
        )
        self._bind(self._native)

    # append(data) -> AsyncReceipt is the native base's method: one native call per message.

    def append_json(self, value: object) -> AsyncReceipt:
        """Serializes ``value`` with ``json.dumps`` and appends it (like :meth:`append`)."""
        return self.append(_dumps(value))

    async def append_many(self, messages: Iterable[str | bytes]) -> AsyncReceipt | None:
        """Appends every message of ``messages`` (``str`` or ``bytes``), in order, with one
        native call per run of messages that fits: the batch form of :meth:`append`, waiting
        (without blocking the event loop) for room whenever the buffer is full.

        Returns the receipt of the last message (``None`` when there was none); batches settle
        in order, so once it is done every earlier message is settled too (:meth:`flush`
        reports their failures). A failing message raises at once; the ones before it stay
        appended."""
        it = iter(messages)
        _, last, pending, error = self._native.append_many(it, None, None, False)
        while pending is not None:
            head = pending[0]
            size = len(head.encode()) if isinstance(head, str) else len(head)
            await self._native.wait_for_room(size, blocking=False)
            _, more, pending, error = self._native.append_many(it, pending, error, False)
            last = more if more is not None else last
        return None if last is None else AsyncReceipt(last)

    async def append_wait(self, data: str | bytes | bytearray | memoryview) -> AsyncReceipt:
        """Appends one message, waiting (up to ``buffer_timeout``) for room.

        Cancelling the call never leaves the message appended behind the caller's back: the
        message goes in here, on the event loop, at once or right after a wait for room, and
        a cancellation can only land in that wait, before it went in."""
        body = _check_data(data)
        while True:
            try:
                return self.append(body)
            except BufferFullError:
                size = len(body.encode()) if isinstance(body, str) else len(body)
            # Waits without taking the room, so it can be cancelled at any point; room that
            # another append takes first means one more wait.
            await self._native.wait_for_room(size, blocking=False)

    async def wait_for_room(self, nbytes: int) -> None:
        """Waits until ``nbytes`` more would fit (another append may still take the room)."""
        await self._native.wait_for_room(nbytes, blocking=False)

    async def flush(self) -> None:
        """Sends what is batched and waits until everything appended before is settled."""
        await self._native.flush(blocking=False)

    async def close(
        self, final_message: str | bytes | bytearray | memoryview | None = None
    ) -> str | None:
        """Flushes, then closes the *stream*; returns its final offset."""
        body = None if final_message is None else _check_data(final_message)
        return await self._native.close(body, blocking=False)

    async def detach(self) -> None:
        """Flushes and stops the producer, leaving the stream open."""
        await self._native.detach(blocking=False)

    async def restart(self) -> None:
        """Flushes, then starts a new session (epoch + 1, sequence 0)."""
        await self._native.restart(blocking=False)

    async def __aenter__(self: _AP) -> _AP:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.detach()
