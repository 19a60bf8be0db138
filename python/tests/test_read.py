"""Reading: stream()/astream() and DurableStream.stream(), every consumer in both flavours,
metadata, errors, on_error, cancellation, Ctrl-C, threads and fork()."""

from __future__ import annotations

import _thread
import asyncio
import os
import select
import signal
import threading
import time
import urllib.request
from typing import Any

import pytest
from conftest import inject, raw_json

import durable_streams_client as ds
from durable_streams_client import (
    AlreadyClosedError,
    AlreadyConsumedError,
    AsyncDurableStream,
    AsyncStreamResponse,
    Batch,
    DurableStream,
    InvalidArgumentError,
    RetryPolicy,
    StreamNotFoundError,
    StreamResponse,
    UnauthorizedError,
)


def json_stream(url: str, n: int = 3, close: bool = False) -> DurableStream:
    s = DurableStream(url)
    s.create(content_type="application/json")
    for i in range(n):
        s.append_json({"i": i})
    if close:
        s.close()
    return s


def test_read_json_all_at_once(url: str) -> None:
    json_stream(url)
    with ds.stream(url) as resp:
        assert isinstance(resp, StreamResponse)
        assert resp.start_offset == "-1"
        # The default live mode is the core's ("auto", as in every language); the
        # accumulating forms still end at the first up-to-date point.
        assert resp.live == "auto"
        assert resp.content_type == "application/json"
        assert resp.is_json
        assert resp.read_json() == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert resp.up_to_date
        assert not resp.stream_closed
        assert resp.offset != "-1"
        with pytest.raises(AlreadyConsumedError):
            resp.read_json()


def test_json_messages_keep_order_types_and_split_over_array_texts(url: str) -> None:
    # JSON messages cross from the native layer as JSON array texts of at most 16 MiB each;
    # a read of more (one response here) is parsed from several and stays one list in order.
    s = DurableStream(url)
    s.create(content_type="application/json")
    pad = "é" * 450
    n = 20_000
    body = "[" + ",".join(f'{{"z":{i},"a":[1.5,true,null,"{pad}"]}}' for i in range(n)) + "]"
    assert len(body.encode()) > 17 << 20
    # A JSON array POSTed to a JSON stream is one message per element (the client's append
    # would make it a single message).
    post = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(post).close()
    s.append_json([])

    def check(items: list[Any]) -> None:
        assert len(items) == n + 1
        assert items[7] == {"z": 7, "a": [1.5, True, None, pad]}
        assert list(items[7]) == ["z", "a"]
        assert [m["z"] for m in items[:n]] == list(range(n))
        assert items[n] == []

    check(s.stream().read_json())
    batches = list(s.stream(live=False).iter_json_batches())
    check([m for b in batches for m in b.data])
    check(list(s.stream(live=False).iter_json()))

    async def read_async() -> tuple[list[Any], list[Any]]:
        async with AsyncDurableStream(url) as a:
            whole = await (await a.stream()).read_json()
            one_by_one = [m async for m in (await a.stream(live=False)).iter_json()]
            return whole, one_by_one

    whole, one_by_one = asyncio.run(read_async())
    check(whole)
    check(one_by_one)


def test_read_json_builds_batch_by_batch_and_keeps_json_loads_answers(url: str) -> None:
    # read_json (both flavours) builds the values of each batch as the read goes on. Batches
    # here hold texts the native reader leaves to json.loads (a lone surrogate, an integer
    # beyond 64 bits): the list is still every message, in order, as json.loads reads them.
    s = DurableStream(url)
    s.create(content_type="application/json")
    pad = "p" * 200
    texts = []
    for i in range(12_000):
        if i % 997 == 5:
            texts.append(f'{{"k":{i},"s":"\\ud800 {i}","pad":"{pad}"}}')
        elif i % 1499 == 7:
            texts.append(f'{{"k":{i},"s":{2**70 + i},"pad":"{pad}"}}')
        else:
            texts.append(f'{{"k":{i},"s":"t{i % 7}","pad":"{pad}"}}')
    body = "[" + ",".join(texts) + "]"
    assert len(body) > 2 << 20
    post = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(post).close()
    # What the server stores (it may write a number differently), read without the client.
    want = raw_json(url)
    assert len(want) == len(texts)
    assert want[5]["s"] == "\ud800 5"

    batches = list(s.stream(live=False).iter_json_batches())
    assert len(batches) > 1, "the read should come in several batches"
    assert s.stream().read_json() == want
    assert s.stream().read_json(field="s") == [m["s"] for m in want]
    assert s.stream().read_json(fields=["k"]) == [{"k": m["k"]} for m in want]

    async def read_async() -> list[Any]:
        async with AsyncDurableStream(url) as a:
            return await (await a.stream()).read_json(field="s")

    assert asyncio.run(read_async()) == [m["s"] for m in want]

    # With another thread running Python, the read waits for the GIL and then gathers the
    # texts to build them at once: the same list.
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    busy = threading.Thread(target=spin)
    busy.start()
    try:
        assert s.stream().read_json() == want
        assert s.stream().read_json(field="k") == [m["k"] for m in want]
    finally:
        stop.set()
        busy.join()


def test_an_error_building_values_ends_the_read_with_that_error(url: str) -> None:
    # A message nested deeper than json.loads can recurse: the native reader leaves its
    # batch to json.loads, whose RecursionError is the read's answer, in both flavours.
    s = DurableStream(url)
    s.create(content_type="application/json")
    s.append_json({"i": 0})
    depth = 2_000
    s.append('{"a":' * depth + "1" + "}" * depth)
    s.append_json({"i": 2})
    with pytest.raises(RecursionError):
        s.stream().read_json()

    async def read_async() -> None:
        async with AsyncDurableStream(url) as a:
            await (await a.stream()).read_json()

    with pytest.raises(RecursionError):
        asyncio.run(read_async())
    # A picked read never builds the deep value.
    assert s.stream().read_json(field="i") == [0, None, 2]


def test_reads_that_keep_only_some_members(url: str) -> None:
    s = DurableStream(url)
    s.create(content_type="application/json")
    messages: list[Any] = [
        {"id": 1, "text": "a", "meta": {"text": "inner"}},
        {"text": "é\n", "id": 2.5},
        7,
        "text",
        None,
        {"id": [1, {"id": 0}], "x": None},
        {},
    ]
    for m in messages:
        s.append_json(m)
    # A duplicate key, sent as text: the last value counts, as in json.loads.
    s.append('{"id": 1, "id2": 2, "id": "last"}')
    whole = s.stream().read_json()

    def value(m: Any, k: str) -> Any:
        return m.get(k) if isinstance(m, dict) else None

    def members(m: Any, ks: list[str]) -> Any:
        return {k: v for k, v in m.items() if k in ks} if isinstance(m, dict) else None

    for k in ["id", "text", "missing"]:
        want = [value(m, k) for m in whole]
        assert s.stream().read_json(field=k) == want
        assert list(s.stream(live=False).iter_json(field=k)) == want
        got = [m for b in s.stream(live=False).iter_json_batches(field=k) for m in b.data]
        assert got == want
    want = [members(m, ["id", "x"]) for m in whole]
    assert want[0] == {"id": 1}
    assert want[2] is None
    assert want[5] == {"id": [1, {"id": 0}], "x": None}
    assert want[7] == {"id": "last"}
    assert s.stream().read_json(fields=["id", "x"]) == want
    assert s.stream().read_json(fields=("x", "id")) == want
    assert list(s.stream(live=False).iter_json(fields=iter(["id", "x"]))) == want

    async def main() -> tuple[Any, Any, Any]:
        a = AsyncDurableStream(url)
        one = await (await a.stream()).read_json(field="text")
        batches = [
            b.data async for b in (await a.stream(live=False)).iter_json_batches(fields=["text"])
        ]
        each = [m async for m in (await a.stream(live=False)).iter_json(field="id")]
        return one, batches, each

    one, batches, each = asyncio.run(main())
    assert one == [value(m, "text") for m in whole]
    assert [m for b in batches for m in b] == [members(m, ["text"]) for m in whole]
    assert each == [value(m, "id") for m in whole]

    # A live read picks from new messages too, over long-polls and over SSE.
    for live in ["long-poll", "sse"]:
        with s.stream(offset=s.head().next_offset, live=live) as resp:
            s.append_json({"id": 99, "text": f"new over {live}"})
            assert next(resp.iter_json(field="text")) == f"new over {live}"

    # Mistakes are named before anything is read.
    with pytest.raises(TypeError, match="not one string"):
        s.stream().read_json(fields="id")
    with pytest.raises(TypeError, match="field must be"):
        s.stream().read_json(field=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fields must hold"):
        s.stream().read_json(fields=["id", 2])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="not both"):
        s.stream().read_json(field="id", fields=["id"])
    with pytest.raises(InvalidArgumentError, match="at least one"):
        s.stream().read_json(fields=[])
    t = DurableStream(url + "-text")
    t.create(content_type="text/plain")
    t.append('[{"a": 1}]')
    with pytest.raises(InvalidArgumentError, match="application/json"):
        t.stream().read_json(field="a")
    assert t.stream(json=True).read_json(field="a") == [1]


def test_read_bytes_and_text(url: str) -> None:
    s = DurableStream(url)
    s.create(content_type="text/plain")
    s.append("héllo ")
    s.append(b"world")
    assert s.stream().read_bytes() == "héllo world".encode()
    assert s.stream().read_text() == "héllo world"
    assert list(s.stream(live=False)) == [b"h\xc3\xa9llo world"]
    assert "".join(s.stream(live=False).iter_text()) == "héllo world"


def test_batches_resume_from_their_offset(url: str) -> None:
    s = json_stream(url)
    batches = list(s.stream(live=False).iter_json_batches())
    assert all(isinstance(b, Batch) for b in batches)
    assert [m for b in batches for m in b.data] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert batches[-1].up_to_date
    saved = batches[-1].offset
    s.append_json({"i": 3})
    resp = s.stream(offset=saved)
    assert resp.read_json() == [{"i": 3}]
    assert list(s.stream(offset=resp.offset, live=False).iter_json()) == []
    raw = list(s.stream(live=False).iter_batches())
    assert isinstance(raw[0].data, bytes)
    text = list(s.stream(live=False).iter_text_batches())
    assert isinstance(text[0].data, str)


def test_closed_stream_reports_stream_closed(url: str) -> None:
    json_stream(url, close=True)
    resp = ds.stream(url, live=True)
    assert list(resp.iter_json()) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert resp.stream_closed
    assert resp.live == "auto"


def test_json_flag_on_a_text_stream(url: str) -> None:
    s = DurableStream(url)
    s.create(content_type="text/plain")
    s.append('[{"a": 1}]')
    with pytest.raises(InvalidArgumentError):
        s.stream().read_json()
    assert s.stream(json=True).read_json() == [{"a": 1}]


def test_errors(url: str) -> None:
    with pytest.raises(StreamNotFoundError):
        ds.stream(url)
    json_stream(url)
    with pytest.raises(InvalidArgumentError, match="live must be"):
        ds.stream(url, live="websocket")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="offset"):
        ds.stream(url, offset=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("live", ["long-poll", "sse"])
def test_live_read_sees_new_data(url: str, live: Any) -> None:
    s = json_stream(url, n=1)
    got: list[Any] = []
    with s.stream(live=live) as resp:
        threading.Timer(0.3, lambda: s.append_json({"i": 1})).start()
        threading.Timer(0.6, s.close).start()
        for m in resp.iter_json():
            got.append(m)
    assert got == [{"i": 0}, {"i": 1}]
    assert resp.stream_closed


def test_offset_now_skips_existing_data(url: str) -> None:
    s = json_stream(url)
    assert s.stream(offset="now").read_json() == []


def test_headers_params_and_on_error(url: str) -> None:
    """on_error answers a 401 with a fresh header; computed params are used."""
    s = json_stream(url)
    inject(url, status=401, count=1, method="GET")
    seen: list[ds.DurableStreamError] = []

    def on_error(e: ds.DurableStreamError) -> dict[str, Any] | None:
        seen.append(e)
        return {"headers": {"X-Token": "fresh"}}

    resp = s.stream(headers={"X-A": "a"}, params={"p": lambda: "1"}, on_error=on_error)
    assert resp.read_json() == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert len(seen) == 1
    assert isinstance(seen[0], UnauthorizedError)
    # Returning None stops the read with the error.
    inject(url, status=401, count=1, method="GET")
    with pytest.raises(UnauthorizedError):
        s.stream(on_error=lambda e: None)


def test_retry_policy_is_used(url: str) -> None:
    s = json_stream(url)
    inject(url, status=503, count=2, method="GET")
    p = RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retries=3)
    assert len(s.stream(retry=p).read_json()) == 3


def test_close_ends_a_live_read_promptly(url: str) -> None:
    s = json_stream(url, n=1)
    resp = s.stream(live="long-poll")
    it = resp.iter_json()
    assert next(it) == {"i": 0}
    threading.Timer(0.3, resp.close).start()
    started = time.monotonic()
    assert list(it) == []
    assert time.monotonic() - started < 1.0
    assert resp.closed


def test_ctrl_c_interrupts_a_live_read(url: str) -> None:
    """A long-poll waiting for data is interrupted by KeyboardInterrupt."""
    s = json_stream(url, n=1)
    resp = s.stream(live="long-poll")
    timer = threading.Timer(0.5, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in resp.iter_json():
                pass
    finally:
        timer.join()
    assert time.monotonic() - started < 1.5
    resp.close()


def test_other_threads_run_during_a_blocking_read(url: str) -> None:
    s = json_stream(url, n=1)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.01)

    t = threading.Thread(target=count)
    t.start()
    try:
        with s.stream(live="long-poll") as resp:
            threading.Timer(0.5, s.close).start()
            assert list(resp.iter_json()) == [{"i": 0}]
    finally:
        stop.set()
        t.join()
    assert ticks >= 20  # the counting thread ran while the read waited


def test_async_equals_blocking(url: str) -> None:
    json_stream(url, n=5)
    blocking = {
        "all": ds.stream(url).read_json(),
        "iter": list(ds.stream(url, live=False).iter_json()),
        "batches": [(b.data, b.offset) for b in ds.stream(url, live=False).iter_json_batches()],
        "bytes": ds.stream(url).read_bytes(),
        "chunks": list(ds.stream(url, live=False)),
        "text": ds.stream(url).read_text(),
    }

    async def main() -> dict[str, Any]:
        a = AsyncDurableStream(url)
        r = await a.stream()
        assert isinstance(r, AsyncStreamResponse)
        out: dict[str, Any] = {"all": await r.read_json()}
        out["iter"] = [m async for m in (await ds.astream(url, live=False)).iter_json()]
        out["batches"] = [
            (b.data, b.offset)
            async for b in (await ds.astream(url, live=False)).iter_json_batches()
        ]
        out["bytes"] = await (await ds.astream(url)).read_bytes()
        out["chunks"] = [c async for c in await ds.astream(url, live=False)]
        out["text"] = await (await a.stream()).read_text()
        async with await a.stream() as r2:
            await r2.read_json()
            with pytest.raises(AlreadyConsumedError):
                await r2.read_text()
        return out

    assert asyncio.run(main()) == blocking


def test_async_on_error_may_be_async(url: str) -> None:
    json_stream(url)
    inject(url, status=401, count=1, method="GET")

    async def on_error(e: ds.DurableStreamError) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return {"params": {"retry": "1"}}

    async def main() -> list[Any]:
        return await (await ds.astream(url, on_error=on_error)).read_json()

    assert len(asyncio.run(main())) == 3


def test_cancelling_a_task_ends_an_async_live_read(url: str) -> None:
    json_stream(url, n=1)

    async def main() -> float:
        resp = await ds.astream(url, live="long-poll")
        got: list[Any] = []

        async def consume() -> None:
            async for m in resp.iter_json():
                got.append(m)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.5)
        assert got == [{"i": 0}]
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5


@pytest.mark.parametrize("consumer", ["iter_json_batches", "read_json", "read_bytes"])
def test_a_read_cancelled_as_its_data_arrives_leaves_offset_before_that_data(
    url: str, consumer: str
) -> None:
    """The native read finishes while the event loop is busy, and the task is cancelled
    before it gets the data: the data never reached the caller, so ``offset`` must not pass
    it, and a read resumed from there gets it."""
    json_stream(url)

    async def main() -> tuple[str, bool, list[Any], str]:
        s = AsyncDurableStream(url)
        resp = await s.stream(offset="-1", live=False)
        waiting: Any
        if consumer == "iter_json_batches":
            waiting = resp.iter_json_batches().__aiter__().__anext__()
        else:
            waiting = getattr(resp, consumer)()
        task = asyncio.ensure_future(waiting)
        await asyncio.sleep(0)  # the task starts and waits for the native read
        # The loop is busy: the read finishes and its result waits.
        time.sleep(1.0)  # noqa: ASYNC251
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        again = await s.stream(offset=resp.offset, live=False)
        return resp.offset, resp.up_to_date, await again.read_json(), again.offset

    offset, up_to_date, resumed, end = asyncio.run(main())
    assert offset == "-1"
    assert not up_to_date
    assert resumed == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert end != "-1"  # a result that arrives moves the offset


def test_async_close_ends_the_read(url: str) -> None:
    json_stream(url, n=1)

    async def main() -> list[Any]:
        async with await ds.astream(url, live=True) as resp:
            asyncio.get_running_loop().call_later(0.3, resp.close)
            return [m async for m in resp.iter_json()]

    assert asyncio.run(main()) == [{"i": 0}]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_response_used_after_fork(url: str) -> None:
    json_stream(url)
    resp = ds.stream(url)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = b"no error"
        try:
            resp.read_json()
        except AlreadyClosedError as e:
            status = b"ok" if "fork()" in str(e) else str(e).encode()
        except BaseException as e:
            status = repr(e).encode()
        try:
            if ds.stream(url).read_json() != [{"i": 0}, {"i": 1}, {"i": 2}]:
                status = b"fresh read failed"
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
    assert len(resp.read_json()) == 3  # the parent's response is unaffected
