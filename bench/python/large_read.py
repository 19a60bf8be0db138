"""large-read (bench/large-read.sh): reads a JSON stream from the start with the Python
binding, through ``iter_json()`` or ``read_json()`` (limit raised), and prints the messages,
a checksum and the peak RSS as one JSON line."""

from __future__ import annotations

import json
import resource
import sys
import time

from durable_streams_client import stream


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    url, form = sys.argv[1], sys.argv[2]
    before = peak_rss_kib()
    start = time.monotonic()
    count = checksum = 0
    with stream(url, offset="-1", live=False, max_read_bytes=1 << 62) as res:
        items = res.iter_json() if form == "stream" else res.read_json()
        for item in items:
            count += 1
            checksum += item["i"]
    out = {
        "client": "py-binding",
        "form": "iter_json()" if form == "stream" else "read_json()",
        "messages": count,
        "checksum": checksum,
        "seconds": time.monotonic() - start,
        "rss_before_kib": before,
        "peak_rss_kib": peak_rss_kib(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
