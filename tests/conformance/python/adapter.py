"""Conformance adapter: reads one JSON command per line on stdin, drives the public API of the
Python package durable_streams_client (blocking flavour), and writes one JSON result per line
on stdout. Logs go to stderr.

It translates only: validation, retries, parsing and batching are the library's. The semantics
follow the Rust adapter (tests/conformance/rust/src/main.rs).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import durable_streams_client as ds
from durable_streams_client import (
    BadRequestError,
    ConflictError,
    DurableStream,
    DurableStreamError,
    IdempotentProducer,
    InvalidArgumentError,
    NetworkError,
    ParseError,
    ProducerSessionConflictError,
    RetryPolicy,
    SeqConflictError,
    SequenceGapError,
    StaleEpochError,
    StreamClosedError,
    StreamNotFoundError,
    StreamTimeoutError,
)

Obj = dict[str, Any]


class Failure(Exception):
    """An adapter-side failure with an explicit protocol code."""

    def __init__(self, message: str, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.code = code


def non_negative(cmd: Obj, key: str) -> int | None:
    v = cmd.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise InvalidArgumentError(f"{key} must be a non-negative integer, got {v}")
    return v


class Dynamic:
    """A header or parameter computed for every request; remembers the last value sent."""

    def __init__(self, compute: Callable[[], str]) -> None:
        self._compute = compute
        self.last: str | None = None

    def __call__(self) -> str:
        v = self._compute()
        self.last = v
        return v


def counter() -> Callable[[], str]:
    n = 0

    def f() -> str:
        nonlocal n
        n += 1
        return str(n)

    return f


class Adapter:
    def __init__(self) -> None:
        self.server_url = ""
        self.client = ds.Client()
        self.content_types: dict[str, str] = {}
        self.producers: dict[tuple[str, str, int], IdempotentProducer] = {}
        self.dyn_headers: dict[str, Dynamic] = {}
        self.dyn_params: dict[str, Dynamic] = {}

    # -- helpers --------------------------------------------------------------------------

    def url(self, cmd: Obj) -> tuple[str, str]:
        path = cmd.get("path")
        if not isinstance(path, str):
            raise Failure("missing path")
        return path, self.server_url + path

    @staticmethod
    def cmd_headers(cmd: Obj) -> dict[str, str]:
        h = cmd.get("headers") or {}
        return {k: v for k, v in h.items() if isinstance(v, str)}

    def handle(self, url: str, path: str, dynamic: bool = False, **kw: Any) -> DurableStream:
        return DurableStream(
            url,
            client=self.client,
            content_type=self.content_types.get(path),
            headers=dict(self.dyn_headers) if dynamic else None,
            params=dict(self.dyn_params) if dynamic else None,
            **kw,
        )

    def sent(self, cmd: Obj, out: Obj) -> None:
        headers: Obj = {n: d.last for n, d in self.dyn_headers.items() if d.last is not None}
        headers.update(cmd.get("headers") or {})
        params: Obj = {n: d.last for n, d in self.dyn_params.items() if d.last is not None}
        if headers:
            out["headersSent"] = headers
        if params:
            out["paramsSent"] = params

    # -- commands ---------------------------------------------------------------------------

    def init(self, cmd: Obj) -> Obj:
        self.server_url = str(cmd.get("serverUrl", "")).rstrip("/")
        if not self.server_url:
            raise Failure("missing serverUrl")
        self.content_types.clear()
        self.producers.clear()
        self.dyn_headers.clear()
        self.dyn_params.clear()
        return {
            "clientName": "durable-streams-client (python)",
            "clientVersion": ds.__version__,
            "features": {
                "batching": True,
                "sse": True,
                "longPoll": True,
                "auto": True,
                "streaming": True,
                "dynamicHeaders": True,
                "retryOptions": True,
                "batchItems": True,
                "strictZeroValidation": True,
            },
        }

    def create(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        ct = cmd.get("contentType") or "application/octet-stream"
        r = self.handle(url, path).create(
            content_type=ct,
            ttl_seconds=cmd.get("ttlSeconds"),
            expires_at=cmd.get("expiresAt"),
            closed=bool(cmd.get("closed", False)),
            body=cmd.get("data"),
            headers=self.cmd_headers(cmd),
        )
        self.content_types[path] = r.content_type or ct
        out: Obj = {"status": 201 if r.created else 200}
        if r.next_offset is not None:
            out["offset"] = r.next_offset
        return out

    def connect(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        h = DurableStream(url, client=self.client, headers=self.cmd_headers(cmd)).head()
        if h.content_type:
            self.content_types[path] = h.content_type
        out: Obj = {"status": 200}
        if h.next_offset is not None:
            out["offset"] = h.next_offset
        return out

    def append(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        data = cmd.get("data") or ""
        if cmd.get("binary"):
            try:
                body: str | bytes = base64.b64decode(data, validate=True)
            except ValueError as e:
                raise Failure(f"binary data is not base64: {e}") from None
        else:
            body = data
        # Plain appends opt into retries, as the reference client retries them.
        s = self.handle(url, path, dynamic=True, append_retry=RetryPolicy(max_retries=10))
        seq = cmd.get("seq")
        r = s.append(
            body,
            seq=None if seq is None else str(seq),
            headers=self.cmd_headers(cmd),
        )
        if s.content_type:
            self.content_types[path] = s.content_type
        out: Obj = {"status": 200}
        if r.next_offset is not None:
            out["offset"] = r.next_offset
        self.sent(cmd, out)
        return out

    def head(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        h = DurableStream(url, client=self.client, headers=self.cmd_headers(cmd)).head()
        if h.content_type:
            self.content_types[path] = h.content_type
        out: Obj = {"status": 200, "streamClosed": h.closed}
        if h.next_offset is not None:
            out["offset"] = h.next_offset
        if h.content_type is not None:
            out["contentType"] = h.content_type
        if h.ttl_seconds is not None:
            out["ttlSeconds"] = h.ttl_seconds
        if h.expires_at is not None:
            out["expiresAt"] = h.expires_at
        return out

    def delete(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        DurableStream(url, client=self.client, headers=self.cmd_headers(cmd)).delete()
        self.content_types.pop(path, None)
        return {"status": 200}

    def close(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        r = self.handle(url, path).close(
            cmd.get("data"),
            content_type=cmd.get("contentType"),
            headers=self.cmd_headers(cmd),
        )
        out: Obj = {"status": 200}
        if r.final_offset is not None:
            out["finalOffset"] = r.final_offset
        return out

    def read(self, cmd: Obj) -> Obj:
        path, url = self.url(cmd)
        live_cmd = cmd.get("live")
        if live_cmd in (None, False):
            live: ds.Live = False
        elif live_cmd is True:
            live = "auto"
        elif live_cmd in ("long-poll", "sse"):
            live = live_cmd
        else:
            raise Failure(f"unknown live mode {live_cmd!r}")
        timeout = (cmd.get("timeoutMs") or 5000) / 1000.0
        max_chunks = cmd.get("maxChunks") or 100
        wait_up_to_date = bool(cmd.get("waitForUpToDate", False))
        deadline = time.monotonic() + timeout
        s = self.handle(url, path, dynamic=True)
        # The library retries reads without limit by default; the suite expects a read to
        # give up once transient errors persist.
        resp = s.stream(
            offset=cmd.get("offset") or "-1",
            live=live,
            retry=RetryPolicy(max_retries=10),
            headers=self.cmd_headers(cmd),
        )
        if resp.content_type:
            self.content_types[path] = resp.content_type
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            resp.close()

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        timer.daemon = True
        timer.start()
        chunks: list[Obj] = []
        try:
            batches = resp.iter_json_batches() if resp.is_json else resp.iter_batches()
            for b in batches:
                if b.data:
                    c: Obj = {"offset": b.offset}
                    if isinstance(b.data, list):
                        c["data"] = json.dumps(b.data, separators=(",", ":"), ensure_ascii=False)
                    else:
                        try:
                            c["data"] = b.data.decode("utf-8")
                        except UnicodeDecodeError:
                            c["data"] = base64.b64encode(b.data).decode()
                            c["binary"] = True
                    chunks.append(c)
                if (
                    b.stream_closed
                    or len(chunks) >= max_chunks
                    or (wait_up_to_date and b.up_to_date)
                ):
                    break
        finally:
            timer.cancel()
            resp.close()
        expired = timed_out.is_set()
        status = 204 if expired and not chunks and live is not False else 200
        out: Obj = {
            "status": status,
            "chunks": chunks,
            "offset": resp.offset,
            "upToDate": resp.up_to_date or expired,
            "streamClosed": resp.stream_closed,
        }
        if resp.cursor is not None:
            out["cursor"] = resp.cursor
        self.sent(cmd, out)
        return out

    def producer(self, cmd: Obj, **kw: Any) -> IdempotentProducer:
        path, url = self.url(cmd)
        return IdempotentProducer(
            self.handle(url, path),
            cmd.get("producerId") or "",
            epoch=non_negative(cmd, "epoch") or 0,
            auto_claim=bool(cmd.get("autoClaim", False)),
            headers=self.cmd_headers(cmd),
            **kw,
        )

    def cached_producer(self, cmd: Obj) -> IdempotentProducer:
        """Cached per (path, id, epoch), with no linger and one request in flight."""
        path, _ = self.url(cmd)
        key = (path, cmd.get("producerId") or "", non_negative(cmd, "epoch") or 0)
        p = self.producers.get(key)
        if p is None:
            p = self.producer(cmd, linger_ms=0, max_in_flight=1)
            self.producers[key] = p
        return p

    def idempotent_append(self, cmd: Obj) -> Obj:
        p = self.cached_producer(cmd)
        receipt = p.append(cmd.get("data") or "")
        p.flush()
        d = receipt.result()
        out: Obj = {
            "status": 204 if d.duplicate else 200,
            "duplicate": d.duplicate,
            "producerEpoch": d.epoch,
            "producerSeq": d.seq,
        }
        if d.offset is not None:
            out["offset"] = d.offset
        return out

    def idempotent_append_batch(self, cmd: Obj) -> Obj:
        in_flight = max(non_negative(cmd, "maxInFlight") or 1, 1)
        # Several in flight: many small concurrent batches; otherwise one batch.
        if in_flight > 1:
            p = self.producer(cmd, max_in_flight=in_flight, max_batch_bytes=1, linger_ms=0)
        else:
            p = self.producer(cmd, linger_ms=1000)
        items = cmd.get("items")
        if not isinstance(items, list):
            raise Failure("missing items")
        for item in items:
            p.append(item if isinstance(item, str) else json.dumps(item))
        flushed: BaseException | None = None
        try:
            p.flush()
        except DurableStreamError as e:
            flushed = e
        p.detach()
        if flushed is not None:
            raise flushed
        return {"status": 200}

    def idempotent_close(self, cmd: Obj) -> Obj:
        offset = self.cached_producer(cmd).close(cmd.get("data"))
        out: Obj = {"status": 200}
        if offset is not None:
            out["finalOffset"] = offset
        return out

    def idempotent_detach(self, cmd: Obj) -> Obj:
        self.cached_producer(cmd).detach()
        path, _ = self.url(cmd)
        key = (path, cmd.get("producerId") or "", non_negative(cmd, "epoch") or 0)
        self.producers.pop(key, None)
        return {"status": 200}

    def set_dynamic(self, cmd: Obj, header: bool) -> Obj:
        name = cmd.get("name")
        if not isinstance(name, str):
            raise Failure("missing name")
        kind = cmd.get("valueType")
        if kind == "counter":
            compute = counter()
        elif kind == "timestamp":

            def compute() -> str:
                return str(int(time.time() * 1000))

        elif kind == "token":
            token = str(cmd.get("initialValue") or "")

            def compute() -> str:
                return token

        else:
            raise Failure(f"unknown valueType {kind!r}")
        (self.dyn_headers if header else self.dyn_params)[name] = Dynamic(compute)
        return {}

    def validate(self, cmd: Obj) -> Obj:
        target = cmd.get("target")
        if not isinstance(target, dict):
            raise Failure("missing target")
        kind = target.get("target")
        url = self.server_url + "/validate"
        if kind == "retry-options":
            d = RetryPolicy()
            policy = RetryPolicy(
                initial_delay=target.get("initialDelayMs", d.initial_delay * 1000) / 1000,
                max_delay=target.get("maxDelayMs", d.max_delay * 1000) / 1000,
                multiplier=target.get("multiplier", d.multiplier),
                max_retries=target.get("maxRetries"),
            )
            DurableStream(url, client=self.client, retry=policy)  # the library validates
            return {}
        if kind == "idempotent-producer":
            # Negative numbers are refused here; every other rule is the library's.
            epoch = non_negative(target, "epoch") or 0
            kw: Obj = {}
            n = non_negative(target, "maxBatchBytes")
            if n is not None:
                kw["max_batch_bytes"] = n
            n = non_negative(target, "maxBatchItems")
            if n is not None:
                kw["max_batch_messages"] = n
            s = DurableStream(url, client=self.client)
            IdempotentProducer(s, target.get("producerId", "validate"), epoch=epoch, **kw).detach()
            return {}
        raise Failure(f"unsupported validation target {kind!r}", "NOT_SUPPORTED")

    def benchmark(self, cmd: Obj) -> Obj:
        op = cmd.get("operation")
        if not isinstance(op, dict):
            raise Failure("missing operation")
        path, url = self.url(op)
        metrics: Obj = {}
        kind = op.get("op")
        if kind == "create":
            h = self.handle(url, path)
            started = time.perf_counter_ns()
            h.create(content_type=op.get("contentType") or "application/octet-stream")
        elif kind == "append":
            size = op.get("size", 100)
            h = self.handle(url, path)
            if h.content_type is None:
                h.head()
            body = b"x" * size
            started = time.perf_counter_ns()
            h.append(body)
            metrics["bytesTransferred"] = size
        elif kind == "read":
            h = self.handle(url, path)
            started = time.perf_counter_ns()
            data = h.stream(offset=op.get("offset") or "-1").read_bytes()
            metrics["bytesTransferred"] = len(data)
        elif kind == "roundtrip":
            size = op.get("size", 100)
            ct = op.get("contentType") or "application/octet-stream"
            live: ds.Live = "sse" if op.get("live") == "sse" else "long-poll"
            if "json" in ct.lower():
                n = max(size, 2)
                payload = b'"' + b"x" * (n - 2) + b'"'
            else:
                payload = b"*" * size
            h = self.handle(url, path)
            started = time.perf_counter_ns()
            h.create(content_type=ct)
            resp = h.stream(live=live)
            received: list[int] = []
            errors: list[BaseException] = []

            def reader() -> None:
                try:
                    for b in resp.iter_batches():
                        if b.data:
                            received.append(len(b.data))
                            return
                except BaseException as e:  # noqa: BLE001 - reported by the caller
                    errors.append(e)

            t = threading.Thread(target=reader)
            t.start()
            h.append(payload)
            t.join()
            resp.close()
            if errors:
                raise errors[0]
            metrics["bytesTransferred"] = size + (received[0] if received else 0)
        elif kind == "throughput_append":
            count = op.get("count", 0)
            size = op.get("size", 100)
            ct = self.content_types.get(path, "application/octet-stream")
            h = self.handle(url, path)
            h.create(content_type=ct)
            payload = b"*" * size
            started = time.perf_counter_ns()
            p = IdempotentProducer(h, "bench-producer", linger_ms=0)
            for _ in range(count):
                p.append(payload)
            p.flush()
            p.detach()
            metrics["bytesTransferred"] = count * size
            metrics["messagesProcessed"] = count
        elif kind == "throughput_read":
            h = self.handle(url, path)
            started = time.perf_counter_ns()
            count = nbytes = 0
            for b in h.stream().iter_json_batches():
                for item in b.data:
                    count += 1
                    nbytes += len(json.dumps(item, separators=(",", ":")))
            metrics["bytesTransferred"] = nbytes
            metrics["messagesProcessed"] = count
        else:
            raise Failure(f"unsupported benchmark operation {kind!r}", "NOT_SUPPORTED")
        out: Obj = {
            "iterationId": cmd.get("iterationId"),
            "durationNs": str(time.perf_counter_ns() - started),
        }
        if metrics:
            out["metrics"] = metrics
        return out

    def dispatch(self, kind: str, cmd: Obj) -> Obj:
        simple: dict[str, Callable[[Obj], Obj]] = {
            "init": self.init,
            "create": self.create,
            "connect": self.connect,
            "append": self.append,
            "head": self.head,
            "delete": self.delete,
            "close": self.close,
            "read": self.read,
            "idempotent-append": self.idempotent_append,
            "idempotent-append-batch": self.idempotent_append_batch,
            "idempotent-close": self.idempotent_close,
            "idempotent-detach": self.idempotent_detach,
            "validate": self.validate,
            "benchmark": self.benchmark,
        }
        if kind in simple:
            return simple[kind](cmd)
        if kind == "set-dynamic-header":
            return self.set_dynamic(cmd, True)
        if kind == "set-dynamic-param":
            return self.set_dynamic(cmd, False)
        if kind == "clear-dynamic":
            self.dyn_headers.clear()
            self.dyn_params.clear()
            return {}
        raise Failure(f"unsupported command {kind!r}", "NOT_SUPPORTED")


def error_code(kind: str, e: BaseException) -> str:
    if isinstance(e, Failure):
        return e.code
    for cls, code in (
        (StreamNotFoundError, "NOT_FOUND"),
        (SeqConflictError, "SEQUENCE_CONFLICT"),
        (StreamClosedError, "STREAM_CLOSED"),
        (ConflictError, "CONFLICT"),
        (ParseError, "PARSE_ERROR"),
        (InvalidArgumentError, "INVALID_ARGUMENT"),
        (NetworkError, "NETWORK_ERROR"),
        (StreamTimeoutError, "TIMEOUT"),
        (StaleEpochError, "STALE_EPOCH"),
        (SequenceGapError, "SEQUENCE_GAP"),
        (ProducerSessionConflictError, "PRODUCER_SESSION_CONFLICT"),
    ):
        if isinstance(e, cls):
            return code
    if isinstance(e, BadRequestError) and kind == "read":
        return "INVALID_OFFSET"
    if isinstance(e, (TypeError, ValueError, OverflowError)):
        return "INVALID_ARGUMENT"
    return "UNEXPECTED_STATUS"


def error_result(kind: str, e: BaseException) -> Obj:
    out: Obj = {
        "type": "error",
        "success": False,
        "commandType": kind,
        "errorCode": error_code(kind, e),
        "message": str(e),
    }
    status = getattr(e, "status", None)
    if status is not None:
        out["status"] = status
    details: Obj = {}
    if isinstance(e, StaleEpochError):
        details["currentEpoch"] = e.current_epoch
    elif isinstance(e, SequenceGapError):
        details["expectedSeq"] = e.expected_seq
        details["receivedSeq"] = e.received_seq
    elif isinstance(e, StreamClosedError) and e.final_offset is not None:
        details["finalOffset"] = e.final_offset
    if details:
        out["details"] = details
    return out


def main() -> None:
    adapter = Adapter()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        kind = "unknown"
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise Failure(f"not a JSON object: {line}")
            kind = str(cmd.get("type", ""))
            if kind == "shutdown":
                out.write(json.dumps({"type": "shutdown", "success": True}) + "\n")
                out.flush()
                return
            result = adapter.dispatch(kind, cmd)
            result["type"] = kind
            result["success"] = True
        except Exception as e:  # noqa: BLE001 - every failure becomes an error result
            print(f"[adapter] {kind} failed: {e!r}", file=sys.stderr)
            result = error_result(kind, e)
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
