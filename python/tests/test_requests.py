"""What reaches the wire: headers and query parameters, fixed or computed, seen by a tiny
recording HTTP server (the reference server does not echo them)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from durable_streams_client import AsyncDurableStream, AsyncIdempotentProducer, DurableStream

Seen = list[tuple[str, dict[str, str], dict[str, str]]]


@pytest.fixture
def recorder() -> Iterator[tuple[str, Seen]]:
    """A server on 127.0.0.1 that answers every HEAD and POST with 200 and records each
    request as (method, headers, query parameters)."""
    seen: Seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append(("HEAD", headers, dict(parse_qsl(parts.query))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Stream-Next-Offset", "0_0")
            self.end_headers()

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(("POST", headers, dict(parse_qsl(parts.query))))
            self.send_response(200)
            self.send_header("Stream-Next-Offset", f"0_{len(seen)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/stream/rec", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_fixed_and_computed_values_reach_the_server(recorder: tuple[str, Seen]) -> None:
    url, seen = recorder
    n = 0

    def token() -> str:
        nonlocal n
        n += 1
        return f"Bearer {n}"

    s = DurableStream(
        url, headers={"Authorization": token, "X-Fixed": "f"}, params={"tenant": lambda: "t1"}
    )
    s.head()
    s.head()
    assert [h["authorization"] for _, h, _ in seen] == ["Bearer 1", "Bearer 2"]
    assert all(h["x-fixed"] == "f" for _, h, _ in seen)
    assert all(q == {"tenant": "t1"} for _, _, q in seen)
    assert seen[0][1]["user-agent"].startswith("durable-streams-client/")


def test_async_callables_reach_the_server(recorder: tuple[str, Seen]) -> None:
    url, seen = recorder

    async def token() -> str:
        await asyncio.sleep(0)
        return "Bearer async"

    async def main() -> None:
        s = AsyncDurableStream(url, headers={"Authorization": token}, params={"p": "1"})
        await asyncio.gather(s.head(), s.exists())

    asyncio.run(main())
    assert [h["authorization"] for _, h, _ in seen] == ["Bearer async"] * 2
    assert all(q == {"p": "1"} for _, _, q in seen)


def test_asyncio_producer_awaits_async_callables(recorder: tuple[str, Seen]) -> None:
    """An asyncio producer's batches are sent by its own task: the coroutines of the stream's
    and the producer's callables run on the loop the producer was created in."""
    url, seen = recorder
    loops: list[asyncio.AbstractEventLoop] = []

    async def token() -> str:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return "Bearer async"

    async def tenant() -> str:
        return "t1"

    async def main() -> asyncio.AbstractEventLoop:
        s = AsyncDurableStream(url, headers={"Authorization": token, "X-Fixed": "f"})
        p = AsyncIdempotentProducer(s, "w", linger_ms=0, params={"tenant": tenant})
        await p.append("a")
        await p.append("b")
        await p.detach()
        # The producer's own values win over the stream's.
        p = AsyncIdempotentProducer(s, "w2", linger_ms=0, headers={"authorization": "fixed"})
        await p.append("c")
        await p.detach()
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    posts = [(h, q) for method, h, q in seen if method == "POST"]
    assert [h["authorization"] for h, _ in posts] == ["Bearer async"] * 2 + ["fixed"]
    assert all(h["x-fixed"] == "f" for h, _ in posts)
    assert [q for _, q in posts] == [{"tenant": "t1"}] * 2 + [{}]
    assert len(loops) >= 2
    assert all(x is loop for x in loops)
