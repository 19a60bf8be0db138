// appendStream(): the source goes out as one streamed request body, with bounded memory, and
// a failure (of the source, the server or the connection) ends it without storing a part.
import { DurableStream, FetchBackoffAbortError, FetchError } from "durable-streams-client";

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { test } from "node:test";
import { injectError, useServer } from "./server.mjs";

const server = useServer();

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Chunk `i` of a generated source: 64 KiB whose bytes depend on `i` and the position. */
function chunk(i, into = new Uint8Array(CHUNK)) {
  for (let j = 0; j < CHUNK; j += 4) {
    into[j] = i & 0xff;
    into[j + 1] = (i >> 8) & 0xff;
    into[j + 2] = j & 0xff;
    into[j + 3] = (j >> 8) & 0xff;
  }
  return into;
}

/** A lazily generated source of `total` bytes, hashing what it hands out. */
function source(total, onPull = () => {}, pool = undefined) {
  const state = { hash: createHash("sha256"), yielded: 0, pulls: 0 };
  async function* gen() {
    for (let i = 0; state.yielded < total; i++) {
      onPull(state);
      // With a pool, a chunk's buffer is filled again two pulls later (as a file reader
      // reusing its buffers does): it must have been taken by then.
      const c = chunk(i, pool?.[i % pool.length]);
      state.hash.update(c);
      state.yielded += c.byteLength;
      state.pulls++;
      yield c;
    }
  }
  return { state, gen: gen() };
}

async function readBack(url) {
  const hash = createHash("sha256");
  let n = 0;
  const res = await DurableStream.connect({ url }).then((h) => h.stream({ live: false }));
  for await (const c of res.bodyStream()) {
    hash.update(c);
    n += c.byteLength;
  }
  return { n, sha: hash.digest("hex") };
}

test("a 64 MiB source generated lazily arrives intact, and memory does not grow with it", async () => {
  const url = server.streamUrl("append-stream-big");
  const h = await DurableStream.create({ url, contentType: "application/octet-stream" });
  // Warm up (threads, connection pool), so the measure below is the streaming's.
  await h.appendStream(source(MiB).gen);
  const warm = await readBack(url);
  const rss0 = process.memoryUsage().rss;
  let peak = 0;
  // Two buffers filled in turn: no garbage on the JavaScript side, so RSS shows what the
  // addon holds. Holding the source (as the buffering version did) takes 64 MiB at least.
  const pool = [new Uint8Array(CHUNK), new Uint8Array(CHUNK)];
  const { state, gen } = source(64 * MiB, () => {
    peak = Math.max(peak, process.memoryUsage().rss - rss0);
  }, pool);
  const r = await h.appendStream(gen);
  assert.ok(r.offset, "an offset after the append");
  assert.equal(state.yielded, 64 * MiB);
  assert.ok(peak < 24 * MiB, `RSS grew by ${(peak / MiB).toFixed(1)} MiB while sending 64 MiB`);
  const back = await readBack(url);
  assert.equal(back.n, 65 * MiB);
  const expected = createHash("sha256");
  for (let i = 0; i < 16; i++) expected.update(chunk(i));
  for (let i = 0; i < 1024; i++) expected.update(chunk(i));
  assert.equal(back.sha, expected.digest("hex"));
  assert.equal(warm.n, MiB);
});

test("the source is read only as fast as the server takes the body (backpressure)", async () => {
  // A server that does not read the request body until released, then counts what arrives.
  let received = 0;
  let release;
  const released = new Promise((r) => (release = r));
  const got = createHash("sha256");
  const slow = createServer(async (req, res) => {
    req.pause();
    await released;
    req.on("data", (d) => {
      received += d.length;
      got.update(d);
    });
    req.on("end", () => {
      res.writeHead(204, { "Stream-Next-Offset": "0000000000000000_0000000000000001" });
      res.end();
    });
    req.resume();
  });
  await new Promise((r) => slow.listen(0, "127.0.0.1", r));
  try {
    const h = new DurableStream({
      url: `http://127.0.0.1:${slow.address().port}/v1/stream/s`,
      contentType: "application/octet-stream",
    });
    let maxAhead = 0;
    const { state, gen } = source(64 * MiB, (s) => {
      maxAhead = Math.max(maxAhead, s.yielded - received);
    });
    const appended = h.appendStream(gen);
    await new Promise((r) => setTimeout(r, 1500));
    // Stalled: only what fits the socket buffers and a few chunks has been pulled.
    const whileStalled = state.yielded;
    assert.ok(whileStalled < 24 * MiB, `pulled ${whileStalled / MiB} MiB from a stalled request`);
    release();
    const r = await appended;
    assert.equal(r.offset, "0000000000000000_0000000000000001");
    assert.equal(received, 64 * MiB);
    assert.equal(got.digest("hex"), state.hash.digest("hex"));
    // Never further ahead of the server than the buffers between them.
    assert.ok(maxAhead < 24 * MiB, `the source ran ${maxAhead / MiB} MiB ahead of the server`);
  } finally {
    await new Promise((r) => slow.close(r));
  }
});

test("an error thrown by the source aborts the append, rejects with that error and stores nothing", async () => {
  const url = server.streamUrl("append-stream-error");
  const h = await DurableStream.create({ url, contentType: "text/plain" });
  const broken = new Error("the source broke");
  let finished = false;
  async function* gen() {
    try {
      yield "a".repeat(200_000);
      yield "b";
      throw broken;
    } finally {
      finished = true;
    }
  }
  await assert.rejects(h.appendStream(gen()), (e) => e === broken);
  assert.equal(finished, true);
  // A ReadableStream that errors: the same.
  const readable = new ReadableStream({
    pull(c) {
      c.error(broken);
    },
  });
  await assert.rejects(h.appendStream(readable), (e) => e === broken);
  // Nothing partial was stored; the stream takes the next append.
  await h.appendStream((async function* () { yield "ok"; })());
  assert.equal(await (await h.stream({ live: false })).text(), "ok");
});

test("a failed request is not sent again: a 503 rejects at once and the source is closed", async () => {
  const url = server.streamUrl("append-stream-503");
  let failed = 0;
  const h = await DurableStream.create({
    url,
    contentType: "text/plain",
    backoffOptions: { initialDelay: 1, maxDelay: 5, onFailedAttempt: () => failed++ },
    appendBackoffOptions: { initialDelay: 1, maxDelay: 5 },
  });
  await injectError(server.url, { path: new URL(url).pathname, status: 503, method: "POST" });
  let pulls = 0;
  let closed = false;
  async function* gen() {
    try {
      for (;;) {
        pulls++;
        yield "x".repeat(64 * 1024);
      }
    } finally {
      closed = true;
    }
  }
  const err = await h.appendStream(gen()).then(() => undefined, (e) => e);
  assert.ok(err instanceof FetchError, String(err));
  assert.equal(err.status, 503);
  assert.equal(err.code, "BUSY");
  assert.equal(failed, 1);
  assert.equal(closed, true);
  assert.ok(pulls < 1000, `${pulls} chunks pulled`);
  assert.equal(await (await h.stream({ live: false })).text(), "");
});

test("an AbortSignal cancels a streamed append and closes the source", async () => {
  const url = server.streamUrl("append-stream-abort");
  const h = await DurableStream.create({ url, contentType: "text/plain" });
  const ac = new AbortController();
  let closed = false;
  async function* gen() {
    try {
      yield "first";
      await new Promise((r) => setTimeout(r, 100));
      ac.abort(new Error("stop"));
      await new Promise((r) => setTimeout(r, 100));
      yield "never";
    } finally {
      closed = true;
    }
  }
  await assert.rejects(
    h.appendStream(gen(), { signal: ac.signal }),
    (e) => e instanceof FetchBackoffAbortError && e.cause.message === "stop",
  );
  // The generator was inside a pull when the signal fired: it is closed once that pull ends
  // (its value is dropped).
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(closed, true);
  assert.equal(await (await h.stream({ live: false })).text(), "");
});

test("a JSON stream takes a streamed array as its messages", async () => {
  const url = server.streamUrl("append-stream-json");
  const h = await DurableStream.create({ url, contentType: "application/json" });
  await h.appendStream((async function* () {
    yield "[";
    for (let i = 0; i < 100; i++) yield `${i ? "," : ""}{"i":${i}}`;
    yield "]";
  })());
  const items = await (await h.stream({ live: false })).json();
  assert.equal(items.length, 100);
  assert.deepEqual(items[99], { i: 99 });
});

test("aborting while the source is stuck in a pull ends the append at once; a ReadableStream is cancelled", { timeout: 10_000 }, async () => {
  const url = server.streamUrl("append-stream-stuck");
  const h = await DurableStream.create({ url, contentType: "text/plain" });
  async function* stuck() {
    yield "first";
    await new Promise(() => {}); // never resolves
  }
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(h.appendStream(stuck(), { signal: ac.signal }), (e) => e instanceof FetchBackoffAbortError);
  let cancelled;
  const readable = new ReadableStream({
    start(c) {
      c.enqueue("first");
    },
    cancel(reason) {
      cancelled = reason ?? "cancelled";
    },
  });
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(), 100);
  await assert.rejects(h.appendStream(readable, { signal: ac2.signal }), (e) => e instanceof FetchBackoffAbortError);
  assert.ok(cancelled !== undefined, "the ReadableStream was cancelled");
  assert.equal(readable.locked, false);
  assert.equal(await (await h.stream({ live: false })).text(), "");
});
