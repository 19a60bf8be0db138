"""DurableStream and AsyncDurableStream against the real server. Most tests run once per
flavour through `Handle`, which gives both flavours one calling convention, so each test also
checks that they behave the same."""

from __future__ import annotations

import _thread
import asyncio
import inspect
import pickle
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import inject, new_url, raw_json, raw_read

import durable_streams_client as ds
from durable_streams_client import (
    AsyncDurableStream,
    Client,
    DurableStream,
    RetryPolicy,
)

NO_RETRY = RetryPolicy.none()


class Handle:
    """A DurableStream or AsyncDurableStream whose methods are all called synchronously (the
    async ones through asyncio.run, a new event loop each time)."""

    def __init__(self, flavour: str, url: str, **kw: Any) -> None:
        self.flavour = flavour
        cls = DurableStream if flavour == "blocking" else AsyncDurableStream
        self.inner: Any = cls(url, **kw)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if self.flavour == "blocking" or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            async def main() -> Any:
                return await attr(*args, **kwargs)

            return asyncio.run(main())

        return call


@pytest.fixture(params=["blocking", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_json_stream_round_trip(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    created = s.create(content_type="application/json")
    assert created.created is True
    assert created.content_type == "application/json"
    assert created.closed is False
    assert s.content_type == "application/json"

    r1 = s.append('{"n": 1}')
    r2 = s.append_json({"n": 2, "text": "é"})
    r3 = s.append_batch(['{"n": 3}', b'{"n": 4}'])
    r4 = s.append_json([5, 6])  # an array stays one message
    offsets = [r.next_offset for r in (r1, r2, r3, r4)]
    assert all(offsets)
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 4
    assert raw_json(url) == [{"n": 1}, {"n": 2, "text": "é"}, {"n": 3}, {"n": 4}, [5, 6]]

    head = s.head()
    assert isinstance(head, ds.HeadResult)
    assert head.next_offset == r4.next_offset
    assert head.content_type == "application/json"
    assert head.closed is False
    assert head.etag
    assert s.exists() is True


def test_create_again_and_conflicting_config(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    assert s.create(content_type="text/plain").created is True
    again = s.create(content_type="text/plain")
    assert again.created is False
    with pytest.raises(ds.StreamExistsError) as info:
        s.create(content_type="application/json")
    e = info.value
    assert isinstance(e, ds.ConflictError)
    assert (e.status, e.code, e.retryable) == (409, "CONFLICT_EXISTS", False)
    assert "already exists" in str(e)


def test_bytes_like_appends(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    s.create(content_type="application/octet-stream")
    s.append(b"ab")
    s.append(bytearray(b"cd"))
    s.append(memoryview(b"xefx")[1:3])
    s.append("gé")
    s.append_batch([b"1", bytearray(b"2"), "3"])
    assert raw_read(url) == b"abcdefg\xc3\xa9123"


@pytest.mark.parametrize("bad", [{"a": 1}, 42, None, ["x"], 1.5])
def test_append_refuses_other_types(flavour: str, url: str, bad: object) -> None:
    s = Handle(flavour, url, content_type="application/json")
    with pytest.raises(TypeError, match=r"json\.dumps"):
        s.append(bad)
    with pytest.raises(TypeError, match=r"json\.dumps"):
        s.append_batch(['{"ok": 1}', bad])


def test_empty_and_invalid_messages(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    s.create(content_type="application/json")
    with pytest.raises(ds.InvalidArgumentError) as info:
        s.append("")
    assert isinstance(info.value, ValueError)
    assert info.value.status is None
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ds.InvalidArgumentError):
        s.append_batch([])
    with pytest.raises(ValueError, match="Out of range float"):
        s.append_json(float("nan"))
    with pytest.raises(ds.BadRequestError) as bad:
        s.append("{not json")
    assert bad.value.status == 400
    assert bad.value.code == "BAD_REQUEST"
    assert bad.value.server_message == "Invalid JSON"


def test_close_and_closed_errors(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    s.create(content_type="text/plain")
    s.append("a")
    closed = s.close("last")
    assert closed.final_offset
    assert raw_read(url) == b"alast"
    assert s.close().final_offset == closed.final_offset  # closing twice succeeds
    assert s.head().closed is True
    with pytest.raises(ds.StreamClosedError) as info:
        s.append("more")
    e = info.value
    assert (e.status, e.code) == (409, "STREAM_CLOSED")
    assert e.final_offset == closed.final_offset
    with pytest.raises(ds.StreamClosedError):
        s.close("another final message")


def test_created_closed_with_body(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    r = s.create(content_type="text/plain", body=bytearray(b"all of it"), closed=True)
    assert r.closed is True
    assert raw_read(url) == b"all of it"


def test_delete_and_not_found(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    assert s.exists() is False
    with pytest.raises(ds.StreamNotFoundError) as info:
        s.head()
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")
    s.create()
    assert s.exists() is True
    assert s.delete() is None
    assert s.exists() is False
    with pytest.raises(ds.StreamNotFoundError):
        s.delete()


def test_seq_and_content_type_conflicts(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    s.create(content_type="text/plain")
    s.append("a", seq="002")
    with pytest.raises(ds.SeqConflictError) as seq:
        s.append("b", seq="001")
    assert (seq.value.status, seq.value.code) == (409, "CONFLICT_SEQ")
    with pytest.raises(ds.ConflictError) as ct:
        s.append("c", content_type="application/json")
    assert type(ct.value) is ds.ConflictError
    assert ct.value.code == "CONFLICT"


def test_ttl_and_expiry(flavour: str, server: str) -> None:
    s = Handle(flavour, new_url(server, "ttl"))
    s.create(ttl_seconds=60)
    assert s.head().ttl_seconds == 60
    s = Handle(flavour, new_url(server, "expires"))
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    s.create(expires_at=when)
    head = s.head()
    assert head.expires_at is not None
    assert head.ttl_seconds is None
    with pytest.raises(ds.InvalidArgumentError, match="mutually exclusive"):
        s.create(ttl_seconds=1, expires_at="2030-01-01T00:00:00Z")
    with pytest.raises(ds.InvalidArgumentError, match="timezone-aware"):
        s.create(expires_at=datetime(2030, 1, 1))


def test_fork(flavour: str, server: str) -> None:
    src_url = new_url(server, "fork-src")
    src = Handle(flavour, src_url)
    src.create(content_type="application/json")
    first = src.append_json({"n": 1})
    src.append_json({"n": 2})
    fork_url = new_url(server, "fork")
    fork = Handle(flavour, fork_url)
    r = fork.create(fork_from=urlsplit(src_url).path, fork_offset=first.next_offset)
    assert r.created is True
    assert fork.head().content_type == "application/json"
    fork.append_json({"n": "fork"})
    assert raw_json(fork_url) == [{"n": 1}, {"n": "fork"}]
    with pytest.raises(ds.InvalidArgumentError, match="fork_from"):
        fork.create(fork_offset="-1")


def test_connect(flavour: str, url: str) -> None:
    if flavour == "blocking":
        with pytest.raises(ds.StreamNotFoundError):
            DurableStream.connect(url)
        DurableStream(url).create(content_type="application/json")
        s: Any = DurableStream.connect(url)
    else:

        async def main() -> Any:
            with pytest.raises(ds.StreamNotFoundError):
                await AsyncDurableStream.connect(url)
            await AsyncDurableStream(url).create(content_type="application/json")
            return await AsyncDurableStream.connect(url)

        s = asyncio.run(main())
    assert s.content_type == "application/json"
    assert s.url == url
    assert repr(s).endswith(f"({url!r}, content_type='application/json')")


def test_headers_and_params(flavour: str, url: str) -> None:
    calls: list[str] = []

    def token() -> str:
        calls.append("token")
        return f"Bearer {len(calls)}"

    s = Handle(flavour, url, headers={"Authorization": token, "X-Fixed": "1"}, params={"a": "b"})
    s.create(content_type="text/plain")
    s.append("x", headers={"X-Call": lambda: "computed"}, params={"p": "q"})
    s.head()
    assert calls == ["token"] * 3  # once per request
    with pytest.raises(TypeError, match="must be a str or a callable"):
        Handle(flavour, url, headers={"X-Bad": 3})
    with pytest.raises(TypeError, match="mapping"):
        Handle(flavour, url, headers=[("a", "b")])


def test_failing_header_callable(flavour: str, url: str) -> None:
    def broken() -> str:
        raise RuntimeError("token service down")

    s = Handle(flavour, url, headers={"Authorization": broken}, retry=NO_RETRY)
    with pytest.raises(ds.InvalidArgumentError, match="token service down"):
        s.head()
    s = Handle(flavour, url, headers={"Authorization": lambda: 42}, retry=NO_RETRY)
    with pytest.raises(ds.InvalidArgumentError, match="not a str"):
        s.head()


def test_async_header_callables(url: str) -> None:
    async def token() -> str:
        await asyncio.sleep(0)
        return "Bearer async"

    async def main() -> None:
        s = AsyncDurableStream(url, headers={"Authorization": token})
        await s.create()
        assert await s.exists()

    asyncio.run(main())
    # The blocking flavour has no event loop to run a coroutine on.
    blocking = DurableStream(url, headers={"Authorization": token}, retry=NO_RETRY)
    with pytest.raises(ds.InvalidArgumentError, match="AsyncDurableStream"):
        blocking.head()


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (401, ds.UnauthorizedError, "UNAUTHORIZED"),
        (403, ds.ForbiddenError, "FORBIDDEN"),
        (410, ds.GoneError, "GONE"),
        (413, ds.PayloadTooLargeError, "PAYLOAD_TOO_LARGE"),
        (500, ds.ServerError, "SERVER_ERROR"),
        (418, ds.DurableStreamError, "UNEXPECTED_STATUS"),
    ],
)
def test_status_errors(flavour: str, url: str, status: int, cls: type, code: str) -> None:
    s = Handle(flavour, url, retry=NO_RETRY)
    inject(url, status=status, method="POST")
    with pytest.raises(cls) as info:
        s.append(b"x", content_type="text/plain")
    e = info.value
    assert (e.status, e.code) == (status, code)
    assert e.server_message == "Injected error for testing"
    assert e.retryable is (status >= 500)


def test_rate_limited_and_retry_after(flavour: str, url: str) -> None:
    s = Handle(flavour, url, retry=NO_RETRY)
    inject(url, status=429, retryAfter=7, method="HEAD")
    with pytest.raises(ds.RateLimitedError) as info:
        s.head()
    assert (info.value.status, info.value.retry_after, info.value.retryable) == (429, 7.0, True)
    inject(url, status=503, retryAfter=2, method="HEAD")
    with pytest.raises(ds.ServerError) as server:
        s.head()
    assert (server.value.status, server.value.retry_after) == (503, 2.0)


def test_retries_idempotent_operations(flavour: str, url: str) -> None:
    fast = RetryPolicy(initial_delay=0.01, max_delay=0.05, multiplier=2, max_retries=3)
    s = Handle(flavour, url, retry=fast)
    s.create()
    inject(url, status=503, count=2, method="HEAD")
    assert s.head().closed is False
    # Plain appends are not retried unless opted in.
    inject(url, status=503, count=1, method="POST")
    with pytest.raises(ds.ServerError):
        s.append(b"x")
    s = Handle(flavour, url, retry=fast, append_retry=fast)
    inject(url, status=503, count=1, method="POST")
    assert s.append(b"y").next_offset
    assert raw_read(url) == b"y"


def test_network_errors(flavour: str, url: str) -> None:
    s = Handle(flavour, "http://127.0.0.1:9/v1/stream/nothing-listens", retry=NO_RETRY)
    with pytest.raises(ds.NetworkError) as info:
        s.head()
    assert isinstance(info.value, ConnectionError)
    assert (info.value.code, info.value.status, info.value.retryable) == (
        "NETWORK_ERROR",
        None,
        True,
    )
    s = Handle(flavour, url, retry=NO_RETRY)
    inject(url, dropConnection=True, method="HEAD")
    with pytest.raises(ds.NetworkError):
        s.head()


def test_timeout(flavour: str, url: str) -> None:
    s = Handle(flavour, url, client=Client(request_timeout=0.3), retry=NO_RETRY)
    inject(url, delayMs=2000, method="HEAD")
    with pytest.raises(ds.StreamTimeoutError) as info:
        s.head()
    assert isinstance(info.value, TimeoutError)
    assert info.value.code == "TIMEOUT"
    # The transport's timeout is the cause (a plain TimeoutError, not a DurableStreamError).
    assert type(info.value.__cause__) is TimeoutError


def test_released_handle(flavour: str, url: str) -> None:
    if flavour == "blocking":
        with DurableStream(url) as s:
            s.create()
        with pytest.raises(ds.AlreadyClosedError):
            s.head()
    else:

        async def main() -> None:
            async with AsyncDurableStream(url) as s:
                await s.create()
            with pytest.raises(ds.AlreadyClosedError):
                await s.head()

        asyncio.run(main())
    assert DurableStream(url).exists()  # the stream itself is untouched


def test_invalid_construction() -> None:
    with pytest.raises(ds.InvalidArgumentError, match="invalid stream URL"):
        DurableStream("not a url")
    with pytest.raises(ds.InvalidArgumentError, match="http or https"):
        AsyncDurableStream("ftp://host/x")
    with pytest.raises(ds.InvalidArgumentError, match="multiplier"):
        DurableStream("http://h/x", retry=RetryPolicy(multiplier=0.5))
    with pytest.raises(ds.InvalidArgumentError, match="max_retries"):
        DurableStream("http://h/x", append_retry=RetryPolicy(max_retries=-1))
    with pytest.raises(ds.InvalidArgumentError, match="request_timeout"):
        Client(request_timeout=-1)
    with pytest.raises(ds.InvalidArgumentError, match="greater than zero"):
        Client(request_timeout=0)
    c = Client(request_timeout=5, long_poll_timeout=40)
    assert (c.request_timeout, c.long_poll_timeout) == (5.0, 40.0)
    assert repr(c) == "Client(request_timeout=5.0, long_poll_timeout=40.0)"


def test_exceptions_pickle_and_hierarchy() -> None:
    e = ds.StreamClosedError(
        "stream is closed", final_offset="0_5", code="STREAM_CLOSED", status=409
    )
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is ds.StreamClosedError
    assert (back.final_offset, back.status, back.code, str(back)) == (
        "0_5",
        409,
        "STREAM_CLOSED",
        "stream is closed",
    )
    n = pickle.loads(pickle.dumps(ds.NetworkError("down", code="NETWORK_ERROR")))
    assert isinstance(n, ConnectionError)
    assert n.code == "NETWORK_ERROR"
    for name in ds._errors.__all__:
        assert issubclass(getattr(ds, name), ds.DurableStreamError)
    assert issubclass(ds.StreamTimeoutError, TimeoutError)
    assert issubclass(ds.InvalidArgumentError, ValueError)
    gap = ds.SequenceGapError("gap", expected_seq=3, received_seq=5)
    stale = ds.StaleEpochError("stale", epoch=1, current_epoch=2)
    assert (gap.expected_seq, gap.received_seq, stale.current_epoch) == (3, 5, 2)


def test_flavours_give_equal_results(server: str) -> None:
    def scenario(flavour: str) -> list[Any]:
        s = Handle(flavour, new_url(server, "parity"))
        out: list[Any] = [
            s.create(content_type="application/json", body=b'[{"a": 0}]'),
            s.append('{"a": 1}'),
            s.append_json({"a": 2}),
            s.append_batch(['{"a": 3}', '{"a": 4}']),
            s.close(b'{"a": 5}'),
        ]
        head = s.head()
        out.append((head.content_type, head.next_offset, head.closed, head.ttl_seconds))
        out.append(s.exists())
        for op in (lambda: s.append("1"), lambda: s.create(content_type="text/plain")):
            try:
                op()
            except ds.DurableStreamError as e:
                out.append((type(e), e.code, e.status, getattr(e, "final_offset", None)))
        s.delete()
        out.append(s.exists())
        return out

    assert scenario("blocking") == scenario("async")


def test_retry_policy_defaults_come_from_the_core() -> None:
    # The dataclass reads the core's defaults at import (no copy in Python): the reads' policy,
    # 0.1 s to 60 s, multiplier 1.3, no limit on retries.
    p = ds.RetryPolicy()
    assert (p.initial_delay, p.max_delay, p.multiplier, p.max_retries) == (0.1, 60.0, 1.3, None)
    assert ds.RetryPolicy.none().max_retries == 0


def test_append_stream_sends_one_message_from_chunks(flavour: str, url: str) -> None:
    s = Handle(flavour, url)
    s.create(content_type="application/octet-stream")
    s.append(b"before|")
    chunks = [b"ab", "", bytearray(b"cd"), memoryview(b"ef"), "gé"]
    r = s.append_stream(iter(chunks))
    assert r.next_offset
    assert raw_read(url) == b"before|abcdefg\xc3\xa9"

    # JSON: the whole body is one array of messages (or one value).
    j = Handle(flavour, url + "-json")
    j.create(content_type="application/json")
    j.append_stream(['[{"a":', "1},", '{"b":', "[2]}]"])
    j.append_stream(['{"c"', ":3}"])
    assert raw_json(j.url) == [{"a": 1}, {"b": [2]}, {"c": 3}]


def test_append_stream_raises_the_sources_exception_and_stores_nothing(
    flavour: str, url: str
) -> None:
    s = Handle(flavour, url)
    s.create(content_type="text/plain")
    closed: list[bool] = []

    def failing() -> Any:
        try:
            yield "kept? "
            yield "no"
            raise LookupError("the source broke")
        finally:
            closed.append(True)

    with pytest.raises(LookupError, match="the source broke"):
        s.append_stream(failing())
    # A bad chunk: the same, as a TypeError naming it.
    with pytest.raises(TypeError, match="each chunk"):
        s.append_stream(["ok", 42])
    assert raw_read(url) == b""
    assert closed == [True]
    # Not an iterable of chunks.
    with pytest.raises(TypeError, match="use append"):
        s.append_stream("text")
    with pytest.raises(TypeError, match="iterable"):
        s.append_stream(42)

    # An error answer: the server's error, the source closed although not read to its end.
    def endless() -> Any:
        while True:
            yield "x"

    source = endless()
    missing = Handle(flavour, url + "-missing")
    with pytest.raises(ds.StreamNotFoundError):
        missing.append_stream(source)
    assert inspect.getgeneratorstate(source) == inspect.GEN_CLOSED


def test_async_append_stream_takes_an_async_generator(url: str) -> None:
    async def main() -> list[bytes]:
        async with AsyncDurableStream(url) as s:
            await s.create(content_type="text/plain")

            async def chunks() -> Any:
                for i in range(50):
                    await asyncio.sleep(0)
                    yield f"{i},"

            await s.append_stream(chunks())

            async def broken() -> Any:
                yield "partial"
                raise RuntimeError("async source failed")

            with pytest.raises(RuntimeError, match="async source failed"):
                await s.append_stream(broken())
            with pytest.raises(TypeError, match="AsyncDurableStream"):
                DurableStream(url).append_stream(chunks())
            return [raw_read(url)]

    (body,) = asyncio.run(main())
    assert body == "".join(f"{i}," for i in range(50)).encode()


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_an_async_append_stream_stopped_while_its_source_waits_raises_the_cancellation(
    url: str, how: str
) -> None:
    """A timeout or a task's cancellation that comes while the source is waiting for its next
    chunk (inside a pull, which runs as a task of its own) comes out as TimeoutError or
    CancelledError: the pull is cancelled and awaited, then the source closed."""

    async def main() -> None:
        s = AsyncDurableStream(url)
        await s.create(content_type="application/octet-stream")
        waiting = asyncio.Event()
        closed = asyncio.Event()

        async def source() -> Any:
            try:
                yield b"first chunk"
                waiting.set()
                yield await asyncio.get_running_loop().create_future()  # never comes
            finally:
                closed.set()

        if how == "timeout":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.append_stream(source()), 1.0)
        else:
            task = asyncio.ensure_future(s.append_stream(source()))
            await waiting.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert waiting.is_set()  # the source was waiting inside a pull when it stopped
        assert closed.is_set()
        # The handle still works; the unfinished message was not stored.
        await s.append_stream([b"next"])

    asyncio.run(main())
    assert raw_read(url) == b"next"


def test_on_failed_attempt_sees_every_failed_attempt(flavour: str, url: str) -> None:
    seen: list[ds.FailedAttempt] = []
    fast = RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retries=5)
    s = Handle(flavour, url, on_failed_attempt=seen.append, retry=fast, append_retry=fast)
    s.create(content_type="text/plain")
    assert seen == []
    # Two 503s, then the append goes through: two attempts reported, both retried.
    inject(url, status=503, count=2, method="POST")
    s.append("after two failures")
    assert [(f.operation, f.attempt, f.will_retry) for f in seen] == [
        ("append", 1, True),
        ("append", 2, True),
    ]
    assert all(isinstance(f.error, ds.ServerError) and f.error.status == 503 for f in seen)
    assert raw_read(url) == b"after two failures"
    # A failure that is not retried: reported once, then raised.
    seen.clear()
    missing = Handle(flavour, url + "-missing", on_failed_attempt=seen.append, retry=fast)
    with pytest.raises(ds.StreamNotFoundError):
        missing.delete()
    assert [(f.operation, f.attempt, f.will_retry) for f in seen] == [("delete", 1, False)]
    assert isinstance(seen[0].error, ds.StreamNotFoundError)

    # A callback that raises changes nothing (it is logged).
    def broken(_: ds.FailedAttempt) -> None:
        raise RuntimeError("observer broke")

    b = Handle(flavour, url, on_failed_attempt=broken, retry=fast, append_retry=fast)
    inject(url, status=503, count=1, method="POST")
    b.append("!")
    assert raw_read(url) == b"after two failures!"
    with pytest.raises(TypeError, match="callable"):
        Handle(flavour, url, on_failed_attempt=42)


def test_ctrl_c_interrupts_a_blocking_append_stream_in_the_middle_of_a_pull(url: str) -> None:
    s = DurableStream(url)
    s.create(content_type="text/plain")
    pulling = threading.Event()

    def slow() -> Any:
        yield "never "
        pulling.set()
        time.sleep(1.0)  # the pull under way when Ctrl-C comes
        yield "stored"

    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.append_stream(slow())
    finally:
        timer.join()
    assert pulling.is_set()
    time.sleep(1.2)  # the pull ends; the request was dropped before its end
    assert raw_read(url) == b""
