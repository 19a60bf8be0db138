"""The bridge between Python and the Rust runtime: cancellation, Ctrl-C, the GIL, fork(),
concurrency and logging."""

from __future__ import annotations

import _thread
import asyncio
import gc
import logging
import os
import select
import signal
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from conftest import inject, new_url, raw_read

import durable_streams_client as ds
from durable_streams_client import AsyncDurableStream, DurableStream, RetryPolicy


def in_threads(work: Callable[[int], object], n: int) -> list[BaseException]:
    """Runs ``work(0)`` .. ``work(n - 1)`` on ``n`` threads at once; returns what they raised."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as e:  # returned to the test, which asserts there were none
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_cancelling_a_task_cancels_the_request(url: str) -> None:
    DurableStream(url).create(content_type="text/plain")
    inject(url, delayMs=3000, method="HEAD")

    async def main() -> float:
        s = AsyncDurableStream(url)
        task = asyncio.create_task(s.head())
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.0
    assert DurableStream(url).exists()  # the client still works


def test_cancelling_a_task_drops_the_rust_future(url: str) -> None:
    """A per-call header callable lives exactly as long as the Rust future that carries it."""
    DurableStream(url).create(content_type="text/plain")
    inject(url, delayMs=3000, method="POST")

    class Token:
        def __call__(self) -> str:
            return "t"

    async def main() -> weakref.ref[Token]:
        s = AsyncDurableStream(url)
        token = Token()
        ref = weakref.ref(token)
        task = asyncio.create_task(s.append("x", headers={"X-Token": token}))
        del token
        await asyncio.sleep(0.3)
        assert ref() is not None  # the request is in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 2.0
        while ref() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            s.content_type  # noqa: B018 (any call into the module releases deferred references)
            gc.collect()
        return ref

    assert asyncio.run(main())() is None


@pytest.mark.parametrize("where", ["header", "on_error"])
def test_cancelling_an_operation_cancels_its_async_callable(url: str, where: str) -> None:
    """An async header callable or on_error still running when its operation is cancelled is
    cancelled with it, rather than left running as a task of its own."""
    DurableStream(url).create(content_type="text/plain")
    if where == "on_error":
        inject(url, status=401, method="GET")

    async def main() -> None:
        started, stopped = asyncio.Event(), asyncio.Event()

        async def hang(*_: object) -> Any:
            started.set()
            try:
                await asyncio.get_running_loop().create_future()  # never done
            finally:
                stopped.set()

        s = AsyncDurableStream(url)
        if where == "header":
            op: Any = s.append("x", headers={"X-Token": hang})
        else:
            op = s.stream(offset="-1", live=False, on_error=hang)
        task = asyncio.ensure_future(op)
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(stopped.wait(), 5)

    asyncio.run(main())
    assert raw_read(url) == b""


def test_concurrent_async_appends(url: str) -> None:
    async def main() -> list[ds.AppendResult]:
        s = AsyncDurableStream(url)
        await s.create(content_type="application/json")
        return await asyncio.gather(*(s.append_json({"i": i}) for i in range(20)))

    results = asyncio.run(main())
    assert len({r.next_offset for r in results}) == 20


def test_many_async_completions_reach_their_callers(url: str) -> None:
    """Results finish on runtime threads in bursts and are handed to the loop together: each
    caller still gets its own result (its own message's offset range) or its own error."""

    async def main() -> tuple[list[ds.AppendResult], list[BaseException]]:
        s = AsyncDurableStream(url)
        await s.create(content_type="text/plain")
        missing = AsyncDurableStream(url + "-missing")
        oks = [s.append(f"m{i:04d};") for i in range(400)]
        fails = [missing.append("x") for _ in range(20)]
        got = await asyncio.wait_for(asyncio.gather(*oks, *fails, return_exceptions=True), 60)
        ok = [g for g in got[:400] if isinstance(g, ds.AppendResult)]
        return ok, [g for g in got[400:] if isinstance(g, BaseException)]

    results, errors = asyncio.run(main())
    assert len(results) == 400
    assert len({r.next_offset for r in results}) == 400
    assert len(errors) == 20
    assert all(isinstance(e, ds.StreamNotFoundError) for e in errors)
    assert sorted(raw_read(url).decode().split(";")[:-1]) == [f"m{i:04d}" for i in range(400)]


def test_async_calls_on_loops_in_several_threads(server: str) -> None:
    """Each thread runs its own event loop; every loop gets its own results."""
    texts: dict[int, bytes] = {}

    async def work(i: int) -> None:
        s = AsyncDurableStream(new_url(server, f"loop-thread-{i}"))
        await s.create(content_type="text/plain")
        await asyncio.gather(*(s.append(f"{i}") for _ in range(25)))
        texts[i] = raw_read(s.url)

    assert in_threads(lambda i: asyncio.run(work(i)), 6) == []
    assert texts == {i: str(i).encode() * 25 for i in range(6)}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_one_loop_after_another_leaves_no_descriptors(url: str) -> None:
    """A loop's wake-up socket is closed once the loop is closed and another one is used."""
    DurableStream(url).create(content_type="text/plain")

    async def one() -> None:
        await AsyncDurableStream(url).append("x")

    asyncio.run(one())
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        asyncio.run(one())
    assert len(os.listdir("/proc/self/fd")) <= before + 2
    assert raw_read(url) == b"x" * 31


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_loops_never_closed_leave_no_descriptors(url: str) -> None:
    """Loops left to the garbage collector without close() take their descriptors with them
    (the loop's own, and the wake-up socket pair of this module): a loop whose operation
    finished, one whose operation a timeout cancelled, and one whose operation finished just
    as it was cancelled, on the loop's last turn."""
    DurableStream(url).create(content_type="text/plain")
    held, slow = url + "-held", url + "-slow"
    for u, ms in ((held, 5000), (slow, 150)):
        DurableStream(u).create(content_type="text/plain")
        inject(u, delayMs=ms, method="HEAD", count=1000)

    def once(kind: str) -> None:
        loop = asyncio.new_event_loop()  # never closed

        async def op() -> None:
            if kind == "finished":
                await AsyncDurableStream(url).append("x")
            elif kind == "timed out":
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(AsyncDurableStream(held).head(), 0.01)
            else:
                task = asyncio.ensure_future(AsyncDurableStream(slow).head())
                await asyncio.sleep(0)  # the HEAD is sent; it is answered after 150 ms
                # On the loop's next (and last) turn, after it looked for results: the HEAD
                # is answered during this sleep, then the cancellation is handled.
                loop.call_soon(time.sleep, 0.5)
                task.cancel()

        loop.run_until_complete(op())

    def descriptors() -> int:
        DurableStream(url).content_type  # noqa: B018 (releases deferred references)
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    kinds = ["finished", "timed out", "cancelled as it finished"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the loops not closed
        for kind in kinds:
            once(kind)
        before = descriptors()
        for _ in range(2):
            for kind in kinds:
                once(kind)
        for _ in range(30):
            once("finished")
            once("timed out")
        # Cancelled operations end on runtime threads, a moment after their loop stopped.
        deadline = time.monotonic() + 5
        while descriptors() > before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert descriptors() <= before + 2
    assert raw_read(url) == b"x" * 33


def test_a_loop_that_cannot_watch_a_socket_still_works(url: str) -> None:
    """Windows' proactor loop has no add_reader: async calls then complete another way."""

    class NoReader(asyncio.SelectorEventLoop):
        def add_reader(self, *args: object) -> None:
            raise NotImplementedError

    async def main() -> bytes:
        s = AsyncDurableStream(url)
        await s.create(content_type="text/plain")
        await asyncio.gather(*(s.append("y") for _ in range(10)))
        with pytest.raises(ds.StreamNotFoundError):
            await AsyncDurableStream(url + "-missing").append("x")
        return await (await s.stream(offset="-1")).read_bytes()

    loop = NoReader()
    try:
        assert loop.run_until_complete(main()) == b"y" * 10
    finally:
        loop.close()


def test_async_call_needs_a_running_loop(url: str) -> None:
    s = AsyncDurableStream(url)
    coro = s.head()
    with pytest.raises(RuntimeError, match="no running event loop"):
        coro.send(None)
    coro.close()


@pytest.mark.parametrize("how", ["interrupt_main", "sigint"])
def test_ctrl_c_interrupts_a_blocking_call(url: str, how: str) -> None:
    s = DurableStream(url)
    s.create()
    inject(url, delayMs=3000, method="HEAD")

    def interrupt() -> None:
        if how == "interrupt_main":
            _thread.interrupt_main()
        else:
            os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.3, interrupt)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.head()
    finally:
        timer.join()
    assert time.monotonic() - started < 1.5
    assert s.exists()  # the same handle still works


def test_ctrl_c_drops_the_rust_future(url: str) -> None:
    s = DurableStream(url)
    s.create(content_type="text/plain")
    inject(url, delayMs=3000, method="POST")

    class Token:
        def __call__(self) -> str:
            return "t"

    token = Token()
    ref = weakref.ref(token)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.append("x", headers={"X-Token": token})
    finally:
        timer.join()
    del token
    gc.collect()
    assert ref() is None  # the future that held it is gone


def test_other_threads_run_during_a_blocking_call(url: str) -> None:
    s = DurableStream(url)
    s.create()
    inject(url, delayMs=1000, method="HEAD")
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        before = ticks
        s.head()
        during = ticks - before
    finally:
        stop.set()
        t.join()
    # About 1000 ticks if the GIL is free for the whole second; none if the call held it.
    assert during > 100


def test_blocking_calls_from_threads(server: str) -> None:
    def work(i: int) -> None:
        s = DurableStream(new_url(server, f"thread-{i}"))
        s.create(content_type="text/plain")
        for _ in range(5):
            s.append("x")
        assert raw_read(s.url) == b"xxxxx"

    assert in_threads(work, 8) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_use_after_fork(server: str) -> None:
    # Used before the fork, so the parent's runtime and connection pool exist.
    inherited = DurableStream(new_url(server, "fork-inherited"))
    inherited.create(content_type="text/plain")
    inherited.append("parent ")
    fresh_url = new_url(server, "fork-fresh")

    async def child_async() -> None:
        s = AsyncDurableStream(fresh_url)
        await s.append("async")

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = b"ok"
        try:
            inherited.append("child")
            fresh = DurableStream(fresh_url)
            fresh.create(content_type="text/plain")
            asyncio.run(child_async())
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
    inherited.append(" parent again")  # the parent is unaffected
    assert raw_read(inherited.url) == b"parent child parent again"
    assert raw_read(fresh_url) == b"async"


def test_core_events_reach_logging(url: str, caplog: pytest.LogCaptureFixture) -> None:
    s = DurableStream(url, retry=RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retries=2))
    s.create()
    with caplog.at_level(logging.WARNING, logger="durable_streams_client"):
        s.head()
    assert caplog.records == []
    inject(url, status=503, count=1, method="HEAD")
    with caplog.at_level(logging.DEBUG, logger="durable_streams_client"):
        s.head()

        async def main() -> None:
            await AsyncDurableStream(url).head()

        asyncio.run(main())
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert all(name == "durable_streams_client" for name, _, _ in records)
    retries = [m for _, level, m in records if level == logging.INFO]
    assert len(retries) == 1
    assert retries[0].startswith("retrying request")
    assert "attempt=1" in retries[0]
    responses = [m for _, level, m in records if level == logging.DEBUG and "status=200" in m]
    assert len(responses) == 2  # the retried blocking head and the async one
    assert all("method=HEAD" in m and url in m for m in responses)
