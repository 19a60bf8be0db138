"""The contender protocol, Python side (bench/README.md).

Parse the job, build the benchmark messages, pace appends, sample RSS, print the outcome.
Shared by every Python contender (the PyPI client today, our binding later).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

now = time.perf_counter


def json_message(i: int, size: int) -> str:
    """JSON message `i`, padded with `x` to `size` bytes; identical to bench/rust/src/msg.rs."""
    head = f'{{"i":{i},"type":"bench.event","user":"u{i % 1000}","p":"'
    return head + "x" * max(0, size - len(head) - 2) + '"}'


def bytes_message(i: int, size: int) -> bytes:
    """Binary message `i`: `i` as big-endian u64, then `a + i % 26` repeated."""
    size = max(8, size)
    return i.to_bytes(8, "big") + bytes([97 + i % 26]) * (size - 8)


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class RssSampler:
    """`[seconds, KiB]` samples every 100 ms from a background thread."""

    def __init__(self) -> None:
        self.start = now()
        self.samples: list[list[float]] = []
        self._stop = threading.Event()
        self._take()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _take(self) -> None:
        self.samples.append([now() - self.start, rss_kib()])

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._take()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._take()


class Deliveries:
    """Live deliveries: checks order, computes latencies from the send times."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.sent = [-1.0] * count
        self.latencies_us: list[int] = []
        self.checksum = 0

    def mark_sent(self, i: int) -> None:
        self.sent[i] = now()

    def deliver(self, item: dict[str, Any]) -> None:
        i = item["i"]
        expected = len(self.latencies_us)
        if i != expected:
            raise RuntimeError(f"expected message {expected}, got {i}")
        if self.sent[i] < 0:
            raise RuntimeError(f"message {i} delivered before it was sent")
        self.latencies_us.append(round((now() - self.sent[i]) * 1e6))
        self.checksum += i

    @property
    def done(self) -> bool:
        return len(self.latencies_us) >= self.count


async def paced_writer(
    job: dict[str, Any], d: Deliveries, append: Callable[[int], Awaitable[Any]]
) -> None:
    """Waits 200 ms for the reader, then calls `append(i)` at `job["rate"]` per second."""
    await asyncio.sleep(0.2)
    start = now()
    interval = 1.0 / max(1.0, job["rate"])
    for i in range(job["count"]):
        wait = start + i * interval - now()
        if wait > 0:
            await asyncio.sleep(wait)
        d.mark_sent(i)
        await append(i)


async def awaited_ops(
    job: dict[str, Any], op: Callable[[int], Awaitable[Any]]
) -> tuple[list[int], float]:
    """`count` awaited ops from `concurrency` tasks; returns latencies (µs) and seconds."""
    counter = iter(range(job["count"]))
    latencies: list[int] = []

    async def worker() -> None:
        for i in counter:
            t = now()
            await op(i)
            latencies.append(round((now() - t) * 1e6))

    start = now()
    await asyncio.gather(*(worker() for _ in range(max(1, job["concurrency"]))))
    return latencies, now() - start


def append_latency_with(
    job: dict[str, Any], msgs: list[Any], sync_handle: Any, async_handle: Any
) -> dict[str, Any]:
    """append-c1 / append-c8 for a client whose ``DurableStream``-like handles (blocking and
    asyncio, both context managers with ``append``) are given: one caller awaits each append
    in turn on the blocking handle; several callers share one asyncio handle."""
    if job["concurrency"] <= 1:
        latencies = []
        with sync_handle(job["stream_url"], content_type=job["content_type"]) as handle:
            start = now()
            for m in msgs:
                t = now()
                handle.append(m)
                latencies.append(round((now() - t) * 1e6))
            seconds = now() - start
    else:

        async def run() -> tuple[list[int], float]:
            async with async_handle(job["stream_url"], content_type=job["content_type"]) as h:
                return await awaited_ops(job, lambda i: h.append(msgs[i]))

        latencies, seconds = asyncio.run(run())
    return {
        "messages": job["count"],
        "bytes": job["count"] * job["msg_bytes"],
        "seconds": seconds,
        "latencies_us": latencies,
    }


def catchup_read_with(job: dict[str, Any], stream: Any, field: bool = False) -> dict[str, Any]:
    """catchup-read with a client's ``stream()`` function: every message parsed, checksummed.
    With ``field``, only the member the checksum uses is read (``read_json(field="i")``)."""
    start = now()
    with stream(job["stream_url"], offset="-1", live=False) as res:
        items = res.read_json(field="i") if field else res.read_json()
    checksum = sum(items) if field else sum(it["i"] for it in items)
    seconds = now() - start
    return {
        "messages": len(items),
        "bytes": len(items) * job["msg_bytes"],
        "seconds": seconds,
        "checksum": checksum,
    }


def scenario_key(name: str) -> str:
    if name.startswith("append-"):
        return "append-latency"
    if name.startswith("live-"):
        return "live-tail"
    return name


def main(handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Runs the handler for the job's scenario, prints the outcome, exits non-zero on error."""
    job = json.loads(sys.argv[-1])
    handler = handlers.get(scenario_key(job["scenario"]))
    try:
        if handler is None:
            raise RuntimeError(f"scenario {job['scenario']} is not implemented by this contender")
        outcome = handler(job)
    except BaseException:  # noqa: BLE001 - any failure is a failed run
        traceback.print_exc()
        sys.exit(1)
    print(json.dumps({"ok": True, **outcome}), flush=True)
