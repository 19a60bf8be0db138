// Code in the style the @durable-streams/client documentation shows. It runs on this package
// with only the import line changed: `from "@durable-streams/client"` became the line below.
import { DurableStream, IdempotentProducer, stream } from "durable-streams-client";

import assert from "node:assert/strict";
import { test } from "node:test";
import { useServer } from "./server.mjs";

const server = useServer();

test("create, append, catch-up read as JSON", async () => {
  const url = server.streamUrl("ref");
  const handle = await DurableStream.create({ url, contentType: "application/json" });
  await handle.append(JSON.stringify({ type: "message", text: "hello" }));
  await handle.append(JSON.stringify({ type: "message", text: "world" }));

  const res = await handle.stream({ live: false });
  const items = await res.json();
  assert.deepEqual(items, [
    { type: "message", text: "hello" },
    { type: "message", text: "world" },
  ]);
  assert.equal(res.upToDate, true);
  assert.match(res.offset, /\d/);
});

test("stream() function: text and body catch-up, resuming from a saved offset", async () => {
  const url = server.streamUrl("ref-text");
  const handle = await DurableStream.create({ url, contentType: "text/plain" });
  await handle.append("hello ");
  const first = await stream({ url, offset: "-1", live: false });
  assert.equal(await first.text(), "hello ");
  const saved = first.offset;
  await handle.append("world");
  const rest = await stream({ url, offset: saved, live: false });
  assert.equal(new TextDecoder().decode(await rest.body()), "world");
});

test("jsonStream / textStream / bodyStream iterate with for await", async () => {
  const url = server.streamUrl("ref-iter");
  const handle = await DurableStream.create({ url, contentType: "application/json" });
  for (let i = 0; i < 3; i++) await handle.append(JSON.stringify({ i }));
  const seen = [];
  for await (const item of (await handle.stream({ live: false })).jsonStream()) seen.push(item.i);
  assert.deepEqual(seen, [0, 1, 2]);

  const textUrl = server.streamUrl("ref-iter-text");
  const th = await DurableStream.create({ url: textUrl, contentType: "text/plain" });
  await th.append("a");
  await th.append("b");
  let text = "";
  for await (const chunk of (await th.stream({ live: false })).textStream()) text += chunk;
  assert.equal(text, "ab");
  let bytes = 0;
  for await (const chunk of (await th.stream({ live: false })).bodyStream()) bytes += chunk.length;
  assert.equal(bytes, 2);
});

test("live long-poll subscription receives appends made after it started", async () => {
  const url = server.streamUrl("ref-live");
  const handle = await DurableStream.create({ url, contentType: "application/json" });
  const res = await handle.stream({ live: "long-poll", offset: "now" });
  const received = [];
  const done = new Promise((resolve) => {
    const unsubscribe = res.subscribeJson(async (batch) => {
      received.push(...batch.items);
      if (received.length >= 2) {
        unsubscribe();
        resolve();
      }
    });
  });
  await handle.append(JSON.stringify({ n: 1 }));
  await handle.append(JSON.stringify({ n: 2 }));
  await done;
  assert.deepEqual(received, [{ n: 1 }, { n: 2 }]);
});

test("live SSE read ends when the stream is closed", async () => {
  const url = server.streamUrl("ref-sse");
  const handle = await DurableStream.create({ url, contentType: "application/json" });
  const res = await handle.stream({ live: "sse" });
  const items = [];
  const reading = (async () => {
    for await (const item of res.jsonStream()) items.push(item);
  })();
  await handle.append(JSON.stringify({ n: 1 }));
  await handle.close();
  await reading;
  assert.deepEqual(items, [{ n: 1 }]);
  assert.equal(res.streamClosed, true);
});

test("subscribeText and subscribeBytes deliver chunks with offsets", async () => {
  const url = server.streamUrl("ref-sub");
  const handle = await DurableStream.create({ url, contentType: "text/plain" });
  await handle.append("xyz");
  const texts = [];
  (await handle.stream({ live: false })).subscribeText((c) => {
    texts.push(c.text);
  });
  const res = await handle.stream({ live: false });
  const sizes = [];
  res.subscribeBytes(async (c) => {
    sizes.push(c.data.length);
    assert.ok(c.offset);
  });
  await res.closed;
  assert.deepEqual(sizes, [3]);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(texts, ["xyz"]);
});

test("IdempotentProducer with autoClaim: append, flush, close", async () => {
  const url = server.streamUrl("ref-producer");
  const handle = await DurableStream.create({ url, contentType: "application/json" });
  const errors = [];
  const producer = new IdempotentProducer(handle, "order-service-1", {
    autoClaim: true,
    lingerMs: 5,
    onError: (err) => errors.push(err),
  });
  for (let i = 0; i < 100; i++) producer.append(JSON.stringify({ orderId: i }));
  await producer.flush();
  assert.equal(producer.pendingCount, 0);
  const { finalOffset } = await producer.close();
  assert.ok(finalOffset);
  assert.deepEqual(errors, []);

  const items = await (await stream({ url, live: false })).json();
  assert.equal(items.length, 100);
  assert.deepEqual(items[99], { orderId: 99 });
  assert.equal((await handle.head()).streamClosed, true);
});
