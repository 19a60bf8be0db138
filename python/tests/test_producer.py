"""The idempotent producer in both flavours: receipts, flush, close, detach, restart,
auto-claim, errors, on_error, BufferFull without blocking the loop, and fork()."""

from __future__ import annotations

import _thread
import asyncio
import json
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import inject, raw_json, raw_read

from durable_streams_client import (
    AlreadyClosedError,
    AsyncDurableStream,
    AsyncIdempotentProducer,
    AsyncReceipt,
    BufferFullError,
    Delivery,
    DurableStream,
    DurableStreamError,
    IdempotentProducer,
    InvalidArgumentError,
    ProducerMetrics,
    ProducerSessionConflictError,
    Receipt,
    StaleEpochError,
    StreamClosedError,
)


def make(url: str, ct: str = "application/json") -> DurableStream:
    s = DurableStream(url)
    s.create(content_type=ct)
    return s


def test_append_receipts_flush_close(url: str) -> None:
    s = make(url)
    p = IdempotentProducer(s, "writer-1", linger_ms=1)
    receipts = [p.append_json({"i": i}) for i in range(10)]
    assert all(isinstance(r, Receipt) for r in receipts)
    p.flush()
    assert p.pending_count == 0
    d = receipts[-1].result()
    assert isinstance(d, Delivery)
    assert d.epoch == 0
    assert not d.duplicate
    assert d.offset == p.last_offset
    assert receipts[0].done()
    assert receipts[3].message_number == 3
    assert repr(receipts[3]) == "Receipt(message_number=3, done=True)"
    assert type(receipts[3]) is Receipt  # the native class itself, no wrapper per append
    m = p.metrics()
    assert isinstance(m, ProducerMetrics)
    assert m.messages == 10
    assert m.appended_messages == 10
    final = p.close()
    assert final is not None
    assert p.close() == final  # idempotent
    assert raw_json(url) == [{"i": i} for i in range(10)]
    with pytest.raises(AlreadyClosedError):
        p.append("1")
    with pytest.raises(StreamClosedError):
        s.append("2")


def test_close_with_a_final_message(url: str) -> None:
    s = make(url, "text/plain")
    p = IdempotentProducer(s, "w")
    p.append("a")
    p.append(bytearray(b"b"))
    p.append(memoryview(b"c"))
    p.close("end")
    assert raw_read(url) == b"abcend"


def test_append_reads_str_and_bytes_in_place_and_copies_them(url: str) -> None:
    # str (ASCII, Latin-1, BMP, astral) and bytes are read where Python keeps them; each
    # message must arrive whole even after the caller's objects are gone.
    s = make(url, "text/plain")
    texts = ["ascii", "café", "\u2028—ü", "🙂 x", "", "b"]
    with IdempotentProducer(s, "w", linger_ms=1) as p:
        for t in texts:
            if t:
                p.append("".join([t]))  # a fresh object, dropped after the call
        p.append(bytes([0xC3, 0xA9]))
        with pytest.raises(UnicodeEncodeError):
            p.append("bad \ud800 surrogate")
        with pytest.raises(InvalidArgumentError, match="empty"):
            p.append("")
        assert p.append("end").message_number == 6
        # The batch form: str and bytes read in place, in order; a lone surrogate stops it
        # after the messages before it, and takes nothing after it from the iterator.
        rest = iter(["ü", b"+", b"-", "🙂", "bad \udc00", "never"])
        with pytest.raises(UnicodeEncodeError):
            p.append_many(rest)
        assert next(rest) == "never"
        p.append_many(["x" * 300, "ok"])
    assert raw_read(url).decode() == (
        "ascii" + "café" + "\u2028—ü" + "🙂 x" + "b" + "é" + "end" + "ü+-🙂" + "x" * 300 + "ok"
    )


def test_async_append_reads_str_in_place(url: str) -> None:
    async def main() -> None:
        a = AsyncDurableStream(url)
        await a.create(content_type="application/json")
        p = AsyncIdempotentProducer(a, "w", linger_ms=1)
        rs = [p.append(json.dumps({"t": t}, ensure_ascii=False)) for t in ["é", "🙂", "a"]]
        with pytest.raises(UnicodeEncodeError):
            p.append('"\udfff"')
        with pytest.raises(InvalidArgumentError):
            p.append("{no")
        rs.append(p.append(b'"bytes"'))
        await p.flush()
        assert [(await r).offset is not None for r in rs] == [True] * 4
        assert rs[-1].message_number == 3
        await p.close()

    asyncio.run(main())
    assert raw_json(url) == [{"t": "é"}, {"t": "🙂"}, {"t": "a"}, "bytes"]


def test_append_refuses_objects(url: str) -> None:
    p = IdempotentProducer(make(url), "w")
    with pytest.raises(TypeError, match=r"json\.dumps"):
        p.append({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        p.append("{not json")
    with pytest.raises(TypeError):
        IdempotentProducer(AsyncDurableStream(url), "w")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        IdempotentProducer(make(url), "w", max_in_flight=0)
    p.detach()


def test_options_unset_take_the_cores_defaults_and_the_core_validates(url: str) -> None:
    # Options left unset reach the core as unset (its defaults); a bad value gets the core's
    # error, which names the option.
    s = make(url)
    for bad, name in (
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_batch_bytes": 0}, "max_batch_bytes"),
        ({"max_buffered_bytes": 0}, "max_buffered_bytes"),
        ({"delivery_timeout": 0.0}, "delivery_timeout"),
        ({"linger_ms": -1.0}, "linger"),
        # Negative numbers and ones past 64 bits: the same error, not an OverflowError.
        ({"max_buffered_bytes": -1}, "max_buffered_bytes .* got -1"),
        ({"max_in_flight": 1 << 64}, "max_in_flight .* got 18446744073709551616"),
        ({"max_batch_messages": -(1 << 70)}, "max_batch_messages"),
        ({"max_batch_bytes": -5}, "max_batch_bytes"),
        ({"epoch": -1}, "epoch .* got -1"),
    ):
        with pytest.raises(InvalidArgumentError, match=name):
            IdempotentProducer(s, "w", **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="live"):
        s.stream(live="sometimes")  # type: ignore[arg-type]
    p = IdempotentProducer(s, "w")
    p.append_json({"n": 1})
    p.flush()
    assert raw_json(url) == [{"n": 1}]
    p.detach()


def test_context_manager_flushes_and_detaches(url: str) -> None:
    s = make(url)
    with IdempotentProducer(s, "w") as p:
        p.append_json(1)
        p.append_json(2)
    assert raw_json(url) == [1, 2]
    with pytest.raises(AlreadyClosedError):
        p.append_json(3)
    s.append_json(3)  # the stream stays open
    assert s.head().closed is False


def test_auto_claim_and_stale_epoch(url: str) -> None:
    s = make(url)
    old = IdempotentProducer(s, "w", epoch=5)
    old.append_json("old")
    old.flush()
    fenced = IdempotentProducer(s, "w", epoch=2)
    r = fenced.append_json("stale")
    with pytest.raises(StaleEpochError) as e:
        r.result()
    assert e.value.current_epoch == 5
    claimed = IdempotentProducer(s, "w", epoch=2, auto_claim=True)
    d = claimed.append_json("claimed").result()
    assert d.epoch == 6
    assert claimed.epoch == 6
    claimed.restart()
    assert claimed.epoch == 7
    assert claimed.next_seq == 0
    claimed.close()
    assert raw_json(url) == ["old", "claimed"]


def test_a_reused_producer_id_is_a_session_conflict_or_a_new_epoch(url: str) -> None:
    s = make(url)
    first = IdempotentProducer(s, "job")
    first.append_json("first")
    first.detach()
    # The same id and epoch again, as a restarted process would start it.
    again = IdempotentProducer(s, "job")
    r = again.append_json("lost?")
    with pytest.raises(ProducerSessionConflictError) as e:
        r.result()
    assert (e.value.producer_id, e.value.epoch, e.value.code) == (
        "job",
        0,
        "PRODUCER_SESSION_CONFLICT",
    )
    with pytest.raises(ProducerSessionConflictError):
        again.flush()
    claimed = IdempotentProducer(s, "job", auto_claim=True)
    d = claimed.append_json("second").result()
    assert (d.epoch, d.duplicate) == (1, False)
    claimed.detach()
    assert raw_json(url) == ["first", "second"]


def test_on_error_is_called_outside_the_producer_task(url: str) -> None:
    s = make(url)
    IdempotentProducer(s, "w", epoch=3).append_json(0).result()
    errors: list[DurableStreamError] = []
    called = threading.Event()

    def on_error(e: DurableStreamError) -> None:
        errors.append(e)
        called.set()

    p = IdempotentProducer(s, "w", epoch=1, on_error=on_error)
    p.append_json(1)
    with pytest.raises(StaleEpochError):
        p.flush()
    assert called.wait(5)
    assert isinstance(errors[0], StaleEpochError)


def test_computed_headers_reach_the_server(url: str) -> None:
    s = make(url)
    calls = 0

    def token() -> str:
        nonlocal calls
        calls += 1
        return "t"

    with IdempotentProducer(s, "w", headers={"X-Token": token}) as p:
        p.append_json(1)
    assert calls >= 1


def test_async_callables_need_the_producers_event_loop(url: str) -> None:
    """Where an async header callable cannot run, the producer says why: at construction for
    an ``async def``, else when the batch is sent."""
    make(url)

    async def token() -> str:
        return "t"

    with pytest.raises(TypeError, match="plain callables"):
        IdempotentProducer(DurableStream(url), "w", headers={"X-Token": token})
    with pytest.raises(TypeError, match="none is running"):
        AsyncIdempotentProducer(AsyncDurableStream(url), "w", params={"t": token})

    # A plain callable that returns a coroutine is only found out when a batch is sent.
    def sneaky() -> Any:
        return token()

    p = IdempotentProducer(DurableStream(url), "w", headers={"X-Token": sneaky})
    with pytest.raises(InvalidArgumentError, match="plain callables"):
        p.append_json(1).result(timeout=10)
    with pytest.raises(InvalidArgumentError):
        p.detach()  # flushing reports the failed batch

    # The loop the producer was created in no longer runs: the batch fails, it does not hang.
    loop = asyncio.new_event_loop()

    async def create() -> AsyncIdempotentProducer:
        return AsyncIdempotentProducer(
            AsyncDurableStream(url), "w2", linger_ms=0, headers={"X-Token": token}
        )

    p2 = loop.run_until_complete(create())
    r = p2.append_json(2)

    async def wait() -> Delivery:
        return await r.result(timeout=10)

    try:
        with pytest.raises(InvalidArgumentError, match="not running"):
            asyncio.run(wait())
    finally:
        loop.close()


def test_blocking_append_waits_for_room(url: str) -> None:
    """A full buffer makes append wait (GIL released: this thread's timer still runs)."""
    s = make(url, "text/plain")
    inject(url, delayMs=600, method="POST")
    p = IdempotentProducer(s, "w", max_buffered_bytes=10, linger_ms=0, max_in_flight=1)
    p.append("0123456789")
    with pytest.raises(BufferFullError) as e:
        p.try_append("x")
    assert e.value.limit == 10
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    timer = threading.Timer(0.1, tick)
    timer.start()
    started = time.monotonic()
    p.append("abc").result()
    timer.join()
    assert time.monotonic() - started > 0.3
    assert ticks == 1
    p.close()
    assert raw_read(url) == b"0123456789abc"


def test_append_many_waits_for_room_and_keeps_order(url: str) -> None:
    """The batch form: a generator of str and bytes through a 64-byte buffer, so it waits
    for room many times; every message lands once, in order."""
    s = make(url)
    p = IdempotentProducer(s, "w", max_buffered_bytes=64, linger_ms=0, max_in_flight=2)
    msgs = (f'{{"i":{i}}}' if i % 2 else f'{{"i":{i}}}'.encode() for i in range(200))
    last = p.append_many(msgs)
    assert isinstance(last, Receipt)
    assert last.message_number == 199
    d = last.result()
    assert d.offset is not None
    assert p.append_many([]) is None
    p.flush()
    assert p.metrics().appended_messages == 200
    p.close()
    assert raw_json(url) == [{"i": i} for i in range(200)]


def test_append_many_validates_each_message(url: str) -> None:
    s = make(url)
    p = IdempotentProducer(s, "w", linger_ms=0)
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        p.append_many(['{"i":0}', '{"i":1}', "{nope", '{"i":3}'])
    with pytest.raises(TypeError):
        p.append_many(['{"i":2}', 5])  # type: ignore[list-item]
    p.flush()
    p.close()
    # The messages before a failing one stay appended.
    assert raw_json(url) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_append_many_raises_an_iterator_or_item_failure_after_the_messages_before_it(
    url: str,
) -> None:
    """Messages go to the core in runs: an item that is not a message, or an exception of
    the iterator, in the middle of a run and after a full buffer, still raises only once
    every message before it is appended; nothing after it is."""
    s = make(url)
    p = IdempotentProducer(s, "w", max_buffered_bytes=256, linger_ms=0)

    def broken(n: int, fail_at: int) -> Iterator[str]:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"generator failed at {i}")
            yield f'{{"i":{i}}}'

    with pytest.raises(ValueError, match="failed at 700"):
        p.append_many(broken(1000, 700))
    items: list[object] = [f'{{"i":{700 + i}}}' for i in range(500)]
    items[450] = 5
    with pytest.raises(TypeError):
        p.append_many(items)  # type: ignore[arg-type]
    p.flush()

    async def main() -> None:
        a = AsyncDurableStream(url)
        async with AsyncIdempotentProducer(a, "a", max_buffered_bytes=256, linger_ms=0) as q:
            with pytest.raises(ValueError, match="failed at 1500"):
                await q.append_many(x for x in broken(2000, 1500) if int(x[5:-1]) >= 1150)
            more: list[object] = [f'{{"i":{1500 + i}}}' for i in range(400)]
            more[333] = None
            with pytest.raises(TypeError):
                await q.append_many(more)  # type: ignore[arg-type]

    asyncio.run(main())
    p.close()
    got = [m["i"] for m in raw_json(url)]
    assert got == list(range(700)) + list(range(700, 1150)) + list(range(1150, 1500)) + list(
        range(1500, 1833)
    )


def test_async_append_many_waits_without_blocking_the_loop(url: str) -> None:
    make(url, "text/plain")
    inject(url, delayMs=300, method="POST")

    async def main() -> int:
        a = AsyncDurableStream(url)
        async with AsyncIdempotentProducer(
            a, "w", max_buffered_bytes=10, linger_ms=0, max_in_flight=1
        ) as p:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            t = asyncio.create_task(ticker())
            last = await p.append_many(["0123456789", b"abc", "de"])
            assert isinstance(last, AsyncReceipt)
            d = await last
            t.cancel()
            assert d.offset is not None
            assert await p.append_many(iter(())) is None
            return ticks

    ticks = asyncio.run(main())
    assert ticks >= 10
    assert raw_read(url) == b"0123456789abcde"


def test_receipt_result_timeout(url: str) -> None:
    """result(timeout=) raises the built-in TimeoutError while the batch is in flight (GIL
    released meanwhile), and the message is still delivered afterwards."""
    s = make(url, "text/plain")
    inject(url, delayMs=1000, method="POST")
    p = IdempotentProducer(s, "w", linger_ms=0)
    r = p.append("a")
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    timer = threading.Timer(0.05, tick)
    timer.start()
    started = time.monotonic()
    with pytest.raises(TimeoutError) as e:
        r.result(timeout=0.3)
    waited = time.monotonic() - started
    timer.join()
    assert type(e.value) is TimeoutError  # not a DurableStreamError: the batch did not fail
    assert "still pending" in str(e.value)
    assert 0.25 < waited < 0.9
    assert ticks == 1
    assert not r.done()
    d = r.result(timeout=5)  # the same receipt, waited on again
    assert d.offset is not None
    assert r.result(timeout=0) == d  # settled: no wait at all
    p.close()
    assert raw_read(url) == b"a"


def test_receipt_result_timeout_refuses_bad_values(url: str) -> None:
    p = IdempotentProducer(make(url), "w")
    r = p.append_json(1)
    for bad in (-1.0, float("nan")):
        with pytest.raises(InvalidArgumentError, match="timeout"):
            r.result(timeout=bad)
    assert r.result(timeout=None).offset is not None
    p.detach()


def test_receipt_result_timeout_and_ctrl_c(url: str) -> None:
    s = make(url, "text/plain")
    inject(url, delayMs=3000, method="POST")
    p = IdempotentProducer(s, "w", linger_ms=0)
    r = p.append("a")
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            r.result(timeout=10)
    finally:
        timer.join()
    assert time.monotonic() - started < 1.5
    p.detach()


def test_async_receipt_result_timeout(url: str) -> None:
    make(url, "text/plain")
    inject(url, delayMs=1000, method="POST")

    async def main() -> tuple[float, int]:
        p = AsyncIdempotentProducer(AsyncDurableStream(url), "w", linger_ms=0)
        r = p.append("a")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            await r.result(timeout=0.3)
        waited = time.monotonic() - started
        assert type(e.value) is TimeoutError
        d = await r.result(timeout=5)
        assert d.offset is not None
        assert await r == d
        t.cancel()
        await p.detach()
        return waited, ticks

    waited, ticks = asyncio.run(main())
    assert 0.25 < waited < 0.9
    assert ticks >= 10  # the loop ran while the receipt was awaited


def test_async_buffer_full_never_blocks_the_loop(url: str) -> None:
    s = make(url, "text/plain")
    inject(url, delayMs=800, method="POST")

    async def main() -> tuple[float, int]:
        a = AsyncDurableStream(url)
        async with AsyncIdempotentProducer(
            a, "w", max_buffered_bytes=10, linger_ms=0, max_in_flight=1
        ) as p:
            first = p.append("0123456789")
            assert isinstance(first, AsyncReceipt)
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            t = asyncio.create_task(ticker())
            started = time.monotonic()
            with pytest.raises(BufferFullError):
                p.append("x")
            fast = time.monotonic() - started
            r = await p.append_wait("y")  # waits for room without blocking the loop
            d = await r
            await first
            assert type(first) is AsyncReceipt  # the native class itself, no wrapper per append
            assert repr(first) == "AsyncReceipt(message_number=0, done=True)"
            assert (await first.result(timeout=5)).offset is not None
            assert p.append(bytearray(b"z")).message_number == 2  # "x" was refused
            t.cancel()
            assert d.offset is not None
            return fast, ticks

    fast, ticks = asyncio.run(main())
    assert fast < 0.05
    assert ticks >= 20
    assert raw_read(url) == b"0123456789yz"
    s.append("z")


def test_cancelling_append_wait_neither_loses_nor_doubles_a_message(url: str) -> None:
    """A cancelled append_wait has not appended its message; one that appended returns its
    receipt: a caller that retries after CancelledError stores the message once."""
    make(url, "text/plain")
    inject(url, delayMs=300, method="POST")

    async def main() -> None:
        a = AsyncDurableStream(url)
        async with AsyncIdempotentProducer(
            a, "w", max_buffered_bytes=10, linger_ms=0, max_in_flight=1
        ) as p:
            # Room now: the message goes in before the call ever waits, so a cancellation
            # that comes later does not hide it.
            task = asyncio.ensure_future(p.append_wait("0123456789"))
            await asyncio.sleep(0)
            time.sleep(0.3)  # noqa: ASYNC251 (the loop must be busy meanwhile)
            task.cancel()
            first = await task
            assert isinstance(first, AsyncReceipt)
            # The buffer is full until the delayed POST is answered: this call waits for
            # room. The room comes while the loop is busy, and the task is cancelled before
            # it runs again: the message was not appended, so the retry is its only copy.
            task = asyncio.ensure_future(p.append_wait("abc"))
            await asyncio.sleep(0)
            time.sleep(1.0)  # noqa: ASYNC251 (the room comes while the loop is busy)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert p.metrics().appended_messages == 1
            retried = await p.append_wait("abc")
            await first
            await retried

    asyncio.run(main())
    assert raw_read(url) == b"0123456789abc"


def test_async_equals_blocking(server: str, url: str) -> None:
    blocking_url = url + "-b"
    s = make(blocking_url)
    with IdempotentProducer(s, "w") as p:
        deliveries = [p.append_json({"i": i}) for i in range(5)]
        p.flush()
        b = [(d.result().epoch, d.result().duplicate) for d in deliveries]

    async def main() -> list[tuple[int, bool]]:
        a = AsyncDurableStream(url)
        await a.create(content_type="application/json")
        errors: list[Any] = []
        p = AsyncIdempotentProducer(a, "w", on_error=errors.append)
        rs = [p.append_json({"i": i}) for i in range(5)]
        await p.flush()
        out = [((await r).epoch, (await r).duplicate) for r in rs]
        assert await p.close() is not None
        assert errors == []
        return out

    assert asyncio.run(main()) == b
    assert raw_json(url) == raw_json(blocking_url)


def test_async_on_error_runs_on_the_loop(url: str) -> None:
    make(url)
    IdempotentProducer(DurableStream(url), "w", epoch=3).append_json(0).result()

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        on_loop: list[bool] = []

        def on_error(e: DurableStreamError) -> None:
            on_loop.append(asyncio.get_running_loop() is loop)
            done.set()

        p = AsyncIdempotentProducer(AsyncDurableStream(url), "w", epoch=1, on_error=on_error)
        r = p.append_json(1)
        with pytest.raises(StaleEpochError):
            await r
        await asyncio.wait_for(done.wait(), 5)
        with pytest.raises(StaleEpochError):  # a fenced producer stays fenced
            await p.detach()
        return on_loop == [True]

    assert asyncio.run(main())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_producer_used_after_fork(url: str) -> None:
    s = make(url)
    p = IdempotentProducer(s, "w")
    p.append_json("parent").result()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = b"no error"
        try:
            p.append_json("child")
        except AlreadyClosedError as e:
            status = b"ok" if "fork()" in str(e) else str(e).encode()
        except BaseException as e:
            status = repr(e).encode()
        try:
            with IdempotentProducer(DurableStream(url), "child", epoch=0) as c:
                c.append_json("fresh child")
        except BaseException as e:
            status = repr(e).encode()
        os.write(write_fd, status)
        os._exit(0)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 20)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        report = os.read(read_fd, 4096) if ready else b"child timed out"
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    assert report == b"ok"
    p.append_json("parent again")
    p.close()
    assert raw_json(url) == ["parent", "fresh child", "parent again"]
