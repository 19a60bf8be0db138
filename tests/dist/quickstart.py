"""The Python quick start, run by scripts/test-dist.sh against the installed wheel.

Usage: python quickstart.py BASE_URL. Exits non-zero (an AssertionError) when the data read back
is not the data written.
"""

import asyncio
import sys
import uuid

from durable_streams_client import AsyncDurableStream, DurableStream, IdempotentProducer, stream

base = sys.argv[1]
url = f"{base}/v1/stream/dist-py-{uuid.uuid4().hex}"

with DurableStream(url) as orders:
    assert orders.create(content_type="application/json").created
    orders.append_json({"id": 1})
    with IdempotentProducer(orders, "dist-check", auto_claim=True) as producer:
        receipt = producer.append_json({"id": 2})
        producer.flush()
        assert receipt.result().offset, "the producer's receipt has no offset"
    with stream(url) as resp:
        got = resp.read_json()
    assert got == [{"id": 1}, {"id": 2}], got


async def read_async() -> list[object]:
    async with AsyncDurableStream(url) as s:
        resp = await s.stream()
        return await resp.read_json()


got = asyncio.run(read_async())
assert got == [{"id": 1}, {"id": 2}], got
print("python quick start: ok", got)
