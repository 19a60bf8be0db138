"""Fixtures: one real test server per session (tests/server/start.mjs), fresh stream URLs,
and helpers that talk to the server without the client (fault injection, raw reads)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count()


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The base URL of a reference server that lives as long as the test session.

    The launcher stops when its stdin closes, so it cannot outlive this process."""
    subprocess.run(["bash", str(ROOT / "tests/server/ensure.sh")], check=True)
    log = None if os.environ.get("DS_TEST_SERVER_LOG") else subprocess.DEVNULL
    proc = subprocess.Popen(
        # --webhooks: test_subscriptions.py needs webhook subscriptions.
        ["node", str(ROOT / "tests/server/start.mjs"), "--long-poll-ms", "1500", "--webhooks"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    url = proc.stdout.readline().decode().strip()
    assert url.startswith("http://127.0.0.1:"), f"bad server URL line {url!r}"
    try:
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def url(server: str, request: pytest.FixtureRequest) -> str:
    """A stream URL that no other test uses."""
    return new_url(server, request.node.name)


def new_url(server: str, name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:60]
    return f"{server}/v1/stream/{slug}-{os.getpid()}-{next(_names)}"


def inject(stream_url: str, **fault: Any) -> None:
    """Arms a fault for the stream's path (see /_test/inject-error in tests/server)."""
    parts = urlsplit(stream_url)
    body = json.dumps({"path": parts.path, **fault}).encode()
    req = urllib.request.Request(
        f"{parts.scheme}://{parts.netloc}/_test/inject-error",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def raw_read(stream_url: str) -> bytes:
    """The whole stream, read with a plain GET (independent of the client)."""
    with urllib.request.urlopen(f"{stream_url}?offset=-1", timeout=10) as resp:
        data: bytes = resp.read()
        return data


def raw_json(stream_url: str) -> Any:
    return json.loads(raw_read(stream_url))


@pytest.fixture(autouse=True)
def _python_handles_sigint() -> Iterator[None]:
    """Ctrl-C tests need Python's own SIGINT handler. A process started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python then installs no handler (so
    ``_thread.interrupt_main`` does nothing and a test waiting for the interrupt would hang)."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
