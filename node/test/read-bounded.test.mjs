// Reads against a local misbehaving server: messages arrive before a response ends, through
// the web ReadableStream and the async iterable alike.
import { DurableStreamError, stream } from "durable-streams-client";

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";

/** A loopback server that sends the first message of a JSON array, then waits for
 * `release()` (at most 10 s) before the rest. */
async function pausedServer() {
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  const server = createServer((_req, res) => {
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Stream-Next-Offset": "o1",
      "Stream-Up-To-Date": "true",
    });
    res.write('[{"a":1},');
    const timer = setTimeout(release, 10_000);
    released.then(() => {
      clearTimeout(timer);
      res.end("2]");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/s`;
  let isReleased = false;
  return {
    url,
    released: () => isReleased,
    release: () => {
      isReleased = true;
      release();
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

test("jsonStream hands on a message before its response ends", async () => {
  const s = await pausedServer();
  try {
    const res = await stream({ url: s.url, live: false });
    const seen = [];
    for await (const message of res.jsonStream()) {
      seen.push(message, s.released());
      s.release();
    }
    assert.deepEqual(seen, [{ a: 1 }, false, 2, true]);
    assert.equal(res.offset, "o1");
  } finally {
    s.release();
    await s.close();
  }
});

test("a reader of the web ReadableStream gets the first message early too", async () => {
  const s = await pausedServer();
  try {
    const res = await stream({ url: s.url, live: false });
    const reader = res.jsonStream().getReader();
    const first = await reader.read();
    assert.deepEqual(first, { done: false, value: { a: 1 } });
    assert.equal(s.released(), false);
    // Inside the response there is no checkpoint yet: the offset is still the start.
    assert.equal(res.offset, "-1");
    s.release();
    assert.deepEqual(await reader.read(), { done: false, value: 2 });
    assert.equal((await reader.read()).done, true);
    assert.equal(res.offset, "o1");
  } finally {
    s.release();
    await s.close();
  }
});

test("json() over more responses than one join takes keeps every message in order", async () => {
  // 1,100 responses of one message each (every third one an array): more array texts than
  // `json()` joins in one call (1,024).
  const last = 1099;
  const server = createServer((req, res) => {
    const raw = new URL(req.url, "http://x").searchParams.get("offset");
    const k = raw === "-1" ? 0 : Number(raw);
    res.writeHead(200, {
      "Content-Type": "application/json",
      // Offsets compare as strings: zero-padded, they sort as the numbers do.
      "Stream-Next-Offset": String(k + 1).padStart(6, "0"),
      ...(k === last ? { "Stream-Up-To-Date": "true" } : {}),
    });
    res.end(JSON.stringify([k % 3 === 0 ? [k] : { k }]));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const res = await stream({ url: `http://127.0.0.1:${server.address().port}/s`, live: false });
    const items = await res.json();
    assert.equal(items.length, last + 1);
    items.forEach((m, k) => assert.deepEqual(m, k % 3 === 0 ? [k] : { k }));
    assert.equal(res.offset, String(last + 1).padStart(6, "0"));
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test("json() stops at maxReadBytes and jsonStream at maxChunkBytes, naming them", async () => {
  const server = createServer((_req, res) => {
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Stream-Next-Offset": "o1",
      "Stream-Up-To-Date": "true",
    });
    res.end(`[1,"${"y".repeat(5000)}",2]`);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/s`;
  try {
    const whole = await stream({ url, live: false, maxReadBytes: 1024 });
    await assert.rejects(
      whole.json(),
      (e) => e.code === "PARSE_ERROR" && /max_read_bytes \(1024 bytes\)/.test(e.message),
    );
    // Infinity (or a number past 2^53) is no limit.
    const unlimited = await stream({ url, live: false, maxReadBytes: Infinity });
    assert.equal((await unlimited.json()).length, 3);
    const chunked = await stream({ url, live: false, maxChunkBytes: 1024 });
    await assert.rejects(
      (async () => {
        for await (const m of chunked.jsonStream()) assert.equal(m, 1);
      })(),
      (e) => e.code === "PARSE_ERROR" && /max_chunk_bytes \(1024 bytes\)/.test(e.message),
    );
    // Unset reaches the core unset; a bad value gets the core's error, naming the option.
    for (const [bad, name] of [
      [{ maxChunkBytes: 0 }, /maxChunkBytes/],
      [{ maxReadBytes: 0 }, /maxReadBytes/],
      [{ maxChunkBytes: -1 }, /maxChunkBytes/],
      [{ maxReadBytes: 1.5 }, /maxReadBytes/],
      [{ maxReadBytes: Number.NaN }, /maxReadBytes.* got NaN/],
      [{ maxReadBytes: -Infinity }, /maxReadBytes.* got -Infinity/],
    ]) {
      await assert.rejects(stream({ url, ...bad }), (e) => {
        assert.ok(e instanceof DurableStreamError, String(e));
        assert.equal(e.code, "INVALID_ARGUMENT");
        assert.match(e.message, name);
        return true;
      });
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

// An SSE server that sends 2,000 messages of 1 KiB in 1,000 data events, then nothing until
// `release()` (or 10 s): only then the control event (closing the stream) at offset "o2". Its
// catch-up answers "o1", up to date.
async function sseRunServer() {
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  const pad = "p".repeat(1000);
  const server = createServer((req, res) => {
    if (!req.url.includes("live=sse")) {
      res.writeHead(200, {
        "Content-Type": "application/json",
        "Stream-Next-Offset": "o1",
        "Stream-Up-To-Date": "true",
      });
      res.end("[]");
      return;
    }
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    for (let e = 0; e < 1000; e++) {
      const msgs = [2 * e, 2 * e + 1].map((i) => JSON.stringify({ i, pad }));
      res.write(`event: data\ndata:[${msgs.join(",")}]\n\n`);
    }
    const timer = setTimeout(release, 10_000);
    released.then(() => {
      clearTimeout(timer);
      res.end('event: control\ndata:{"streamNextOffset":"o2","streamClosed":true}\n\n');
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/s`,
    release: () => release(),
    close: () => {
      release();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

test("an SSE run of data events without a control event streams before the control event", async () => {
  const srv = await sseRunServer();
  let isReleased = false;
  try {
    const res = await stream({ url: srv.url, live: "sse", maxChunkBytes: 16 * 1024 });
    let next = 0;
    let allBeforeRelease = false;
    for await (const message of res.jsonStream()) {
      assert.equal(message.i, next);
      next += 1;
      if (next === 2000) {
        allBeforeRelease = !isReleased;
        // Not a checkpoint yet: the offset is still the catch-up's.
        assert.equal(res.offset, "o1");
        isReleased = true;
        srv.release();
      }
    }
    assert.equal(next, 2000);
    assert.ok(allBeforeRelease, "the messages waited for the control event");
    assert.equal(res.offset, "o2");
  } finally {
    await srv.close();
  }
});

test("batches before the control event say they are not checkpoints; the one after it is", async () => {
  const srv = await sseRunServer();
  try {
    const res = await stream({ url: srv.url, live: "sse", maxChunkBytes: 16 * 1024 });
    const batches = [];
    let count = 0;
    await new Promise((resolve, reject) => {
      res.subscribeJson((batch) => {
        batches.push({ ...batch, items: batch.items.length });
        count += batch.items.length;
        if (count === 2000) srv.release();
        if (batch.streamClosed) resolve();
      });
      res.closed.catch(reject);
    });
    assert.equal(count, 2000);
    // The catch-up's empty answer is a checkpoint at o1.
    const parts = batches.filter((b) => !b.checkpoint);
    assert.ok(parts.length >= 2, `the data came in parts: ${JSON.stringify(batches.map((b) => b.items))}`);
    for (const b of parts) {
      assert.equal(b.offset, "o1", "a part keeps the last checkpoint's offset");
      assert.equal(b.upToDate, false);
      assert.equal(b.streamClosed, false);
      assert.ok(b.items > 0 && b.items <= 32, `a part of at most maxChunkBytes: ${b.items} messages`);
    }
    const last = batches.at(-1);
    assert.equal(last.checkpoint, true);
    assert.equal(last.offset, "o2");
    assert.equal(last.streamClosed, true);
    assert.equal(parts.reduce((n, b) => n + b.items, 0) + last.items, 2000);
  } finally {
    await srv.close();
  }
});

test("data that does not advance the offset is a PARSE_ERROR, not a loop", async () => {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests += 1;
    res.writeHead(200, { "Content-Type": "text/plain", "Stream-Next-Offset": "-1" });
    res.end("data");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/s`;
  try {
    const res = await stream({ url, live: false });
    await assert.rejects(
      res.text(),
      (e) => e.code === "PARSE_ERROR" && /without advancing the offset/.test(e.message),
    );
    assert.equal(requests, 1);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
