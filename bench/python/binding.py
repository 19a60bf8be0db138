"""Contender "py-binding": our Python package durable-streams-client (the Rust core via pyo3).

Installed into the bench venv by bench/run.sh from ../python. Protocol: bench/README.md.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from durable_streams_client import (
    AsyncDurableStream,
    DurableStream,
    DurableStreamError,
    IdempotentProducer,
    astream,
    stream,
)
from protocol import (
    Deliveries,
    RssSampler,
    append_latency_with,
    bytes_message,
    catchup_read_with,
    json_message,
    main,
    now,
    paced_writer,
)

# Contender py-binding-many: the same program with the batch form of append.
MANY = "--many" in sys.argv[1:-1]
# Contender py-binding-field: catch-up builds only the member the checksum uses.
FIELD = "--field" in sys.argv[1:-1]


def producer(job: dict[str, Any], errors: list[DurableStreamError]) -> IdempotentProducer:
    return IdempotentProducer(
        DurableStream(job["stream_url"], content_type=job["content_type"]),
        job["producer_id"],
        linger_ms=job["linger_ms"],
        max_batch_bytes=job["batch_bytes"],
        max_in_flight=job["max_in_flight"],
        on_error=errors.append,
    )


def produce(job: dict[str, Any]) -> dict[str, Any]:
    n, size = job["count"], job["msg_bytes"]
    if job["scenario"] == "producer-bytes":
        msgs: list[str] | list[bytes] = [bytes_message(i, size) for i in range(n)]
    else:
        msgs = [json_message(i, size) for i in range(n)]
    errors: list[DurableStreamError] = []
    start = now()
    p = producer(job, errors)
    if MANY:
        p.append_many(msgs)
    else:
        append = p.append
        for m in msgs:
            append(m)
    p.flush()
    seconds = now() - start
    p.detach()
    if errors:
        raise errors[0]
    return {"messages": n, "bytes": n * size, "seconds": seconds}


def append_latency(job: dict[str, Any]) -> dict[str, Any]:
    return append_latency_with(
        job,
        [json_message(i, job["msg_bytes"]) for i in range(job["count"])],
        DurableStream,
        AsyncDurableStream,
    )


def catchup_read(job: dict[str, Any]) -> dict[str, Any]:
    return catchup_read_with(job, stream, field=FIELD)


def live_tail(job: dict[str, Any]) -> dict[str, Any]:
    live = "sse" if job["scenario"] == "live-sse" else "long-poll"
    msgs = [json_message(i, job["msg_bytes"]) for i in range(job["count"])]
    d = Deliveries(job["count"])

    async def reader() -> None:
        async with await astream(job["stream_url"], offset="-1", live=live) as res:
            async for item in res.iter_json():
                d.deliver(item)
                if d.done:
                    return

    async def run() -> float:
        async with AsyncDurableStream(job["stream_url"], content_type=job["content_type"]) as h:
            start = now()
            read = asyncio.create_task(reader())
            await paced_writer(job, d, lambda i: h.append(msgs[i]))
            await read
            return now() - start

    seconds = asyncio.run(run())
    return {
        "messages": len(d.latencies_us),
        "bytes": len(d.latencies_us) * job["msg_bytes"],
        "seconds": seconds,
        "checksum": d.checksum,
        "latencies_us": d.latencies_us,
    }


def overload(job: dict[str, Any]) -> dict[str, Any]:
    errors: list[DurableStreamError] = []
    p = producer(job, errors)
    sampler = RssSampler()
    start = now()
    rate = max(1.0, job["rate"])
    sent = 0
    while sent < job["count"]:
        due = min(int((now() - start) * rate), job["count"])
        while sent < due:
            # Waits (GIL released) when the buffer is full: the bounded-memory behaviour.
            p.append(json_message(sent, job["msg_bytes"]))
            sent += 1
        time.sleep(0.001)
    offer_seconds = now() - start
    p.flush()
    seconds = now() - start
    sampler.stop()
    p.detach()
    if errors:
        raise errors[0]
    return {
        "messages": job["count"],
        "bytes": job["count"] * job["msg_bytes"],
        "seconds": seconds,
        "rss_samples": sampler.samples,
        "extra": {"offer_seconds": offer_seconds, "offered_rate": job["count"] / offer_seconds},
    }


if __name__ == "__main__":
    main(
        {
            "producer-json": produce,
            "producer-bytes": produce,
            "append-latency": append_latency,
            "catchup-read": catchup_read,
            "live-tail": live_tail,
            "overload": overload,
        }
    )
