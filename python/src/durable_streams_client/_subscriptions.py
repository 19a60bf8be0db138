"""Subscriptions (PROTOCOL §6-7): durable cursors over many streams that wake workers.

:class:`Subscriptions` / :class:`AsyncSubscriptions` manage them and speak the lease protocol;
:class:`PullWakeWorker` / :class:`AsyncPullWakeWorker` turn a pull-wake subscription into a
work queue (a handler callback, or an iterator of :class:`Job`); :class:`WebhookVerifier` /
:class:`AsyncWebhookVerifier` check signed webhook deliveries.

Delivery is exactly once in the normal case and *at least once* when a worker processes a
delivery and dies (or loses its lease) before its ack lands: the next worker reads again from
the last acked offset. A handler makes itself idempotent by storing ``(item.stream,
item.offset)`` with its effects and skipping a delivery whose offset is not past the stored one.
Every item ends at an offset to resume from and starts at its stream's acked offset; an item
read again after a crash may hold more than before (the same ``start_offset``, the messages
handled before first): to skip exactly those, store its ``start_offset`` and number of messages
(bytes) too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Union

from . import _native
from ._stream import AsyncDurableStream, DurableStream, Headers, _pairs

__all__ = [
    "WEBHOOK_DONE",
    "AckResult",
    "AsyncJobQueue",
    "AsyncPullWakeWorker",
    "AsyncSubscriptions",
    "AsyncWebhookVerifier",
    "CreateSubscriptionResult",
    "Job",
    "JobQueue",
    "PullWakeWorker",
    "SigningInfo",
    "StreamLink",
    "Subscription",
    "Subscriptions",
    "Wake",
    "WakeStream",
    "WebhookVerifier",
    "WorkItem",
]

WEBHOOK_DONE: bytes = _native.WEBHOOK_DONE.encode()
"""The body that finishes a webhook wake synchronously (answer 200 with
``Content-Type: application/json``): the server acks the wake's tail offsets and releases it."""

Acks = Union[Mapping[str, str], Iterable[tuple[str, str]]]
"""Acknowledgements: stream path -> last processed offset (inclusive)."""


@dataclass(frozen=True)
class StreamLink:
    """A stream linked to a subscription and its cursor."""

    path: str
    """Stream-root-relative path."""
    link_type: str
    """``"glob"`` (matched by the pattern) or ``"explicit"``."""
    acked_offset: str
    """The last processed offset (inclusive)."""


@dataclass(frozen=True)
class SigningInfo:
    """How a webhook subscription's deliveries are signed."""

    alg: str
    kid: str
    jwks_url: str


@dataclass(frozen=True)
class Subscription:
    """A subscription as the server reports it."""

    id: str
    kind: str
    """``"pull-wake"`` or ``"webhook"``."""
    pattern: str | None
    streams: list[StreamLink]
    wake_stream: str | None
    webhook_url: str | None
    signing: SigningInfo | None
    lease_ttl_ms: int
    created_at: str | None
    status: str | None
    description: str | None

    def acked_offset(self, path: str) -> str | None:
        """The acked offset of a linked stream, or ``None`` when it is not linked."""
        return next((s.acked_offset for s in self.streams if s.path == path), None)


@dataclass(frozen=True)
class CreateSubscriptionResult:
    """What :meth:`Subscriptions.create` found."""

    created: bool
    """True when this call created it (201); False when an identical one existed (200)."""
    subscription: Subscription


@dataclass(frozen=True)
class AckResult:
    """The answer to an ack, a heartbeat or a callback."""

    ok: bool
    next_wake: bool
    """After ``done``: whether the server made another wake for work still pending."""


@dataclass(frozen=True)
class WakeStream:
    """One stream of a wake: its cursor and the tail when the wake was made."""

    path: str
    link_type: str
    acked_offset: str
    tail_offset: str
    has_pending: bool


class Wake:
    """A held wake: a claim (pull-wake) or a verified webhook delivery. Its token stays in the
    native layer and never appears in a repr, a log or an error."""

    __slots__ = ("_native", "streams")

    def __init__(self, native: _native.Wake) -> None:
        self._native = native
        self.streams: list[WakeStream] = [WakeStream(*s) for s in native.streams]

    @property
    def subscription_id(self) -> str:
        return self._native.subscription_id

    @property
    def wake_id(self) -> str:
        return self._native.wake_id

    @property
    def generation(self) -> int:
        """The fencing generation."""
        return self._native.generation

    @property
    def lease_ttl_ms(self) -> int | None:
        """The lease (claims only)."""
        return self._native.lease_ttl_ms

    @property
    def callback_url(self) -> str | None:
        """Where to call back (webhook deliveries only)."""
        return self._native.callback_url

    def __repr__(self) -> str:
        return (
            f"Wake(subscription_id={self.subscription_id!r}, wake_id={self.wake_id!r}, "
            f"generation={self.generation}, streams={len(self.streams)}, token=<redacted>)"
        )


@dataclass(frozen=True)
class WorkItem:
    """The messages of one stream handed to a handler: what one answer of the server held.

    ``offset`` is where it ends, a point to resume from; the worker acks it once the handler
    returns, before it hands over the stream's next item. For idempotent handling, store
    ``(stream, offset)`` with the effects and skip an item whose ``offset`` is not past the
    stored one (offsets compare as strings); see the module's note on items read again."""

    stream: str
    """Stream-root-relative path."""
    start_offset: str
    """The offset this item starts after: its stream's acked offset."""
    offset: str
    """The offset this item ends at (the ack point)."""
    messages: list[Any]
    """JSON streams: the messages (empty otherwise)."""
    data: bytes
    """Other streams: the bytes (empty for JSON streams)."""


class Job:
    """One delivery of a worker's job queue: answer it with :meth:`ack` or :meth:`fail`.

    A job that is never answered holds the wake until the queue stops (then it is released)."""

    __slots__ = ("_native", "item")

    def __init__(self, native: _native.Job) -> None:
        self._native = native
        raw = native.messages_json
        self.item = WorkItem(
            stream=native.stream,
            start_offset=native.start_offset,
            offset=native.offset,
            messages=[] if raw is None else json.loads(raw),
            data=native.data,
        )

    def ack(self) -> None:
        """Handled: the worker acks ``item.offset`` and goes on."""
        self._native.ack()

    def fail(self, reason: str = "failed") -> None:
        """Not handled: the worker releases the wake without acking; it is woken again."""
        self._native.fail(reason)

    def __repr__(self) -> str:
        return f"Job(stream={self.item.stream!r}, offset={self.item.offset!r})"


def _acks(acks: Acks) -> list[tuple[str, str]]:
    items = acks.items() if isinstance(acks, Mapping) else acks
    return [(str(s), str(o)) for s, o in items]


def _subscription(raw: dict[str, Any]) -> Subscription:
    signing = raw["signing"]
    return Subscription(
        id=raw["id"],
        kind=raw["kind"],
        pattern=raw["pattern"],
        streams=[StreamLink(*s) for s in raw["streams"]],
        wake_stream=raw["wake_stream"],
        webhook_url=raw["webhook_url"],
        signing=None if signing is None else SigningInfo(*signing),
        lease_ttl_ms=raw["lease_ttl_ms"],
        created_at=raw["created_at"],
        status=raw["status"],
        description=raw["description"],
    )


def _created(raw: tuple[bool, dict[str, Any]]) -> CreateSubscriptionResult:
    return CreateSubscriptionResult(created=raw[0], subscription=_subscription(raw[1]))


class _Base:
    __slots__ = ("_client", "_headers", "_native", "_params")

    def __init__(
        self,
        root: str,
        *,
        client: _native.Client | None = None,
        headers: Headers | None = None,
        params: Headers | None = None,
    ) -> None:
        self._client = client
        self._headers = headers
        self._params = params
        self._native = _native.Subscriptions(
            root,
            client=client,
            headers=_pairs(headers, "headers"),
            params=_pairs(params, "params"),
        )

    @property
    def root(self) -> str:
        """The stream root URL (ends with ``/``)."""
        return self._native.root

    @property
    def jwks_url(self) -> str:
        """The URL of the server's webhook signing keys (``__ds/jwks.json`` under the root)."""
        return self._native.jwks_url

    def _create_args(
        self,
        wake_stream: str | None,
        webhook_url: str | None,
        pattern: str | None,
        streams: Iterable[str],
        lease: float | None,
        description: str | None,
    ) -> dict[str, Any]:
        if isinstance(streams, str):
            raise TypeError("streams must be an iterable of paths, not one string")
        return {
            "wake_stream": wake_stream,
            "webhook_url": webhook_url,
            "pattern": pattern,
            "streams": list(streams),
            "lease": lease,
            "description": description,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"


class Subscriptions(_Base):
    """Subscriptions of the streams under one stream root, for blocking code.

    Args:
        root: The stream root: the URL prefix under which the server's streams live, e.g.
            ``http://127.0.0.1:4437/v1/stream/``. Paths below are relative to it.
        client: HTTP settings (default: one shared client).
        headers: Headers sent with every request (strings or callables).
        params: Query parameters sent with every request.

    Example::

        subs = Subscriptions("http://127.0.0.1:4437/v1/stream/")
        subs.create("billing", wake_stream="wake/billing", pattern="orders/*", lease=30)
        worker = subs.worker("billing", "worker-1", "wake/billing")
    """

    __slots__ = ()

    def stream(self, path: str) -> DurableStream:
        """A stream handle for a root-relative path, with this handle's client and headers."""
        return DurableStream(
            self.root + path, client=self._client, headers=self._headers, params=self._params
        )

    def create(
        self,
        id: str,
        *,
        wake_stream: str | None = None,
        webhook_url: str | None = None,
        pattern: str | None = None,
        streams: Iterable[str] = (),
        lease: float | None = None,
        description: str | None = None,
    ) -> CreateSubscriptionResult:
        """Creates the subscription, or confirms an identical one.

        Exactly one of ``wake_stream`` (pull-wake; the stream must exist) and ``webhook_url``;
        at least one of ``pattern`` (a glob: ``*`` one segment, ``**`` any) and ``streams``;
        ``lease`` in seconds, 1 to 600 (server default 30). Checked before any request.

        Raises:
            InvalidArgumentError: The configuration is not valid.
            SubscriptionError: Another configuration exists under this id
                (``subscription_code == "SUBSCRIPTION_ALREADY_EXISTS"``).
        """
        args = self._create_args(wake_stream, webhook_url, pattern, streams, lease, description)
        raw: tuple[bool, dict[str, Any]] = self._native.create(id, blocking=True, **args)
        return _created(raw)

    def get(self, id: str) -> Subscription:
        """The subscription with its linked streams and acked offsets."""
        raw: dict[str, Any] = self._native.get(id, True)
        return _subscription(raw)

    def delete(self, id: str) -> None:
        """Deletes the subscription (idempotent)."""
        self._native.delete(id, True)

    def add_streams(self, id: str, streams: Iterable[str]) -> None:
        """Links explicit streams (at their current tail; idempotent)."""
        self._native.add_streams(id, list(streams), True)

    def remove_stream(self, id: str, path: str) -> None:
        """Removes an explicit link (a glob link stays; idempotent)."""
        self._native.remove_stream(id, path, True)

    def claim(self, id: str, worker: str) -> Wake:
        """Claims a pull-wake subscription's lease.

        Raises:
            AlreadyClaimedError: Another worker holds it.
            NoPendingWorkError: Nothing to do.
        """
        return Wake(self._native.claim(id, worker, True))

    def ack(self, wake: Wake, acks: Acks = (), *, done: bool = False) -> AckResult:
        """Acks progress on a claimed wake; without acks and ``done`` it is a heartbeat.

        Raises:
            FencedError: The wake is stale; nothing was acked, unless the request was retried
                after an attempt whose answer was lost (the message then says so): that
                attempt may have landed.
        """
        ok, nxt = self._native.ack(wake._native, _acks(acks), done=done, blocking=True)
        return AckResult(ok, nxt)

    def callback(self, wake: Wake, acks: Acks = (), *, done: bool = False) -> AckResult:
        """Answers a webhook wake asynchronously through its ``callback_url`` (which must be
        on the stream root's origin).

        Raises:
            FencedError: The wake is stale; nothing was acked.
        """
        ok, nxt = self._native.callback(wake._native, _acks(acks), done=done, blocking=True)
        return AckResult(ok, nxt)

    def release(self, wake: Wake) -> None:
        """Gives a claimed wake back without acking; pending work is woken again."""
        self._native.release(wake._native, True)

    def worker(
        self,
        id: str,
        worker: str,
        wake_stream: str,
        *,
        from_offset: str | None = None,
        heartbeats: bool = True,
    ) -> PullWakeWorker:
        """A pull-wake worker named ``worker`` for subscription ``id``; see
        :class:`PullWakeWorker`."""
        return PullWakeWorker(self, id, worker, wake_stream, from_offset, heartbeats)


class AsyncSubscriptions(_Base):
    """Subscriptions for asyncio code; the same operations as :class:`Subscriptions`."""

    __slots__ = ()

    def stream(self, path: str) -> AsyncDurableStream:
        """A stream handle for a root-relative path, with this handle's client and headers."""
        return AsyncDurableStream(
            self.root + path, client=self._client, headers=self._headers, params=self._params
        )

    async def create(
        self,
        id: str,
        *,
        wake_stream: str | None = None,
        webhook_url: str | None = None,
        pattern: str | None = None,
        streams: Iterable[str] = (),
        lease: float | None = None,
        description: str | None = None,
    ) -> CreateSubscriptionResult:
        """See :meth:`Subscriptions.create`."""
        args = self._create_args(wake_stream, webhook_url, pattern, streams, lease, description)
        raw: tuple[bool, dict[str, Any]] = await self._native.create(id, blocking=False, **args)
        return _created(raw)

    async def get(self, id: str) -> Subscription:
        """See :meth:`Subscriptions.get`."""
        raw: dict[str, Any] = await self._native.get(id, False)
        return _subscription(raw)

    async def delete(self, id: str) -> None:
        """See :meth:`Subscriptions.delete`."""
        await self._native.delete(id, False)

    async def add_streams(self, id: str, streams: Iterable[str]) -> None:
        """See :meth:`Subscriptions.add_streams`."""
        await self._native.add_streams(id, list(streams), False)

    async def remove_stream(self, id: str, path: str) -> None:
        """See :meth:`Subscriptions.remove_stream`."""
        await self._native.remove_stream(id, path, False)

    async def claim(self, id: str, worker: str) -> Wake:
        """See :meth:`Subscriptions.claim`."""
        return Wake(await self._native.claim(id, worker, False))

    async def ack(self, wake: Wake, acks: Acks = (), *, done: bool = False) -> AckResult:
        """See :meth:`Subscriptions.ack`."""
        ok, nxt = await self._native.ack(wake._native, _acks(acks), done=done, blocking=False)
        return AckResult(ok, nxt)

    async def callback(self, wake: Wake, acks: Acks = (), *, done: bool = False) -> AckResult:
        """See :meth:`Subscriptions.callback`."""
        ok, nxt = await self._native.callback(wake._native, _acks(acks), done=done, blocking=False)
        return AckResult(ok, nxt)

    async def release(self, wake: Wake) -> None:
        """See :meth:`Subscriptions.release`."""
        await self._native.release(wake._native, False)

    def worker(
        self,
        id: str,
        worker: str,
        wake_stream: str,
        *,
        from_offset: str | None = None,
        heartbeats: bool = True,
    ) -> AsyncPullWakeWorker:
        """An asyncio pull-wake worker; see :class:`AsyncPullWakeWorker`."""
        return AsyncPullWakeWorker(self, id, worker, wake_stream, from_offset, heartbeats)


class _WorkerBase:
    __slots__ = ("_args", "_subs")

    def __init__(
        self,
        subs: _Base,
        id: str,
        worker: str,
        wake_stream: str,
        from_offset: str | None,
        heartbeats: bool,
    ) -> None:
        self._subs = subs
        self._args = (id, worker, wake_stream, from_offset, heartbeats)

    def _start(self) -> _native.Queue:
        id, worker, wake_stream, from_offset, heartbeats = self._args
        return self._subs._native.jobs(
            id, worker, wake_stream, from_offset=from_offset, heartbeats=heartbeats
        )


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class JobQueue:
    """The jobs of a running :class:`PullWakeWorker` (blocking): iterate, answer each with
    ``ack()`` or ``fail()``, and :meth:`stop` (or leave the ``with`` block) to release what the
    worker holds."""

    __slots__ = ("_native", "offset")

    def __init__(self, native: _native.Queue) -> None:
        self._native = native
        self.offset: str | None = None
        """After :meth:`stop`: the wake-stream offset to resume from."""

    def next(self, timeout: float | None = None) -> Job | None:
        """The next job; ``None`` after ``timeout`` seconds or once the worker stopped."""
        raw: _native.Job | None = self._native.next(blocking=True, timeout=timeout)
        return None if raw is None else Job(raw)

    @property
    def stopped(self) -> bool:
        """Whether the worker has stopped."""
        return self._native.ended

    def stop(self) -> str | None:
        """Stops the worker (a held lease is released); returns the wake-stream offset to
        resume from (pass it as ``from_offset`` next time)."""
        off: str | None = self._native.stop(True)
        if off is not None:
            self.offset = off
        return self.offset

    def __iter__(self) -> Iterator[Job]:
        while True:
            job = self.next()
            if job is None:
                return
            yield job

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PullWakeWorker(_WorkerBase):
    """A pull-wake worker for blocking code: follows the wake stream from ``from_offset``
    (default: its tail; work pending from before is claimed at start), claims on every wake,
    reads each pending stream from its acked offset, hands the messages over, acks them, sends
    heartbeats while the handler runs, and finishes the wake. A handler error releases the wake
    without acking (it is woken again after a pause of at least 100 ms, longer while failures
    go on); a lost lease (FENCED) drops the wake without acking.

    Two forms: :meth:`run` with a handler callback, or :meth:`jobs` to iterate."""

    __slots__ = ()

    def jobs(self) -> JobQueue:
        """Starts the worker and returns its job queue (a context manager and an iterator)."""
        return JobQueue(self._start())

    def run(
        self,
        handler: Callable[[WorkItem], object],
        *,
        stop: threading.Event | None = None,
        poll: float = 0.1,
    ) -> str | None:
        """Runs ``handler`` on every item until ``stop`` is set (checked every ``poll``
        seconds) or Ctrl-C; a handler exception fails the item (the wake is released and
        woken again). Returns the wake-stream offset to resume from."""
        with self.jobs() as q:
            while not (stop is not None and stop.is_set()):
                job = q.next(timeout=poll)
                if job is None:
                    if q.stopped:
                        break
                    continue
                try:
                    handler(job.item)
                except Exception as e:
                    job.fail(_reason(e))
                else:
                    job.ack()
        return q.offset


class AsyncJobQueue:
    """The jobs of a running :class:`AsyncPullWakeWorker`: ``async for``, answer each job,
    and ``await stop()`` (or leave the ``async with`` block)."""

    __slots__ = ("_native", "offset")

    def __init__(self, native: _native.Queue) -> None:
        self._native = native
        self.offset: str | None = None

    async def next(self, timeout: float | None = None) -> Job | None:
        """The next job; ``None`` after ``timeout`` seconds or once the worker stopped."""
        raw: _native.Job | None = await self._native.next(blocking=False, timeout=timeout)
        return None if raw is None else Job(raw)

    @property
    def stopped(self) -> bool:
        return self._native.ended

    def request_stop(self) -> None:
        """Asks the worker to stop without waiting: an ack in flight lands, no new job comes,
        the wake is released, and a pending :meth:`next` returns None."""
        self._native.request_stop()

    async def stop(self) -> str | None:
        """See :meth:`JobQueue.stop`."""
        off: str | None = await self._native.stop(False)
        if off is not None:
            self.offset = off
        return self.offset

    async def __aiter__(self) -> AsyncIterator[Job]:
        while True:
            job = await self.next()
            if job is None:
                return
            yield job

    async def __aenter__(self) -> AsyncJobQueue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class AsyncPullWakeWorker(_WorkerBase):
    """The asyncio flavour of :class:`PullWakeWorker`."""

    __slots__ = ()

    def jobs(self) -> AsyncJobQueue:
        """Starts the worker and returns its job queue."""
        return AsyncJobQueue(self._start())

    async def run(
        self,
        handler: Callable[[WorkItem], Awaitable[object] | object],
        *,
        stop: asyncio.Event | None = None,
    ) -> str | None:
        """Runs ``handler`` (plain or ``async``) on every item until ``stop`` is set or the
        task is cancelled; a handler exception fails the item. Returns the wake-stream offset
        to resume from."""
        async with self.jobs() as q:
            # The stop is requested between items, never between a handler's return and its
            # answer: the item just handled gets its ack.
            busy = False
            watcher = None
            if stop is not None:
                ev = stop

                async def watch() -> None:
                    await ev.wait()
                    if not busy:
                        q.request_stop()

                watcher = asyncio.ensure_future(watch())
            try:
                async for job in q:
                    busy = True
                    try:
                        r = handler(job.item)
                        if inspect.isawaitable(r):
                            await r
                    except Exception as e:
                        job.fail(_reason(e))
                    else:
                        job.ack()
                    finally:
                        busy = False
                    if stop is not None and stop.is_set():
                        q.request_stop()
            finally:
                if watcher is not None:
                    watcher.cancel()
        return q.offset


def _signature(headers: Mapping[str, str] | Any) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is not None:
        v = getter("Webhook-Signature")
        if v is None:
            v = getter("webhook-signature")
        if v is not None:
            return str(v)
    items = getattr(headers, "items", None)
    if items is not None:
        for k, v in items():
            if str(k).lower() == "webhook-signature":
                return str(v)
    return None


def _body(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        raise TypeError("pass the raw request body as bytes, exactly as received")
    return bytes(body)


class _VerifierBase:
    __slots__ = ("_native",)

    def __init__(
        self,
        jwks_url: str,
        *,
        client: _native.Client | None = None,
        replay_window: float = 300.0,
    ) -> None:
        self._native = _native.Verifier(jwks_url, client=client, replay_window=replay_window)


class WebhookVerifier(_VerifierBase):
    """Verifies signed webhook deliveries (blocking), for any web framework.

    Pass the request headers (any mapping, case-insensitive lookup) and the raw body bytes;
    get a verified :class:`Wake`. The Ed25519 key is chosen by ``kid`` from the server's JWK
    Set (fetched once, cached, fetched again on an unknown ``kid`` at most every 10 s);
    deliveries outside the replay window (5 minutes by default) are refused. On
    :class:`InvalidSignatureError` answer 401; after processing answer 200 with
    :data:`WEBHOOK_DONE`, or 200 with ``{}`` and finish later with
    :meth:`Subscriptions.callback`.

    Args:
        jwks_url: The JWK Set URL (:attr:`Subscriptions.jwks_url`, or the subscription's
            ``signing.jwks_url``).
        client: HTTP settings for fetching the keys.
        replay_window: Seconds a delivery's timestamp may be away from now.
    """

    __slots__ = ()

    def verify(
        self,
        headers: Mapping[str, str] | Any,
        body: bytes | bytearray | memoryview,
        *,
        now: float | None = None,
    ) -> Wake:
        """Verifies a delivery (``now``: seconds since the epoch, for tests).

        Raises:
            InvalidSignatureError: ``check`` says which check failed.
        """
        raw = self._native.verify(_signature(headers), _body(body), blocking=True, now=now)
        return Wake(raw)


class AsyncWebhookVerifier(_VerifierBase):
    """The asyncio flavour of :class:`WebhookVerifier`."""

    __slots__ = ()

    async def verify(
        self,
        headers: Mapping[str, str] | Any,
        body: bytes | bytearray | memoryview,
        *,
        now: float | None = None,
    ) -> Wake:
        """See :meth:`WebhookVerifier.verify`."""
        raw = await self._native.verify(_signature(headers), _body(body), blocking=False, now=now)
        return Wake(raw)
