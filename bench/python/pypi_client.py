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
from protocol import (
    Deliveries,
    append_latency_with,
    catchup_read_with,
    json_message,
    main,
    now,
    paced_writer,
)


def messages(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(json_message(i, job["msg_bytes"])) for i in range(job["count"])]


def append_latency(job: dict[str, Any]) -> dict[str, Any]:
    return append_latency_with(job, messages(job), DurableStream, AsyncDurableStream)


def catchup_read(job: dict[str, Any]) -> dict[str, Any]:
    return catchup_read_with(job, stream)


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
