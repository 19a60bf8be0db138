// The package's own layer: every class and error, headers and params, cancellation through
// AbortSignal, and no unhandled rejections when failures go unobserved.
import {
  DurableStream,
  DurableStreamError,
  FetchBackoffAbortError,
  FetchError,
  IdempotentProducer,
  InvalidSignalError,
  MissingStreamUrlError,
  ProducerSessionConflictError,
  Receipt,
  SequenceGapError,
  StaleEpochError,
  StreamClosedError,
  StreamResponse,
  stream,
} from "durable-streams-client";

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { getEventListeners } from "node:events";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { injectError, useServer } from "./server.mjs";

const server = useServer();
const unhandled = [];
const onUnhandled = (e) => unhandled.push(e);
before(() => process.on("unhandledRejection", onUnhandled));
after(() => {
  process.off("unhandledRejection", onUnhandled);
  assert.deepEqual(unhandled, [], "no unhandled rejections");
});

const json = (url) => DurableStream.create({ url, contentType: "application/json" });

test("require() and import give the same classes", () => {
  const out = execFileSync(process.execPath, [
    "-e",
    "const m = require('durable-streams-client'); console.log(typeof m.DurableStream, typeof m.IdempotentProducer, typeof m.stream)",
  ], { cwd: new URL("..", import.meta.url) });
  assert.equal(String(out).trim(), "function function function");
});

test("DurableStream: create, connect, head, append with seq, close, delete", async () => {
  const url = server.streamUrl("api");
  const h = await DurableStream.create({ url, contentType: "text/plain", ttlSeconds: 3600 });
  assert.ok(h instanceof DurableStream);
  assert.equal(h.url, url);
  assert.equal(h.contentType, "text/plain");
  const r = await h.append("one", { seq: "001" });
  assert.ok(r.offset);
  assert.equal(r.streamClosed, false);
  const c = await DurableStream.connect({ url });
  assert.equal(c.contentType, "text/plain");
  const head = await c.head();
  assert.equal(head.exists, true);
  assert.equal(head.exists && head.offset, r.offset);
  assert.equal(head.exists && head.ttlSeconds, 3600);
  const err = await h.append("two", { seq: "000" }).catch((e) => e);
  assert.ok(err instanceof DurableStreamError);
  assert.equal(err.code, "CONFLICT_SEQ");
  assert.equal(err.status, 409);
  const closed = await h.close({ body: "last" });
  assert.ok(closed.finalOffset);
  assert.equal((await h.head()).exists && (await h.head()).streamClosed, true);
  await DurableStream.delete({ url });
  assert.deepEqual(await DurableStream.head({ url }), { exists: false });
});

test("errors: classes, codes and statuses", async () => {
  const missing = server.streamUrl("missing");
  const nf = await new DurableStream({ url: missing }).append("x").catch((e) => e);
  assert.ok(nf instanceof DurableStreamError && nf instanceof Error);
  // A refused request is a FetchError, as in @durable-streams/client.
  assert.ok(nf instanceof FetchError);
  assert.equal(nf.name, "FetchError");
  assert.equal(nf.url, missing);
  assert.equal(nf.code, "NOT_FOUND");
  assert.equal(nf.status, 404);
  const nfRead = await stream({ url: missing, live: false }).catch((e) => e);
  assert.equal(nfRead.code, "NOT_FOUND");

  const url = server.streamUrl("errors");
  await json(url);
  const exists = await DurableStream.create({ url, contentType: "text/plain" }).catch((e) => e);
  assert.equal(exists.code, "CONFLICT_EXISTS");
  assert.equal(exists.status, 409);

  const h = new DurableStream({ url });
  await h.close();
  const sc = await h.append(JSON.stringify(1)).catch((e) => e);
  assert.ok(sc instanceof StreamClosedError);
  assert.equal(sc.code, "STREAM_CLOSED");
  assert.equal(sc.status, 409);
  assert.ok(sc.finalOffset);

  const res = await h.stream({ live: false });
  await res.json();
  const twice = await res.text().catch((e) => e);
  assert.equal(twice.code, "ALREADY_CONSUMED");

  const notJson = await json(server.streamUrl("bad-json")).then((s) => s.append("{nope").catch((e) => e));
  assert.ok(notJson instanceof DurableStreamError);

  assert.throws(() => new DurableStream({ url: "" }), MissingStreamUrlError);
  assert.throws(() => new DurableStream({ url, signal: {} }), InvalidSignalError);
  assert.throws(() => new DurableStream({ url, backoffOptions: { multiplier: 0.5 } }), (e) => e.code === "INVALID_ARGUMENT" && /multiplier/.test(e.message));
  assert.throws(() => new DurableStream({ url: "not a url" }), (e) => e.code === "INVALID_ARGUMENT");
  const gap = new SequenceGapError(3, 5);
  assert.equal(gap.code, "SEQUENCE_GAP");
  assert.equal(gap.expectedSeq, 3);
  assert.equal(gap.receivedSeq, 5);
});

test("FetchError for a server error once retries are used up; onError can retry", async () => {
  const url = server.streamUrl("fetch-error");
  const h = await json(url);
  await h.append(JSON.stringify({ a: 1 }));
  const path = new URL(url).pathname;
  await injectError(server.url, { path, status: 500, count: 1, method: "GET" });
  const err = await h.stream({ live: false, backoffOptions: { maxRetries: 0 } }).catch((e) => e);
  assert.ok(err instanceof FetchError);
  assert.equal(err.code, "SERVER_ERROR");
  assert.equal(err.status, 500);

  await injectError(server.url, { path, status: 503, count: 1, method: "GET" });
  const seen = [];
  const res = await h.stream({
    live: false,
    backoffOptions: { maxRetries: 0 },
    onError: async (e) => {
      seen.push(e);
      return { headers: { "x-retry": "1" } };
    },
  });
  assert.deepEqual(await res.json(), [{ a: 1 }]);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].status, 503);
});

test("headers and params: strings and (async) functions, evaluated per request", async () => {
  const url = server.streamUrl("headers");
  let calls = 0;
  const h = new DurableStream({
    url,
    contentType: "application/json",
    headers: { authorization: "Bearer static", "x-dynamic": () => `n${++calls}` },
    params: { tenant: async () => "t1" },
  });
  await h.create();
  await h.append("1");
  await h.append("2");
  assert.ok(calls >= 3, `the header function ran for every request (${calls})`);
  const bad = new DurableStream({ url, headers: { "x-bad": () => { throw new Error("no token"); } } });
  const err = await bad.append("3").catch((e) => e);
  assert.equal(err.code, "INVALID_ARGUMENT");
  assert.match(err.message, /no token/);
});

test("AbortSignal cancels an in-flight call and a live read", async () => {
  const url = server.streamUrl("abort");
  const h = await json(url);
  await injectError(server.url, { path: new URL(url).pathname, delayMs: 3000, count: 1, method: "POST" });
  const ac = new AbortController();
  const t0 = Date.now();
  const pending = h.append("1", { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  const err = await pending.catch((e) => e);
  // As in the reference: requests it sends through its backoff wrapper reject with
  // FetchBackoffAbortError; here the signal's reason is its cause.
  assert.ok(err instanceof FetchBackoffAbortError, String(err));
  assert.equal(err.code, "CANCELLED");
  assert.equal(err.cause.name, "AbortError");
  assert.ok(Date.now() - t0 < 2000, "aborted before the delayed response");

  const already = await h.head({ signal: AbortSignal.abort(new Error("stop")) }).catch((e) => e);
  assert.equal(already.message, "stop");

  const live = new AbortController();
  const res = await h.stream({ live: "long-poll", offset: "now", signal: live.signal });
  assert.ok(res instanceof StreamResponse);
  const items = [];
  const reading = (async () => {
    for await (const item of res.jsonStream()) items.push(item);
  })();
  setTimeout(() => live.abort(), 100);
  await assert.rejects(reading, (e) => e.name === "AbortError");
  await res.closed;
});

test("one AbortSignal shared by many reads and producers holds no listener for those that ended", async () => {
  const url = server.streamUrl("abort-shared");
  const h = await json(url);
  await h.append("1");
  const ac = new AbortController();
  const listeners = () => getEventListeners(ac.signal, "abort").length;
  for (let i = 0; i < 50; i++) {
    const res = await h.stream({ offset: "-1", live: false, signal: ac.signal });
    assert.deepEqual(await res.json(), [1]);
    await res.closed;
  }
  // The listener goes when the read's `closed` settles (a microtask after json() returned).
  await new Promise((r) => setImmediate(r));
  assert.equal(listeners(), 0, "one listener left per finished read");
  for (let i = 0; i < 20; i++) {
    const p = new IdempotentProducer(h, `shared-${i}`, { signal: ac.signal });
    p.append(JSON.stringify({ i }));
    await p.detach();
  }
  const last = new IdempotentProducer(h, "shared-last", { signal: ac.signal });
  assert.equal(listeners(), 1);
  await last.close();
  assert.equal(listeners(), 0, "one listener left per detached or closed producer");
  // A live read still listening is cancelled by the shared signal.
  const other = await json(server.streamUrl("abort-shared-live"));
  const live = await other.stream({ offset: "-1", live: "long-poll", signal: ac.signal });
  assert.equal(listeners(), 1);
  ac.abort();
  await live.closed.catch(() => undefined);
  assert.equal(listeners(), 0);
});

/** Blocks the event loop (not the addon's threads) for `ms`. */
const busy = (ms) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};

/** Appends one JSON message from another process, blocking the event loop until it is stored. */
const appendBlocking = (url, body) =>
  execFileSync(process.execPath, [
    "-e",
    `fetch(${JSON.stringify(url)}, { method: "POST", headers: { "content-type": "application/json" }, body: ${JSON.stringify(body)} })` +
      ".then((r) => { if (!r.ok) process.exit(1) })",
  ]);

test("offset stays before data the caller never got: a failed whole read, an unsubscribed callback, a cancelled stream", async () => {
  const url = server.streamUrl("handover");
  const h = await json(url);
  for (const n of [1, 2, 3]) await h.append(JSON.stringify({ n, pad: "x".repeat(100) }));
  const all = async (offset) => (await stream({ url, offset, live: false })).json();

  // A whole read over its size limit fails after reading data: the offset has not moved.
  const small = await stream({ url, offset: "-1", live: false, maxReadBytes: 50 });
  await assert.rejects(small.json(), (e) => e.code === "PARSE_ERROR");
  assert.equal(small.offset, "-1");
  assert.equal((await all(small.offset)).length, 3);

  // A batch that arrives while the callback is being unsubscribed is not handed over.
  const res = await stream({ url, offset: "-1", live: "long-poll" });
  let first;
  const got = new Promise((r) => (first = r));
  const seen = [];
  const unsubscribe = res.subscribeJson((b) => {
    seen.push(...b.items.map((m) => m.n));
    first();
  });
  await got;
  const afterFirst = res.offset;
  await new Promise((r) => setTimeout(r, 100)); // the long-poll is waiting now
  // Stored and read by the addon while the event loop is blocked: no callback can run before
  // the unsubscribe.
  appendBlocking(url, JSON.stringify({ n: 4 }));
  busy(300);
  unsubscribe();
  await res.closed;
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(res.offset, afterFirst);
  assert.deepEqual((await all(res.offset)).map((m) => m.n), [4]);

  // A web stream cancelled while its pull waits for a batch.
  const live = await stream({ url, offset: afterFirst, live: "long-poll" });
  const reader = live.jsonStream().getReader();
  assert.equal((await reader.read()).value.n, 4);
  const afterFour = live.offset;
  const pending = reader.read();
  await new Promise((r) => setTimeout(r, 100));
  appendBlocking(url, JSON.stringify({ n: 5 }));
  busy(300);
  await reader.cancel();
  assert.deepEqual(await pending, { done: true, value: undefined });
  await live.closed;
  assert.equal(live.offset, afterFour);
  assert.deepEqual((await all(live.offset)).map((m) => m.n), [5]);
});

test("producer: receipts, metrics, restart, detach, buffer full fails fast, ready() waits", async () => {
  const url = server.streamUrl("producer");
  const h = await json(url);
  const p = new IdempotentProducer(h, "p", { lingerMs: 0, maxInFlight: 2 });
  // As in @durable-streams/client, a value is refused: JSON streams take JSON text.
  assert.throws(() => p.append({ n: 1 }), (e) => e instanceof DurableStreamError && e.code === "BAD_REQUEST");
  await assert.rejects(h.append({ n: 1 }), (e) => e instanceof DurableStreamError && e.code === "BAD_REQUEST");
  const receipt = p.append(JSON.stringify({ n: 1 }));
  assert.ok(receipt instanceof Receipt);
  assert.equal(receipt.messageNumber, 0);
  const d = await receipt.wait();
  assert.equal(d.duplicate, false);
  assert.equal(d.epoch, 0);
  assert.equal(d.seq, 0);
  assert.ok(d.offset);
  assert.equal(p.lastSuccessfulOffset, d.offset);
  await p.restart();
  assert.equal(p.epoch, 1);
  assert.equal(p.nextSeq, 0);
  p.append(JSON.stringify({ n: 2 }));
  await p.detach();
  assert.throws(() => p.append("3"), (e) => e.code === "ALREADY_CLOSED");
  const m = p.metrics();
  assert.equal(m.messages, 2);
  assert.equal(m.appendedMessages, 2);

  const small = new IdempotentProducer(h, "small", { maxBufferedBytes: 16, lingerMs: 200 });
  small.append('"0123456789"');
  assert.throws(() => small.append('"0123456789"'), (e) => e.code === "BUFFER_FULL");
  await small.ready(12);
  small.append('"0123456789"');
  await small.flush();
  assert.equal((await (await h.stream({ live: false })).json()).length, 4);
  await small.detach();
});

test("producer: append of a string (the addon's plain napi call) keeps any text, each producer its own", async () => {
  // Non-ASCII text of every UTF-8 length, a long message, a raw NUL on a byte stream, a lone
  // surrogate (napi's rule: it becomes U+FFFD), several producers appending in turn (each has
  // its own slot in the addon).
  const texts = ["plain", "é ü", "日本語", "😀 astral", "mixed 😀 é 日 end", "x".repeat(70_000)];
  const handles = await Promise.all([0, 1, 2].map((k) => json(server.streamUrl(`append-text-${k}`))));
  const producers = handles.map((h, k) => new IdempotentProducer(h, `text-${k}`, { lingerMs: 1 }));
  for (const t of texts) producers.forEach((p, k) => p.append(JSON.stringify(`${k}:${t}`)));
  producers[0].append('"lone \\ud800 escaped"');
  producers[0].append('"lone \ud800 raw"');
  for (const p of producers) await p.close();
  const read = await Promise.all(handles.map(async (h) => (await h.stream({ live: false })).json()));
  read.forEach((values, k) => {
    const expected = texts.map((t) => `${k}:${t}`);
    if (k === 0) expected.push("lone \ud800 escaped", "lone \ufffd raw");
    assert.deepEqual(values, expected);
  });

  const bytes = await DurableStream.create({
    url: server.streamUrl("append-text-bytes"),
    contentType: "application/octet-stream",
  });
  const b = new IdempotentProducer(bytes, "bytes", { lingerMs: 0 });
  b.append("a\u0000b");
  b.append("é");
  await b.close();
  assert.deepEqual([...(await (await bytes.stream({ live: false })).body())], [97, 0, 98, 0xc3, 0xa9]);

  // The raw function itself, misused (the package never does this): clear errors, no crash.
  const native = createRequire(import.meta.url)("../native/index.js");
  const bad = (f, re) => assert.throws(f, (e) => re.test(String(e.message)), re.source);
  bad(() => native.producerAppendText(), /takes \(slot, text\)/);
  bad(() => native.producerAppendText("x", '"y"'), /slot must be a number/);
  bad(() => native.producerAppendText(4_000_000, '"y"'), /no producer in slot 4000000/);
  const own = new native.NativeProducer(handles[1].native, "slot-check", {});
  bad(() => native.producerAppendText(own.slot, 5), /must be a string/);
  assert.equal(native.producerAppendText(own.slot, '"fine"'), 0);
  // The same for appendMany's joined runs.
  bad(() => native.producerAppendJoined(own.slot, "1"), /takes \(slot, joined, count, throwFirst, oneByte\)/);
  bad(() => native.producerAppendJoined("x", "1", 1, true, false), /slot must be a number/);
  bad(() => native.producerAppendJoined(4_000_000, "1", 1, true, false), /no producer in slot 4000000/);
  bad(() => native.producerAppendJoined(own.slot, 1, 1, true, false), /joined must be a string/);
  bad(() => native.producerAppendJoined(own.slot, "1", "one", true, false), /count must be a number/);
  bad(() => native.producerAppendJoined(own.slot, "1", 1, 1, false), /throwFirst must be a boolean/);
  bad(() => native.producerAppendJoined(own.slot, "{\u00002", 2, true, true), /JSON/);
  assert.equal(native.producerAppendJoined(own.slot, "1\u0000{}", 3, true, true), -1);
  assert.equal(native.producerAppendJoined(own.slot, "1\u0000{}", 4_000_000_000, true, false), -1);
  assert.equal(native.producerAppendJoined(own.slot, "1\u0000{bad", 2, false, true), 1);
  assert.equal(native.producerAppendJoined(own.slot, "1\u0000[2]\u0000\"é\"", 3, true, false), 3);
  assert.equal(native.producerAppendJoined(own.slot, "1\u0000[2]\u0000\"é\"", 3, true, true), 3);
  bad(() => native.producerAppendJoined(own.slot, "1", 1, true, "yes"), /oneByte must be a boolean/);
});

test("producer: appendMany stops at a full buffer and resumes; bytes from any Uint8Array", async () => {
  const url = server.streamUrl("many");
  const h = await json(url);
  const p = new IdempotentProducer(h, "many", { maxBufferedBytes: 64, lingerMs: 20 });
  const msgs = Array.from({ length: 20 }, (_, i) => JSON.stringify({ i }));
  let i = p.appendMany(msgs);
  assert.ok(i > 0 && i < msgs.length, `the 64-byte buffer takes some of the 20 messages, took ${i}`);
  let waits = 0;
  while (i < msgs.length) {
    await p.ready(Buffer.byteLength(msgs[i]));
    waits++;
    i = p.appendMany(msgs, i);
  }
  assert.ok(waits > 0);
  assert.equal(p.appendMany([]), 0);
  assert.equal(p.appendMany(msgs, msgs.length), msgs.length);
  await p.flush();
  assert.deepEqual((await (await h.stream({ live: false })).json()).map((m) => m.i), msgs.map((_, k) => k));

  // A bad message is thrown when it comes first, else the call stops before it.
  assert.equal(p.appendMany(['{"i":20}', "not json"]), 1);
  assert.throws(() => p.appendMany(['{"i":20}', "not json"], 1), (e) => e instanceof DurableStreamError && e.code === "INVALID_ARGUMENT");
  assert.throws(() => p.appendMany([42]), (e) => e.code === "INVALID_ARGUMENT" && /message 0/.test(e.message));
  assert.throws(() => p.appendMany("x"), (e) => e.code === "INVALID_ARGUMENT");
  assert.throws(() => p.appendMany(msgs, -1), (e) => e.code === "INVALID_ARGUMENT");
  await p.detach();
  assert.throws(() => p.appendMany(msgs), (e) => e.code === "ALREADY_CLOSED");

  const bytesUrl = server.streamUrl("many-bytes");
  const b = await DurableStream.create({ url: bytesUrl, contentType: "application/octet-stream" });
  const q = new IdempotentProducer(b, "bytes", { lingerMs: 0 });
  const view = new Uint8Array([0, 1, 2, 3, 4, 5]).subarray(2, 5);
  q.append(view);
  q.append(Buffer.from("ab"));
  assert.equal(q.appendMany([new Uint8Array([9]), "cd"]), 2);
  await q.close();
  const all = await (await b.stream({ live: false })).body();
  assert.deepEqual([...all], [2, 3, 4, 97, 98, 9, 99, 100]);
});

test("producer: appendMany's runs of Uint8Arrays (one native call each) keep every message whole and in order", async () => {
  // Runs longer than the addon's 256 messages per core call, a full buffer inside them, then a
  // message that is not JSON and one that is not bytes at all in the middle of a run.
  const h = await json(server.streamUrl("many-buffers"));
  const p = new IdempotentProducer(h, "buffers", { maxBufferedBytes: 2048, lingerMs: 1 });
  const msgs = Array.from({ length: 1500 }, (_, i) => Buffer.from(JSON.stringify({ i })));
  let waits = 0;
  for (let i = p.appendMany(msgs); i < msgs.length; i = p.appendMany(msgs, i)) {
    waits++;
    await p.ready(msgs[i].length);
  }
  // About 13 KiB of messages through a 2 KiB buffer: it fills up to about 6 times, fewer when
  // batches drain while a run is being added (a loaded machine saw 5); more than 2 shows the
  // resumption from a full buffer was taken repeatedly.
  assert.ok(waits > 2, `a 2 KiB buffer fills several times, waited ${waits}`);
  const bad = Array.from({ length: 600 }, (_, i) => Buffer.from(JSON.stringify({ i: 1500 + i })));
  bad[300] = Buffer.from('{"i":');
  bad[450] = 7;
  let i = 0;
  for (i = p.appendMany(bad); i < 300; i = p.appendMany(bad, i)) await p.ready(bad[i].length);
  assert.equal(i, 300);
  assert.throws(() => p.appendMany(bad, 300), (e) => e.code === "INVALID_ARGUMENT" && /not valid JSON/.test(e.message));
  for (i = p.appendMany(bad, 301); i < 450; i = p.appendMany(bad, i)) await p.ready(bad[i].length);
  assert.equal(i, 450);
  assert.throws(() => p.appendMany(bad, 450), (e) => e.code === "INVALID_ARGUMENT" && /message 450/.test(e.message));
  for (i = p.appendMany(bad, 451); i < bad.length; i = p.appendMany(bad, i)) await p.ready(bad[i].length);
  await p.flush();
  const got = (await (await h.stream({ live: false })).json()).map((m) => m.i);
  const want = [...Array.from({ length: 1500 }, (_, k) => k), ...Array.from({ length: 600 }, (_, k) => 1500 + k).filter((k) => k !== 1800 && k !== 1950)];
  assert.deepEqual(got, want);
  await p.detach();
});

test("producer: appendMany copies each Uint8Array when it reads it, before the next element's getter runs", async () => {
  // Reading an element can run JavaScript (a getter, a Proxy trap). Here the getter of element
  // 1 moves element 0's memory to another ArrayBuffer (a transfer) and overwrites it there: the
  // message appended must be element 0 as it was read, not whatever its old memory holds later.
  const b = await DurableStream.create({ url: server.streamUrl("many-moved"), contentType: "application/octet-stream" });
  const p = new IdempotentProducer(b, "moved", { lingerMs: 0 });
  const first = new Uint8Array(64 * 1024).fill(120);
  const second = Uint8Array.of(49);
  const msgs = [first, null];
  let reads = 0;
  Object.defineProperty(msgs, 1, {
    get() {
      // appendMany's JavaScript reads element 1 once to find the run; the addon reads it next.
      if (++reads === 2) {
        const moved = structuredClone(first.buffer, { transfer: [first.buffer] });
        new Uint8Array(moved).fill(48);
      }
      return second;
    },
  });
  assert.equal(p.appendMany(msgs), 2);
  assert.equal(reads, 2, "the addon read element 1 after appendMany's own look");
  assert.equal(first.length, 0, "element 0 was detached during the call");
  await p.close();
  const all = Buffer.from(await (await b.stream({ live: false })).body());
  assert.equal(all.length, 64 * 1024 + 1);
  const kept = all.subarray(0, 64 * 1024).filter((c) => c === 120).length;
  assert.equal(kept, 64 * 1024, "every byte of element 0 as it was when read");
  assert.equal(all[64 * 1024], 49);
});

test("producer: appendMany keeps a long string between short ones whole and in order", async () => {
  const h = await json(server.streamUrl("many-long"));
  const p = new IdempotentProducer(h, "long", { lingerMs: 0 });
  const long = JSON.stringify("y".repeat(300 * 1024));
  assert.equal(p.appendMany(["1", long, "2", "3"]), 4);
  await p.flush();
  const got = await (await h.stream({ live: false })).json();
  assert.deepEqual(got.map((v) => (typeof v === "string" ? v.length : v)), [1, 300 * 1024, 2, 3]);
  await p.detach();
});

test("producer: appendMany's runs of strings (one native call each) keep every message whole and in order", async () => {
  // More than one run (1,024 messages each), a full buffer in the middle of a run, resumed.
  const url = server.streamUrl("many-runs");
  const h = await json(url);
  const p = new IdempotentProducer(h, "runs", { maxBufferedBytes: 4096, lingerMs: 1 });
  const msgs = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ i, s: "é\u2028" + "x".repeat(i % 7) }));
  let waits = 0;
  for (let i = p.appendMany(msgs); i < msgs.length; i = p.appendMany(msgs, i)) {
    waits++;
    await p.ready(Buffer.byteLength(msgs[i]));
  }
  assert.ok(waits > 10, `a 4 KiB buffer fills many times, waited ${waits}`);
  await p.flush();
  assert.deepEqual(await (await h.stream({ live: false })).json(), msgs.map((m) => JSON.parse(m)));

  // Runs with no character above U+00FF cross as Latin-1 (one-byte strings) and come back as
  // the same text: ASCII, Latin-1 letters (U+0080 and U+00FF too), escaped controls; joined runs
  // holding one of the two messages with wider characters take the UTF-16 read.
  const latin = Array.from({ length: 2500 }, (_, i) =>
    JSON.stringify({ i, s: ["plain", "é", "ÿ\u00a0ß", "\u0080\u00ff", "tab\t"][i % 5] }),
  );
  latin[1023] = JSON.stringify({ i: 1023, s: "wide at the run's end €" });
  latin[2100] = JSON.stringify({ i: 2100, s: "😀 and ü" });
  for (let i = p.appendMany(latin); i < latin.length; i = p.appendMany(latin, i)) await p.ready(Buffer.byteLength(latin[i]));
  await p.flush();
  const stored = await (await h.stream({ live: false })).json();
  assert.deepEqual(stored.slice(3000), latin.map((m) => JSON.parse(m)));

  // A bad message in the middle of a long run: the call stops at its index, the next throws it,
  // and the messages before it are stored.
  const bad = Array.from({ length: 50 }, (_, i) => (i === 37 ? '{"i":37' : JSON.stringify({ i: 3000 + i })));
  assert.equal(p.appendMany(bad), 37);
  assert.throws(() => p.appendMany(bad, 37), (e) => e.code === "INVALID_ARGUMENT" && /not valid JSON/.test(e.message));
  assert.equal(p.appendMany(bad, 38), 50);
  // An empty message is refused as by append, also inside a run.
  assert.equal(p.appendMany(['"a"', "", '"b"']), 1);
  assert.throws(() => p.appendMany(['"a"', "", '"b"'], 1), (e) => e.code === "INVALID_ARGUMENT" && /empty/.test(e.message));
  // A NUL inside a JSON string's text is refused too (raw control characters are not JSON).
  assert.equal(p.appendMany(['"a"', '"b\u0000c"', '"d"']), 1);
  await p.flush();
  const after = (await (await h.stream({ live: false })).json()).slice(5500).map((m) => (typeof m === "object" ? m.i : m));
  const expected = [...Array.from({ length: 37 }, (_, i) => 3000 + i), ...Array.from({ length: 12 }, (_, i) => 3038 + i), "a", "a"];
  assert.deepEqual(after, expected);
  await p.detach();

  // A byte stream: a NUL inside a string message stays inside it (the run goes one by one),
  // strings and Uint8Arrays mixed keep their order.
  const b = await DurableStream.create({ url: server.streamUrl("many-nul"), contentType: "application/octet-stream" });
  const q = new IdempotentProducer(b, "nul", { lingerMs: 1 });
  assert.equal(q.appendMany(["a\u0000b", "c", new Uint8Array([0, 1]), "d", "e", "f\u0000"]), 6);
  await q.close();
  const all = await (await b.stream({ live: false })).body();
  assert.deepEqual([...all], [97, 0, 98, 99, 0, 1, 100, 101, 102, 0]);
});

test("JSON reads: values as JSON.parse makes them (key order kept), reads larger than one array text", async () => {
  const url = server.streamUrl("json-values");
  const h = await json(url);
  await h.append('{"b":1,"a":[true,null,1.5e3,"\\u00e9\\ud83d\\ude00"],"c":{"z":0,"y":-0.5}}');
  await h.append('"text"');
  const [first, second] = await (await h.stream({ live: false })).json();
  assert.deepEqual(Object.keys(first), ["b", "a", "c"]);
  assert.deepEqual(Object.keys(first.c), ["z", "y"]);
  assert.deepEqual(first.a, [true, null, 1500, "\u00e9\u{1f600}"]);
  assert.equal(second, "text");

  // 3 messages of 7 MiB: more than the native layer puts in one array text (16 MiB).
  const big = await json(server.streamUrl("json-big"));
  const p = new IdempotentProducer(big, "big", { lingerMs: 0, maxBatchBytes: 8 << 20 });
  for (let i = 0; i < 3; i++) p.append(JSON.stringify({ i, pad: String(i).repeat(7 << 20) }));
  // A message that is an array stays one message when the arrays of several texts are joined.
  p.append(JSON.stringify([3, "3".repeat(7 << 20)]));
  await p.flush();
  const items = await (await big.stream({ live: false })).json();
  assert.equal(items.length, 4);
  assert.deepEqual(items.slice(0, 3).map((m) => [m.i, m.pad.length]), [[0, 7 << 20], [1, 7 << 20], [2, 7 << 20]]);
  assert.deepEqual([items[3][0], items[3][1].length], [3, 7 << 20]);
  const seen = [];
  const res = await big.stream({ live: false });
  res.subscribeJson((batch) => {
    for (const m of batch.items) seen.push(Array.isArray(m) ? m[0] : m.i);
  });
  await res.closed;
  assert.deepEqual(seen, [0, 1, 2, 3]);
  await p.detach();
});

test("JSON reads of long texts in ASCII, Latin-1 and wider characters keep every value across garbage collections", async () => {
  // Whole, picked and streamed reads of each, three times with collections in between.
  v8.setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc");
  const want = {};
  for (const [name, extra] of [["ascii", "x"], ["latin", "é"], ["wide", "日"]]) {
    const h = await json(server.streamUrl(`json-texts-${name}`));
    want[name] = Array.from({ length: 3000 }, (_, i) => ({ i, s: `${i % 10 ? "x" : extra}`.repeat(40) }));
    const p = new IdempotentProducer(h, name, { lingerMs: 0 });
    for (const m of want[name]) p.append(JSON.stringify(m));
    await p.flush();
    await p.detach();
    for (let round = 0; round < 3; round++) {
      const whole = await (await h.stream({ live: false })).json();
      const picked = await (await h.stream({ live: false })).json({ field: "s" });
      const batched = [];
      for await (const m of (await h.stream({ live: false })).jsonStream()) batched.push(m);
      gc();
      assert.deepEqual(whole, want[name]);
      assert.deepEqual(picked, want[name].map((m) => m.s));
      assert.deepEqual(batched, want[name]);
    }
  }
  gc();
});

test("JSON reads of numbers (whole or picked) give what JSON.parse gives: edges, floats, long integers", async () => {
  // Arrays whose elements are all numbers cross from the addon as typed arrays; one that is
  // not a number sends its array as text. Either way the values are JSON.parse's.
  const texts = [];
  for (let i = 0; i < 6000; i++) texts.push(String(((i * 2654435761) % 4294967296) - 2147483648));
  texts.push(
    "0", "-0", "-0.0", "2147483647", "-2147483648", "2147483648", "-2147483649", "0.1", "1E+2",
    "1e-7", "0.30000000000000004", "9007199254740993", "123456789012345678901234567890",
    "1.7976931348623157e308", "5e-324", "-1e-400", "3.141592653589793238462643383279",
  );
  for (let i = 0; i < 6000; i++) texts.push(`${i}.5`);
  const whole = await json(server.streamUrl("json-numbers"));
  const picked = await json(server.streamUrl("json-numbers-picked"));
  const p1 = new IdempotentProducer(whole, "n", { lingerMs: 0, maxBatchBytes: 16 << 10 });
  const p2 = new IdempotentProducer(picked, "n", { lingerMs: 0, maxBatchBytes: 16 << 10 });
  for (const [k, t] of texts.entries()) {
    p1.append(t);
    p2.append(`{"s":"x","n":${t},"k":${k - 3000}}`);
  }
  await Promise.all([p1.flush(), p2.flush()]);
  await Promise.all([p1.detach(), p2.detach()]);
  // What the server kept (the reference server writes -0 as 0), as JSON.parse reads it.
  const want = JSON.parse(await (await whole.stream({ live: false })).text());
  const wantPicked = JSON.parse(await (await picked.stream({ live: false })).text()).map((m) => m.n);
  assert.equal(want.length, texts.length);
  assert.deepEqual(wantPicked, want);

  const check = (got, expected, what) => {
    assert.ok(Array.isArray(got), what);
    assert.equal(got.length, expected.length, what);
    // Strict deep equality compares numbers with Object.is: -0 and 0 differ.
    assert.deepEqual(got, expected, what);
  };
  for (const [h, options, expected] of [
    [whole, undefined, want],
    [picked, { field: "n" }, wantPicked],
  ]) {
    check(await (await h.stream({ live: false })).json(options), expected, "json");
    const each = [];
    for await (const m of (await h.stream({ live: false })).jsonStream(options)) each.push(m);
    check(each, expected, "jsonStream");
    const seen = [];
    const res = await h.stream({ live: false });
    res.subscribeJson((batch) => {
      assert.ok(Array.isArray(batch.items));
      seen.push(...batch.items);
    }, options);
    await res.closed;
    check(seen, expected, "subscribeJson");
  }
  // All integers: an Int32Array crosses.
  const ks = texts.map((_, k) => k - 3000);
  check(await (await picked.stream({ live: false })).json({ field: "k" }), ks, "integers");
  const got = await (await picked.stream({ live: false })).json({ field: "n" });
  assert.deepEqual([got[0], got[6003], got[6004], got[6005]], [-2147483648, 2147483647, -2147483648, 2147483648]);
  assert.deepEqual(got.slice(-2), [5998.5, 5999.5]);
});

test("JSON reads that keep only some members: json, jsonStream and subscribeJson", async () => {
  const h = await json(server.streamUrl("json-pick"));
  const sent = [
    '{"id":1,"text":"a","meta":{"text":"inner"}}',
    '{"text":"\\u00e9\\n","id":2.5}',
    "7",
    '"text"',
    "null",
    '{"id":[1,{"id":0}],"x":null}',
    "{}",
    '{"id":1,"id2":2,"id":"last"}',
  ];
  for (const m of sent) await h.append(m);
  const whole = await (await h.stream({ live: false })).json();
  const isObject = (m) => typeof m === "object" && m !== null && !Array.isArray(m);
  const value = (m, k) => (isObject(m) && k in m ? m[k] : null);
  const members = (m, ks) => (isObject(m) ? Object.fromEntries(Object.entries(m).filter(([k]) => ks.includes(k))) : null);
  for (const k of ["id", "text", "missing"]) {
    const want = whole.map((m) => value(m, k));
    assert.deepEqual(await (await h.stream({ live: false })).json({ field: k }), want);
    const each = [];
    for await (const m of (await h.stream({ live: false })).jsonStream({ field: k })) each.push(m);
    assert.deepEqual(each, want);
  }
  assert.deepEqual(whole[7], { id: "last", id2: 2 });
  const want = whole.map((m) => members(m, ["id", "x"]));
  assert.deepEqual(want[5], { id: [1, { id: 0 }], x: null });
  assert.deepEqual(await (await h.stream({ live: false })).json({ fields: ["x", "id"] }), want);
  const seen = [];
  const res = await h.stream({ live: false });
  res.subscribeJson((batch) => {
    seen.push(...batch.items);
  }, { fields: ["id", "x"] });
  await res.closed;
  assert.deepEqual(seen, want);

  // A live read picks from new messages too, over long-polls and over SSE.
  for (const live of ["long-poll", "sse"]) {
    const tail = await h.stream({ live, offset: "now" });
    const it = tail.jsonStream({ field: "text" })[Symbol.asyncIterator]();
    await h.append(JSON.stringify({ id: 99, text: `new over ${live}` }));
    assert.deepEqual(await it.next(), { value: `new over ${live}`, done: false });
    tail.cancel();
  }

  // Mistakes are named before anything is read.
  const bad = [
    [{ field: "id", fields: ["id"] }, /not both/],
    [{ field: 1 }, /field must be/],
    [{ fields: "id" }, /fields must be an array/],
    [{ fields: ["id", 2] }, /fields must be an array/],
    [{ fields: [] }, /at least one/],
  ];
  for (const [options, message] of bad) {
    const r = await h.stream({ live: false });
    await assert.rejects(r.json(options), (e) => e.code === "INVALID_ARGUMENT" && message.test(e.message));
    assert.throws(() => r.jsonStream(options), (e) => e.code === "INVALID_ARGUMENT");
    r.cancel();
  }
  const text = await DurableStream.create({ url: server.streamUrl("json-pick-text"), contentType: "text/plain" });
  await text.append('[{"a":1}]');
  await assert.rejects((await text.stream({ live: false })).json({ field: "a" }), (e) => e.code === "BAD_REQUEST");
  assert.deepEqual(await (await text.stream({ live: false, json: true })).json({ field: "a" }), [1]);
});

test("producer fencing: StaleEpochError through onError and flush", async () => {
  const url = server.streamUrl("fenced");
  const h = await json(url);
  const newer = new IdempotentProducer(h, "shared", { epoch: 5, lingerMs: 0 });
  await newer.append("1").wait();
  const errors = [];
  const older = new IdempotentProducer(h, "shared", { epoch: 2, lingerMs: 0, onError: (e) => errors.push(e) });
  const receipt = older.append("2");
  const err = await older.flush().catch((e) => e);
  assert.ok(err instanceof StaleEpochError);
  assert.equal(err.currentEpoch, 5);
  assert.equal(err.status, 403);
  await assert.rejects(receipt.wait(), StaleEpochError);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(errors[0] instanceof StaleEpochError);
  await older.detach().catch(() => undefined);
  await newer.close();
});

test("a reused producer id: ProducerSessionConflictError without autoClaim, a new epoch with it", async () => {
  const url = server.streamUrl("reused-id");
  const h = await json(url);
  const first = new IdempotentProducer(h, "job", { lingerMs: 0 });
  await first.append(JSON.stringify("first")).wait();
  await first.detach();
  // The same id and epoch again, as a restarted process would start it.
  const again = new IdempotentProducer(h, "job", { lingerMs: 0 });
  const receipt = again.append(JSON.stringify("lost?"));
  const err = await receipt.wait().catch((e) => e);
  assert.ok(err instanceof ProducerSessionConflictError, String(err));
  assert.equal(err.code, "PRODUCER_SESSION_CONFLICT");
  assert.equal(err.producerId, "job");
  assert.equal(err.epoch, 0);
  await assert.rejects(again.flush(), ProducerSessionConflictError);
  await again.detach().catch(() => undefined);
  const claimed = new IdempotentProducer(h, "job", { lingerMs: 0, autoClaim: true });
  const d = await claimed.append(JSON.stringify("second")).wait();
  assert.equal(d.epoch, 1);
  assert.equal(d.duplicate, false);
  await claimed.detach();
  assert.deepEqual(await (await stream({ url, live: false })).json(), ["first", "second"]);
});

test("no unhandled rejections when failures are never observed", async () => {
  const url = server.streamUrl("unobserved");
  const h = await json(url);
  await h.close();
  // Receipts of failed batches, never awaited.
  const p = new IdempotentProducer(h, "ghost", {
    lingerMs: 0,
    onError: () => {
      throw new Error("a throwing callback");
    },
  });
  for (let i = 0; i < 5; i++) {
    // The first batch can fail before the loop ends (the producer's task runs on other
    // threads); append then throws STREAM_CLOSED, which is observed and fine here.
    try {
      p.append(String(i));
    } catch (e) {
      if (e.code !== "STREAM_CLOSED") throw e;
    }
  }
  await p.detach().catch(() => undefined);
  // A read that fails after subscribing: nobody listens to `closed`.
  const live = await json(server.streamUrl("unobserved-read"));
  const res = await live.stream({ live: "long-poll", backoffOptions: { maxRetries: 0 } });
  await injectError(server.url, { path: new URL(live.url).pathname, status: 500, count: 5, method: "GET" });
  res.subscribeJson(() => undefined);
  await new Promise((r) => setTimeout(r, 1500));
  await res.closed.catch(() => undefined);
  // An aborted call whose promise is dropped.
  void h.head({ signal: AbortSignal.abort() }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(unhandled, []);
});

test("unset options take the core's defaults; a bad value gets the core's error naming it", async () => {
  const h = await json(server.streamUrl("option-defaults"));
  await h.append(JSON.stringify({ n: 1 }));
  // live left unset: the core's default, auto (reported as `true`, as in the reference);
  // json() still ends once caught up.
  const res = await h.stream();
  assert.equal(res.live, true);
  assert.deepEqual(await res.json(), [{ n: 1 }]);
  await assert.rejects(h.stream({ live: "sometimes" }), (e) => e.code === "INVALID_ARGUMENT" && /live/.test(e.message));
  // A negative or fractional count is refused, not wrapped by the number conversion; 0 gets
  // the core's own check.
  for (const n of [-1, 1.5, 2 ** 40, 0]) {
    await assert.rejects(
      h.stream({ live: "sse", sseResilience: { maxShortConnections: n } }),
      (e) => e.code === "INVALID_ARGUMENT" && /max_?short_?connections/i.test(e.message),
      String(n),
    );
  }
  for (const [bad, name] of [
    [{ maxInFlight: 0 }, /maxInFlight/],
    [{ maxBatchBytes: 0 }, /maxBatchBytes/],
    [{ maxBufferedBytes: 0 }, /maxBufferedBytes/],
    [{ deliveryTimeoutMs: 0 }, /deliveryTimeout/],
  ]) {
    assert.throws(() => new IdempotentProducer(h, "bad", bad), (e) => e.code === "INVALID_ARGUMENT" && name.test(e.message));
  }
});
