"""Programs that end while the package's runtime is busy, run by test_exit.py in subprocesses.

Usage: ``python exit_scenarios.py SCENARIO STREAM_URL``. Each scenario creates the stream,
does its work, prints one line ``OK <count>`` and ends normally, leaving work behind for the
interpreter's exit: the completion of an asyncio future racing with it, a live read still
waiting, a producer with messages not yet sent, core log events, a user callable still running
on a runtime thread. The interpreter must then exit with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import urllib.request

import durable_streams_client as ds
from durable_streams_client import (
    AsyncDurableStream,
    AsyncIdempotentProducer,
    DurableStream,
    IdempotentProducer,
    astream,
)

COUNT = 20


def done(n: int) -> None:
    print(f"OK {n}", flush=True)


def async_append(url: str) -> None:
    """One awaited append, then the end of the program."""

    async def main() -> int:
        await AsyncDurableStream(url).append_json({"i": 0})
        return 1

    done(asyncio.run(main()))


def live_tail(url: str) -> None:
    """The benchmark's live tail: a reader task follows the stream (long-poll) while the main
    task appends; the program ends as soon as the reader has every message."""

    async def main() -> int:
        got: list[int] = []

        async def reader() -> None:
            async with await astream(url, live="long-poll") as res:
                async for item in res.iter_json():
                    got.append(item["i"])
                    if len(got) == COUNT:
                        return

        async with AsyncDurableStream(url) as h:
            task = asyncio.create_task(reader())
            await asyncio.sleep(0.05)
            for i in range(COUNT):
                await h.append_json({"i": i})
            await task
        if got != list(range(COUNT)):
            raise RuntimeError(f"read {got}")
        return len(got)

    done(asyncio.run(main()))


def live_left_open(url: str) -> None:
    """A live read still waiting for data at exit, on an event loop that is never closed."""
    DurableStream(url).append_batch([f'{{"i":{i}}}' for i in range(COUNT)])
    loop = asyncio.new_event_loop()

    async def main() -> int:
        res = await astream(url, live="long-poll")
        items = res.iter_json().__aiter__()
        n = 0
        for _ in range(COUNT):
            await items.__anext__()
            n += 1
        pending = loop.create_task(items.__anext__())  # waits for data that never comes
        await asyncio.sleep(0.01)
        assert not pending.done()
        return n

    done(loop.run_until_complete(main()))


def read_left_running(url: str) -> None:
    """An async read_json of many messages still building its values at exit (a runtime
    thread takes the GIL for each batch), on an event loop that is never closed."""
    body = "[" + ",".join(f'{{"i":{i},"p":"{"x" * 80}"}}' for i in range(200_000)) + "]"
    post = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(post).close()
    loop = asyncio.new_event_loop()

    async def main() -> int:
        res = await astream(url, live=False)
        pending = loop.create_task(res.read_json())
        await asyncio.sleep(0.02)
        assert not pending.done()
        return COUNT

    done(loop.run_until_complete(main()))


def producer_pending(url: str) -> None:
    """An asyncio producer with messages not yet sent at exit."""

    async def main() -> int:
        p = AsyncIdempotentProducer(AsyncDurableStream(url), "exit", linger_ms=20)
        for i in range(COUNT):
            p.append_json({"i": i})
        await p.flush()
        for i in range(COUNT, 10 * COUNT):
            p.append_json({"i": i})
        return COUNT

    done(asyncio.run(main()))


def debug_logging(url: str) -> None:
    """The live tail with the core's debug events forwarded to logging."""
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    live_tail(url)


def slow_callable(url: str) -> None:
    """A producer's header callable (called on a runtime thread) still running Python code at
    exit: the exit waits for it."""
    started = threading.Event()

    def token() -> str:
        started.set()
        for _ in range(75):
            time.sleep(0.02)  # gives up the GIL and takes it back, again and again
        return "t"

    p = IdempotentProducer(DurableStream(url), "exit", linger_ms=1, headers={"X-Token": token})
    p.append_json({"i": 0})
    if not started.wait(10):
        raise RuntimeError("the header callable was not called")
    done(1)


def after_shutdown(url: str) -> None:
    """What still works once the package's exit hook has run (as in a later atexit handler):
    the blocking API does, the async API raises RuntimeError."""
    ds._shutdown()

    async def append() -> None:
        await AsyncDurableStream(url).append_json({"i": 1})

    try:
        asyncio.run(append())
    except RuntimeError as e:
        if "interpreter is exiting" not in str(e):
            raise
    else:
        raise RuntimeError("the async API still worked after shutdown")
    s = DurableStream(url)
    s.append_json({"i": 0})
    with s.stream() as res:
        done(len(res.read_json()))


SCENARIOS = {
    "async-append": async_append,
    "live-tail": live_tail,
    "live-left-open": live_left_open,
    "read-left-running": read_left_running,
    "producer-pending": producer_pending,
    "debug-logging": debug_logging,
    "slow-callable": slow_callable,
    "after-shutdown": after_shutdown,
}

if __name__ == "__main__":
    name, stream_url = sys.argv[1], sys.argv[2]
    DurableStream(stream_url).create(content_type="application/json")
    SCENARIOS[name](stream_url)
