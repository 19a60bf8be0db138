"""The Python-side cost of IdempotentProducer.append and append_many, per message.

Not a benchmark contender; run it by hand with the bench venv (or any venv with the package):

    python bench/python/append_cost.py [--n 300000] [--rounds 5] [--only TEXT]
                                       [--url http://127.0.0.1:PORT/v1/stream/x]

Without --url the producer points at a port nothing listens on and never sends (huge linger and
batches, so only append itself is measured; the process exits without flushing). With --url
(the script creates the JSON stream) it uses the benchmark's settings and flushes after each
round, untimed. Prints, per case, the median over the rounds of the calling thread's CPU time
per message (time.thread_time: not the producer's own threads, not other processes) and the
best round, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

from durable_streams_client import DurableStream, IdempotentProducer
from protocol import json_message

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=300_000)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--only", default=None)
ap.add_argument("--url", default=None)
args = ap.parse_args()
N = args.n

url = args.url or "http://127.0.0.1:9/v1/stream/append-cost"
handle = DurableStream(url, content_type="application/json")
if args.url:
    handle.create(content_type="application/json")
settings = (
    {"linger_ms": 5, "max_batch_bytes": 1 << 20, "max_in_flight": 5}
    if args.url
    else {"linger_ms": 10**9, "max_batch_bytes": 1 << 30, "max_in_flight": 5}
)
made = 0


def new_producer() -> IdempotentProducer:
    global made
    made += 1
    return IdempotentProducer(
        handle, f"append-cost-{os.getpid()}-{made}", max_buffered_bytes=1 << 30, **settings
    )


msgs = [json_message(i, 100) for i in range(N)]
raw = [m.encode() for m in msgs]


def each(ms: list[str] | list[bytes]) -> Callable[[IdempotentProducer], None]:
    def run(p: IdempotentProducer) -> None:
        append = p.append
        for m in ms:
            append(m)

    return run


def many(ms: list[str] | list[bytes]) -> Callable[[IdempotentProducer], None]:
    def run(p: IdempotentProducer) -> None:
        p.append_many(ms)

    return run


cases = [
    ("append(str)", each(msgs)),
    ("append(bytes)", each(raw)),
    ("append_many(list of str), per message", many(msgs)),
    ("append_many(list of bytes), per message", many(raw)),
]

results = []
for name, body in cases:
    if args.only and args.only not in name:
        continue
    cpu = []
    for r in range(args.rounds + 1):  # the first round warms up
        p = new_producer()
        c0 = time.thread_time_ns()
        body(p)
        c = (time.thread_time_ns() - c0) / N
        if args.url:
            p.flush()
        if r > 0:
            cpu.append(c)
    row = {"case": name, "cpu_ns": round(statistics.median(cpu)), "cpu_best_ns": round(min(cpu))}
    results.append(row)
    print(f"{name:44} cpu {row['cpu_ns']:5} ns/msg (best {row['cpu_best_ns']})")
print(json.dumps({"n": N, "rounds": args.rounds, "server": args.url, "results": results}))
# Without a server the producers hold every message: exit without flushing them.
os._exit(0)
