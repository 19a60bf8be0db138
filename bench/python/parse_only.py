"""Control "py-parse" for catchup-read: what CPython's own JSON parser does with the catch-up.

Fetches every response body of the catch-up with urllib and decodes it to ``str`` before the
clock starts; the clock covers only ``json.loads`` of each text and the checksum. That is the
parse a plain Python reader does, without its network time: the reference for how close a
Python client's read can come to the cost of building the Python objects.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any, Self

from protocol import catchup_read_with, main


def fetch_bodies(url: str) -> list[str]:
    """GET from offset -1 until the server says the reader is up to date."""
    texts: list[str] = []
    offset = "-1"
    while True:
        with urllib.request.urlopen(f"{url}?offset={offset}", timeout=120) as res:
            texts.append(res.read().decode("utf-8"))
            offset = res.headers["Stream-Next-Offset"]
            up_to_date = res.headers.get("Stream-Up-To-Date") == "true"
        if up_to_date or not offset:
            return texts


class Parsed:
    """Stands in for a client's response: ``read_json`` parses the texts ``texts`` gives
    (fetched before the clock here; fetched inside it by the plain reader, plain_read.py)."""

    def __init__(self, texts: Callable[[], list[str]]) -> None:
        self.texts = texts

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def read_json(self) -> list[Any]:
        items: list[Any] = []
        for text in self.texts():
            items.extend(json.loads(text))
        return items


def catchup_read(job: dict[str, Any]) -> dict[str, Any]:
    texts = fetch_bodies(job["stream_url"])
    return catchup_read_with(job, lambda _url, **_options: Parsed(lambda: texts))


if __name__ == "__main__":
    main({"catchup-read": catchup_read})
