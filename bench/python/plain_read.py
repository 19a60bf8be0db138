"""Control "py-plain" for catchup-read: the plainest Python reader, network included.

GETs the catch-up with urllib from offset -1 until the server says the reader is up to date and
parses each body with ``json.loads``: no client, no checks beyond the parser's, no retries. The
clock covers the requests, the parse and the checksum, as it does for a client. The reference
for what a Python program gets from the standard library alone.
"""

from __future__ import annotations

from typing import Any

from parse_only import Parsed, fetch_bodies
from protocol import catchup_read_with, main


def catchup_read(job: dict[str, Any]) -> dict[str, Any]:
    return catchup_read_with(job, lambda url, **_options: Parsed(lambda: fetch_bodies(url)))


if __name__ == "__main__":
    main({"catchup-read": catchup_read})
