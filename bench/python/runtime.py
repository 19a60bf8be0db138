"""Contender "py-runtime" (a control, overload only): the py-binding contender's paced loop with
no client at all.

It builds every message at the offered rate and drops it, so its RSS growth is what CPython
itself adds under this loop, which the py-binding's growth includes. Writes nothing to the
stream. Protocol: bench/README.md.
"""

from __future__ import annotations

import time
from typing import Any

from protocol import RssSampler, json_message, main, now


def overload(job: dict[str, Any]) -> dict[str, Any]:
    sampler = RssSampler()
    start = now()
    rate = max(1.0, job["rate"])
    sent = 0
    # Kept so that building the messages is real work.
    chars = 0
    while sent < job["count"]:
        due = min(int((now() - start) * rate), job["count"])
        while sent < due:
            chars += len(json_message(sent, job["msg_bytes"]))
            sent += 1
        time.sleep(0.001)
    seconds = now() - start
    sampler.stop()
    return {
        "messages": job["count"],
        "bytes": chars,
        "seconds": seconds,
        "rss_samples": sampler.samples,
        "extra": {"offer_seconds": seconds, "offered_rate": job["count"] / seconds},
    }


if __name__ == "__main__":
    main({"overload": overload})
