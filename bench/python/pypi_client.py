"""Contender "pypi-client": the Python client `durable-streams` 0.1.0 from PyPI.

It has no producer, so it takes part in the append, catch-up and live-tail scenarios only.
It JSON-encodes Python values itself, so messages are passed as dicts (its bytes on the wire
carry `json.dumps` spacing). Protocol: bench/README.md.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from durable_streams import AsyncDurableStream, DurableStream, astream, stream
from protocol import Deliveries, awaited_ops, json_message, main, now, paced_writer


def messages(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(json_message(i, job["msg_bytes"])) for i in range(job["count"])]


def append_latency(job: dict[str, Any]) -> dict[str, Any]:
    msgs = messages(job)
    if job["concurrency"] <= 1:
        # The synchronous handle, one awaited append after the other.
        latencies = []
        with DurableStream(job["stream_url"], content_type=job["content_type"]) as handle:
            start = now()
            for m in msgs:
                t = now()
                handle.append(m)
                latencies.append(round((now() - t) * 1e6))
            seconds = now() - start
    else:

        async def run() -> tuple[list[int], float]:
            async with AsyncDurableStream(
                job["stream_url"], content_type=job["content_type"]
            ) as handle:
                return await awaited_ops(job, lambda i: handle.append(msgs[i]))

        latencies, seconds = asyncio.run(run())
    return {
        "messages": job["count"],
        "bytes": job["count"] * job["msg_bytes"],
        "seconds": seconds,
        "latencies_us": latencies,
    }


def catchup_read(job: dict[str, Any]) -> dict[str, Any]:
    start = now()
    with stream(job["stream_url"], offset="-1", live=False) as res:
        items = res.read_json()
    checksum = sum(it["i"] for it in items)
    seconds = now() - start
    return {
        "messages": len(items),
        "bytes": len(items) * job["msg_bytes"],
        "seconds": seconds,
        "checksum": checksum,
    }


def live_tail(job: dict[str, Any]) -> dict[str, Any]:
    live = "sse" if job["scenario"] == "live-sse" else "long-poll"
    msgs = messages(job)
    d = Deliveries(job["count"])

    async def reader() -> None:
        async with astream(job["stream_url"], offset="-1", live=live) as res:
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


if __name__ == "__main__":
    main(
        {
            "append-latency": append_latency,
            "catchup-read": catchup_read,
            "live-tail": live_tail,
        }
    )
