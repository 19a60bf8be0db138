"""Reads against a local misbehaving server: data arrives before a response ends, and memory
stays bounded by the read's limits."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

import durable_streams_client as ds

Handler = Callable[[socket.socket], None]


@contextmanager
def local_server(handler: Handler) -> Iterator[str]:
    """A loopback server answering every connection with ``handler`` (one request each)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    part = conn.recv(4096)
                    if not part:
                        break
                    head += part
                with suppress(OSError):
                    handler(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/s"
    finally:
        stop.set()
        t.join(5)
        listener.close()


def head(content_type: str, offset: str) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
        f"Stream-Next-Offset: {offset}\r\nStream-Up-To-Date: true\r\n\r\n"
    ).encode()


def paused(release: threading.Event) -> Handler:
    """Sends the first message of a JSON array, then waits for ``release`` (at most 10 s)
    before the rest."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(head("application/json", "o1") + b'[{"a":1},')
        release.wait(10)
        conn.sendall(b"2]")

    return handler


def test_messages_arrive_before_the_response_ends() -> None:
    release = threading.Event()
    with local_server(paused(release)) as url, ds.stream(url, live=False) as resp:
        batches = resp.iter_json_batches()
        first = next(batches)
        # Handed on while the server still holds the rest back: not a checkpoint, so its
        # offset is where the response started.
        assert not release.is_set()
        assert first.data == [{"a": 1}]
        assert (first.checkpoint, first.offset, first.up_to_date) == (False, "-1", False)
        assert resp.offset == "-1"
        release.set()
        rest = list(batches)
    assert [b.data for b in rest] == [[2]]
    assert (rest[-1].checkpoint, rest[-1].offset, rest[-1].up_to_date) == (True, "o1", True)


def test_async_messages_arrive_before_the_response_ends() -> None:
    async def main() -> list[object]:
        release = threading.Event()
        with local_server(paused(release)) as url:
            resp = await ds.astream(url, live=False)
            got: list[object] = []
            async for message in resp.iter_json():
                got.append(message)
                got.append(release.is_set())
                release.set()
            return got

    assert asyncio.run(main()) == [{"a": 1}, False, 2, True]


def huge(conn: socket.socket) -> None:
    """A 1 GiB body, generated as it is sent (the client hangs up long before)."""
    conn.sendall(head("application/octet-stream", "o1"))
    block = b"x" * (1 << 16)
    for _ in range((1 << 30) // len(block)):
        conn.sendall(block)


def test_read_json_is_bounded_and_names_its_limit(url: str) -> None:
    # read_json builds values as the read goes on; the read still stops at max_read_bytes,
    # counting the bytes received, in both flavours and with a pick.
    s = ds.DurableStream(url)
    s.create(content_type="application/json")
    s.append_batch([f'{{"i":{i},"p":"{"x" * 100}"}}' for i in range(1_000)])
    limit = r"max_read_bytes \(16384 bytes\)"
    with pytest.raises(ds.ParseError, match=limit):
        s.stream(live=False, max_read_bytes=16384).read_json()
    with pytest.raises(ds.ParseError, match=limit):
        s.stream(live=False, max_read_bytes=16384).read_json(field="i")

    async def read_async() -> None:
        async with ds.AsyncDurableStream(url) as a:
            await (await a.stream(live=False, max_read_bytes=16384)).read_json()

    with pytest.raises(ds.ParseError, match=limit):
        asyncio.run(read_async())
    assert len(s.stream(live=False).read_json()) == 1_000


def test_accumulating_reads_are_bounded_and_name_their_limit() -> None:
    with local_server(huge) as url:
        limit = pytest.raises(ds.ParseError, match=r"max_read_bytes \(1048576 bytes\)")
        with ds.stream(url, max_read_bytes=1 << 20) as resp, limit:
            resp.read_bytes()
        # The streaming forms hand out parts of at most about max_chunk_bytes.
        with ds.stream(url, max_chunk_bytes=1 << 16) as resp:
            sizes = []
            for chunk in resp.iter_bytes():
                sizes.append(len(chunk))
                if len(sizes) == 20:
                    break
        assert max(sizes) < 2 * (1 << 16) + (1 << 20)
    # Unset reaches the core unset (its defaults); a bad value gets the core's error, which
    # names the option (nothing is sent: port 1 would refuse).
    for bad, name in (
        ({"max_chunk_bytes": 0}, "max_chunk_bytes"),
        ({"max_read_bytes": 0}, "max_read_bytes"),
        ({"max_chunk_bytes": -5}, "max_chunk_bytes"),
        ({"max_read_bytes": -1}, "max_read_bytes"),
    ):
        with pytest.raises(ds.InvalidArgumentError, match=name) as info:
            ds.stream("http://127.0.0.1:1/s", **bad)  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)
        assert info.value.code == "INVALID_ARGUMENT"


def test_a_limit_beyond_any_read_is_taken_as_it_is(url: str) -> None:
    """Python ints are exact: a limit above 2**53 (or above what 64 bits hold) is no limit in
    practice, not an error; a negative one or a non-int is refused, naming what is wrong."""
    s = ds.DurableStream(url)
    s.create(content_type="application/json")
    s.append('{"n":1}')
    for limit in (1 << 62, (1 << 64) - 1, 1 << 70):
        with ds.stream(url, live=False, max_read_bytes=limit, max_chunk_bytes=limit) as resp:
            assert resp.read_json() == [{"n": 1}]
    negative = r"max_read_bytes.* got -18446744073709551617"
    with pytest.raises(ds.InvalidArgumentError, match=negative):
        ds.stream(url, max_read_bytes=-(1 << 64) - 1)
    with pytest.raises(TypeError, match="expected an int, not float"):
        ds.stream(url, max_read_bytes=2.5)  # type: ignore[arg-type]


def test_a_json_message_above_the_chunk_limit_is_an_error() -> None:
    def big(conn: socket.socket) -> None:
        conn.sendall(head("application/json", "o1") + b'[1,"' + b"y" * 5000 + b'"]')

    limit = pytest.raises(ds.ParseError, match=r"max_chunk_bytes \(1024 bytes\)")
    with local_server(big) as url, ds.stream(url, max_chunk_bytes=1024) as resp, limit:
        resp.read_json()


def sse_run(events: int, per_event: int) -> Handler:
    """The first connection (the catch-up) gets an empty JSON stream at ``o1``; later ones an
    event stream of ``events`` data events of ``per_event`` messages, no control event until
    the last one (``o2``, stream closed)."""
    connections = [0]

    def handler(conn: socket.socket) -> None:
        connections[0] += 1
        if connections[0] == 1:
            conn.sendall(head("application/json", "o1") + b"[]")
            return
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\n"
        )
        pad = "p" * 1000
        for e in range(events):
            first = e * per_event
            msgs = ",".join(f'{{"i":{n},"pad":"{pad}"}}' for n in range(first, first + per_event))
            conn.sendall(f"event: data\ndata:[{msgs}]\n\n".encode())
        conn.sendall(b'event: control\ndata:{"streamNextOffset":"o2","streamClosed":true}\n\n')

    return handler


def test_sse_data_without_control_events_is_read_incrementally() -> None:
    # 6,000 messages of 1 KiB in 3,000 events before the only control event: handed on in
    # parts that are not checkpoints, of about max_chunk_bytes, messages whole and in order.
    limit = 16 << 10
    with (
        local_server(sse_run(3000, 2)) as url,
        ds.stream(url, live="sse", max_chunk_bytes=limit) as resp,
    ):
        seen = 0
        parts = 0
        checkpoints = []
        for batch in resp.iter_json_batches():
            if batch.checkpoint:
                checkpoints.append(batch.offset)
            else:
                parts += 1
                assert (batch.offset, batch.up_to_date, batch.stream_closed) == ("o1", False, False)
                assert resp.offset == "o1"
                # 16 KiB gathered, plus at most one event of 2 messages.
                assert len(batch.data) <= limit // 1000 + 2
            for message in batch.data:
                assert isinstance(message, dict)
                assert message["i"] == seen
                seen += 1
        assert seen == 6000
        assert parts >= 300
        assert checkpoints == ["o1", "o2"]
        assert resp.offset == "o2"


def test_a_failing_catch_up_is_visible_bounded_and_escaped() -> None:
    # Every answer is a 503 whose text tries to forge a log line. Without max_retries the
    # catch-up gives up after 10 retries; on_error sees every failed attempt; the error's text
    # has no control characters.
    def failing(conn: socket.socket) -> None:
        body = b"down\n2026-12-04 INFO admin logged in\x1b[2J"
        conn.sendall(
            b"HTTP/1.1 503 X\r\nConnection: close\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    seen: list[ds.DurableStreamError] = []

    def on_error(e: ds.DurableStreamError) -> None:
        seen.append(e)

    fast = ds.RetryPolicy(initial_delay=0.005, max_delay=0.02, max_retries=None)
    with local_server(failing) as url, pytest.raises(ds.DurableStreamError) as info:
        ds.stream(url, live=False, retry=fast, on_error=on_error)
    assert len(seen) == 11
    assert info.value.status == 503
    text = str(info.value)
    assert not any(c in text for c in "\n\r\x1b"), repr(text)
    assert r"down\n2026-12-04 INFO admin logged in\u{1b}[2J" in text, text


def test_a_live_request_whose_head_never_arrives_times_out_and_reaches_on_error() -> None:
    # The catch-up answers at once; every SSE request then gets no answer at all.
    connections = [0]

    def silent(conn: socket.socket) -> None:
        connections[0] += 1
        if connections[0] == 1:
            conn.sendall(head("text/plain", "o1"))
            return
        while conn.recv(4096):
            pass

    seen: list[ds.DurableStreamError] = []

    def on_error(e: ds.DurableStreamError) -> None:
        seen.append(e)

    fast = ds.RetryPolicy(initial_delay=0.005, max_delay=0.02, max_retries=1)
    client = ds.Client(request_timeout=0.3)
    with (
        local_server(silent) as url,
        ds.stream(url, live="sse", retry=fast, on_error=on_error, client=client) as resp,
        pytest.raises(ds.StreamTimeoutError, match="response head"),
    ):
        for _ in resp.iter_bytes():
            pass
    # Once per failed attempt: the first (retried by the policy) and the last.
    assert len(seen) == 2
    assert all(isinstance(e, ds.StreamTimeoutError) for e in seen)


def test_data_that_does_not_advance_the_offset_is_a_parse_error() -> None:
    # Every answer carries data but leaves the offset where the request started.
    def stuck(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n"
            b"Stream-Next-Offset: -1\r\nContent-Length: 4\r\n\r\ndata"
        )

    with (
        local_server(stuck) as url,
        ds.stream(url, live=False) as resp,
        pytest.raises(ds.ParseError, match="without advancing the offset"),
    ):
        resp.read_bytes()
