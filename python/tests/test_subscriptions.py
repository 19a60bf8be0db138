"""Subscriptions against the reference server: management, pull-wake workers (blocking and
asyncio, handler and job-queue forms), webhook verification and callbacks."""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import os
import queue
import select
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import durable_streams_client as ds

_ids = itertools.count()


def prefix(name: str) -> str:
    return f"py-subs-{name}-{os.getpid()}-{next(_ids)}"


@pytest.fixture
def subs(server: str) -> ds.Subscriptions:
    return ds.Subscriptions(f"{server}/v1/stream/")


def json_stream(subs: ds.Subscriptions, path: str) -> ds.DurableStream:
    s = subs.stream(path)
    s.create(content_type="application/json")
    return s


def one_stream_subscription(
    subs: ds.Subscriptions, name: str, lease: int
) -> tuple[str, str, str, ds.DurableStream]:
    """A pull-wake subscription over one new JSON stream: (wake stream, path, id, the stream)."""
    p = prefix(name)
    wake, path = f"{p}/wake", f"{p}/s"
    json_stream(subs, wake)
    s = json_stream(subs, path)
    sid = f"sub-{p}"
    subs.create(sid, wake_stream=wake, streams=[path], lease=lease)
    return wake, path, sid, s


def tail(subs: ds.Subscriptions, path: str) -> str:
    off = subs.stream(path).head().next_offset
    assert off is not None
    return off


def test_config_is_checked_before_any_request(subs: ds.Subscriptions) -> None:
    with pytest.raises(ds.InvalidArgumentError, match="pattern or at least one"):
        subs.create("x", wake_stream="w")
    with pytest.raises(ds.InvalidArgumentError, match="lease"):
        subs.create("x", wake_stream="w", pattern="a/*", lease=0.5)
    with pytest.raises(ds.InvalidArgumentError, match="exactly one"):
        subs.create("x", wake_stream="w", webhook_url="http://127.0.0.1:1/h", pattern="a/*")
    with pytest.raises(ds.InvalidArgumentError, match="root-relative"):
        subs.create("x", wake_stream="w", streams=["/abs"])
    with pytest.raises(TypeError):
        subs.create("x", wake_stream="w", streams="a/b")


def test_three_workers_process_every_message_exactly_once(subs: ds.Subscriptions) -> None:
    p = prefix("race")
    wake = f"{p}/wake"
    json_stream(subs, wake)
    extra = f"{p}/extra/a"
    json_stream(subs, extra)
    sid = f"sub-{p}"
    args: dict[str, Any] = {
        "wake_stream": wake,
        "pattern": f"{p}/events/*",
        "streams": [extra],
        "lease": 3,
        "description": "race test",
    }
    created = subs.create(sid, **args)
    assert created.created
    assert created.subscription.lease_ttl_ms == 3000
    assert created.subscription.kind == "pull-wake"
    assert not subs.create(sid, **args).created
    with pytest.raises(ds.SubscriptionError) as exc:
        subs.create(sid, **{**args, "lease": 4})
    assert exc.value.subscription_code == "SUBSCRIPTION_ALREADY_EXISTS"
    assert exc.value.status == 409

    other = f"{p}/extra/b"
    subs.add_streams(sid, [other])
    assert subs.get(sid).acked_offset(other) is not None
    subs.remove_stream(sid, other)
    assert subs.get(sid).acked_offset(other) is None

    paths = [f"{p}/events/{i}" for i in range(3)]
    for path in paths:
        json_stream(subs, path)
    paths.append(extra)

    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def handler(item: ds.WorkItem) -> None:
        with lock:
            seen.extend((item.stream, m["s"], m["n"]) for m in item.messages)

    stop = threading.Event()
    offsets: list[str | None] = []
    threads = [
        threading.Thread(
            target=lambda w=w: offsets.append(
                subs.worker(sid, f"w{w}", wake).run(handler, stop=stop)
            )
        )
        for w in range(3)
    ]
    for t in threads:
        t.start()
    n_per_stream = 5
    for n in range(n_per_stream):
        for i, path in enumerate(paths):
            subs.stream(path).append_json({"s": i, "n": n})
    total = len(paths) * n_per_stream
    done = False
    for _ in range(200):
        time.sleep(0.1)
        with lock:
            enough = len(seen) >= total
        if enough:
            sub = subs.get(sid)
            if all(sub.acked_offset(path) == tail(subs, path) for path in paths):
                done = True
                break
    stop.set()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()
    assert done, f"not all acked: {subs.get(sid)}"
    assert len(seen) == total, f"duplicates or losses: {seen}"
    want = {(path, i, n) for i, path in enumerate(paths) for n in range(n_per_stream)}
    assert set(seen) == want
    # Each worker returns the wake-stream offset to resume from.
    assert len(offsets) == 3
    assert all(o for o in offsets)
    subs.delete(sid)
    with pytest.raises(ds.SubscriptionError) as exc:
        subs.get(sid)
    assert exc.value.subscription_code == "SUBSCRIPTION_NOT_FOUND"


def test_lost_lease_is_fenced_and_late_ack_advances_nothing(subs: ds.Subscriptions) -> None:
    _wake, path, sid, s = one_stream_subscription(subs, "fence", lease=1)
    before = subs.get(sid).acked_offset(path)
    s.append_json({"n": 1})
    s.append_json({"n": 2})
    end = tail(subs, path)

    first = subs.claim(sid, "slow")
    assert first.streams[0].path == path
    assert first.streams[0].has_pending
    assert "redacted" in repr(first)
    with pytest.raises(ds.AlreadyClaimedError) as claimed:
        subs.claim(sid, "other")
    assert claimed.value.current_holder == "slow"
    time.sleep(1.6)  # no heartbeat: the 1 s lease runs out
    second = subs.claim(sid, "fast")
    assert second.generation > first.generation

    with pytest.raises(ds.FencedError) as fenced:
        subs.ack(first, {path: end}, done=True)
    assert fenced.value.code == "FENCED"
    assert fenced.value.status == 409
    assert subs.get(sid).acked_offset(path) == before

    r = subs.ack(second, {path: end}, done=True)
    assert r.ok
    assert subs.get(sid).acked_offset(path) == end
    with pytest.raises(ds.NoPendingWorkError):
        subs.claim(sid, "fast")


def test_failing_handler_leaves_work_pending_and_it_is_woken_again(
    subs: ds.Subscriptions, server: str
) -> None:
    wake, path, sid, s = one_stream_subscription(subs, "fail", lease=1)
    before = subs.get(sid).acked_offset(path)
    s.append_json({"n": 1})
    end = tail(subs, path)

    async def main() -> list[tuple[str, list[Any]]]:
        asubs = ds.AsyncSubscriptions(f"{server}/v1/stream/")
        calls: list[tuple[str, list[Any]]] = []
        stop = asyncio.Event()

        async def handler(item: ds.WorkItem) -> None:
            calls.append((item.offset, item.messages))
            if len(calls) == 1:
                # Nothing is acked: the wake is released and woken again.
                assert (await asubs.get(sid)).acked_offset(path) == before
                raise RuntimeError("boom")
            # Past the 1 s lease: heartbeats keep it.
            await asyncio.sleep(1.5)
            stop.set()

        worker = asubs.worker(sid, "w", wake)
        offset = await asyncio.wait_for(worker.run(handler, stop=stop), timeout=20)
        assert offset
        return calls

    calls = asyncio.run(main())
    assert calls == [(end, [{"n": 1}]), (end, [{"n": 1}])]
    for _ in range(50):
        if subs.get(sid).acked_offset(path) == end:
            break
        time.sleep(0.1)
    assert subs.get(sid).acked_offset(path) == end


def test_job_queue_form_and_graceful_stop_releases(subs: ds.Subscriptions) -> None:
    wake, path, sid, s = one_stream_subscription(subs, "jobs", lease=5)
    s.append_json({"n": 1})
    end = tail(subs, path)
    with subs.worker(sid, "q", wake).jobs() as jobs:
        job = jobs.next(timeout=10)
        assert job is not None
        assert (job.item.stream, job.item.offset, job.item.messages) == (path, end, [{"n": 1}])
        # Left unanswered: stopping the queue releases the wake without acking.
    assert jobs.offset is not None
    assert subs.get(sid).acked_offset(path) != end
    # Released, so another worker can claim it at once (the lease is 5 s).
    again = subs.claim(sid, "next")
    subs.ack(again, {path: end}, done=True)
    assert subs.get(sid).acked_offset(path) == end

    s.append_json({"n": 2})
    with subs.worker(sid, "q", wake).jobs() as jobs:
        for job in jobs:
            assert job.item.messages == [{"n": 2}]
            job.ack()
            break
        end2 = tail(subs, path)
        for _ in range(50):
            if subs.get(sid).acked_offset(path) == end2:
                break
            time.sleep(0.1)
    assert subs.get(sid).acked_offset(path) == end2


def test_job_messages_are_what_the_server_sent(subs: ds.Subscriptions) -> None:
    # Keys keep their order and values are json.loads's of the server's text (the core once
    # parsed them into maps that sorted keys).
    wake, _path, sid, s = one_stream_subscription(subs, "exact", lease=5)
    for m in ['{"b": 1, "a": {"z": null, "y": [2.5, "\\u00e9"]}}', "12.50", '"x"']:
        s.append(m)
    sent = s.stream().read_text()
    with subs.worker(sid, "q", wake).jobs() as jobs:
        job = jobs.next(timeout=10)
        assert job is not None
        assert job.item.messages == json.loads(sent)
        assert list(job.item.messages[0]) == ["b", "a"]
        assert list(job.item.messages[0]["a"]) == ["z", "y"]
        assert job.item.messages[0]["a"]["y"] == [2.5, "\u00e9"]
        job.ack()


class _Receiver:
    """A webhook receiver on 127.0.0.1 that verifies each delivery as an application would."""

    def __init__(self, verifier: ds.WebhookVerifier) -> None:
        self.verifier = verifier
        self.answer = ds.WEBHOOK_DONE
        self.deliveries: queue.Queue[tuple[str | None, bytes, ds.Wake | Exception]] = queue.Queue()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    result: ds.Wake | Exception = outer.verifier.verify(self.headers, body)
                except ds.InvalidSignatureError as e:
                    result = e
                outer.deliveries.put((self.headers.get("Webhook-Signature"), body, result))
                answer = outer.answer if isinstance(result, ds.Wake) else b""
                self.send_response(200 if isinstance(result, ds.Wake) else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> tuple[str | None, bytes, ds.Wake]:
        sig, body, result = self.deliveries.get(timeout=10)
        assert isinstance(result, ds.Wake), result
        return sig, body, result

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver(subs: ds.Subscriptions) -> Iterator[_Receiver]:
    r = _Receiver(ds.WebhookVerifier(subs.jwks_url))
    yield r
    r.close()


def test_webhooks_verified_done_and_callback(subs: ds.Subscriptions, receiver: _Receiver) -> None:
    p = prefix("hook")
    path = f"{p}/wh/a"
    s = json_stream(subs, path)
    sid = f"sub-{p}"
    sub = subs.create(sid, webhook_url=receiver.url, pattern=f"{p}/wh/*", lease=5).subscription
    assert sub.kind == "webhook"
    assert sub.webhook_url == receiver.url
    assert sub.signing is not None
    assert sub.signing.jwks_url == subs.jwks_url

    # Synchronous done: the receiver answers WEBHOOK_DONE.
    s.append_json({"n": 1})
    _, _, wake = receiver.next()
    end1 = tail(subs, path)
    assert wake.subscription_id == sid
    assert (wake.streams[0].path, wake.streams[0].tail_offset) == (path, end1)
    for _ in range(50):
        if subs.get(sid).acked_offset(path) == end1:
            break
        time.sleep(0.1)
    assert subs.get(sid).acked_offset(path) == end1

    # Asynchronous: answer {} now, call back later.
    receiver.answer = b"{}"
    s.append_json({"n": 2})
    sig, body, wake = receiver.next()
    assert wake.callback_url is not None
    end2 = tail(subs, path)
    r = subs.callback(wake, {path: end2}, done=True)
    assert r.ok
    assert not r.next_wake
    assert subs.get(sid).acked_offset(path) == end2
    with pytest.raises(ds.FencedError):
        subs.callback(wake, {path: end2}, done=True)

    # The asyncio verifier agrees.
    async def averify() -> ds.Wake:
        return await ds.AsyncWebhookVerifier(subs.jwks_url).verify(
            {"webhook-signature": sig or ""}, body
        )

    assert asyncio.run(averify()).wake_id == wake.wake_id

    # Rejections, each naming its check.
    v = receiver.verifier
    headers = {"Webhook-Signature": sig or ""}

    def check(h: dict[str, str], b: bytes, now: float | None = None) -> str:
        with pytest.raises(ds.InvalidSignatureError) as e:
            v.verify(h, b, now=now)
        assert e.value.code == "INVALID_SIGNATURE"
        return e.value.check

    tampered = body.replace(b'"generation":', b'"generation": ', 1)
    assert tampered != body
    assert check(headers, tampered) == "bad_signature"
    assert check(headers, body, now=time.time() + 600) == "timestamp_out_of_window"
    assert sig is not None
    kid = next(part[4:] for part in sig.split(",") if part.startswith("kid="))
    assert check({"Webhook-Signature": sig.replace(kid, "ds_unknown")}, body) == "unknown_key"
    assert check({}, body) == "missing_header"
    assert check({"Webhook-Signature": "t=1"}, body) == "malformed_header"
    subs.delete(sid)


def test_a_time_past_what_the_system_time_holds_is_an_invalid_argument() -> None:
    # ``now`` of 1e19 s made the extension panic (adding it to the epoch overflowed). The check
    # comes before any request, so no server is needed.
    url = "http://127.0.0.1:9/v1/stream/__ds/jwks.json"
    headers = {"Webhook-Signature": "t=1,kid=k,ed25519=x"}
    with pytest.raises(ds.InvalidArgumentError, match="past what the system time holds"):
        ds.WebhookVerifier(url).verify(headers, b"{}", now=1e19)

    async def averify() -> ds.Wake:
        return await ds.AsyncWebhookVerifier(url).verify(headers, b"{}", now=1e19)

    with pytest.raises(ds.InvalidArgumentError, match="past what the system time holds"):
        asyncio.run(averify())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_handles_work_after_fork(subs: ds.Subscriptions) -> None:
    # Used before the fork, so the parent's runtime, connection pool and key cache exist.
    p = prefix("fork")
    json_stream(subs, f"{p}/wake")
    subs.create(f"sub-{p}", wake_stream=f"{p}/wake", pattern=f"{p}/*")
    verifier = ds.WebhookVerifier(subs.jwks_url)
    with pytest.raises(ds.InvalidSignatureError):
        verifier.verify(
            {"Webhook-Signature": f"t={int(time.time())},kid=x,ed25519={'A' * 86}"}, b"{}"
        )
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = b"ok"
        try:
            assert subs.get(f"sub-{p}").wake_stream == f"{p}/wake"
            try:
                sig = f"t={int(time.time())},kid=ds_unknown,ed25519={'A' * 86}"
                verifier.verify({"Webhook-Signature": sig}, b"{}")
                status = b"verified"
            except ds.InvalidSignatureError as e:
                if e.check != "unknown_key":
                    status = e.check.encode()
        except BaseException as e:
            status = repr(e).encode()
        os.write(write_fd, status)
        os._exit(0)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 20)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        report = os.read(read_fd, 4096) if ready else b"child timed out"
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    assert report == b"ok"
    subs.delete(f"sub-{p}")
