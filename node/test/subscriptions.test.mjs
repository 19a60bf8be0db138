// Subscriptions against the reference server: management, pull-wake workers (handler and
// async-iterator forms, AbortSignal), lease fencing, webhook verification and callbacks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

import * as ds from "../dist/index.js";
import { useServer } from "./server.mjs";

const server = useServer(["--long-poll-ms", "1500", "--webhooks"]);
const subs = () => new ds.Subscriptions(`${server.url}/v1/stream/`);
const prefix = (name) => `node-subs-${name}-${randomUUID().slice(0, 8)}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function jsonStream(s, path) {
  const h = s.stream(path);
  await h.create({ contentType: "application/json" });
  return h;
}

/** A pull-wake subscription over one new JSON stream: its wake stream, path, id and handle. */
async function oneStreamSubscription(s, name, leaseTtlMs) {
  const p = prefix(name);
  const wake = `${p}/wake`;
  const path = `${p}/s`;
  await jsonStream(s, wake);
  const h = await jsonStream(s, path);
  const id = `sub-${p}`;
  await s.create(id, { wakeStream: wake, streams: [path], leaseTtlMs });
  return { wake, path, id, h };
}

async function tail(s, path) {
  return (await s.stream(path).head()).offset;
}

async function until(what, check) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test("config is checked before any request", async () => {
  const s = subs();
  await assert.rejects(s.create("x", { wakeStream: "w" }), /pattern or at least one/);
  await assert.rejects(s.create("x", { wakeStream: "w", pattern: "a/*", leaseTtlMs: 500 }), /lease/);
  await assert.rejects(
    s.create("x", { wakeStream: "w", webhookUrl: "http://127.0.0.1:1/h", pattern: "a/*" }),
    (e) => e instanceof ds.DurableStreamError && e.code === "INVALID_ARGUMENT",
  );
});

test("three racing workers process every message exactly once", async () => {
  const s = subs();
  const p = prefix("race");
  const wake = `${p}/wake`;
  await jsonStream(s, wake);
  const extra = `${p}/extra/a`;
  await jsonStream(s, extra);
  const id = `sub-${p}`;
  const cfg = { wakeStream: wake, pattern: `${p}/events/*`, streams: [extra], leaseTtlMs: 3000 };
  const created = await s.create(id, cfg);
  assert.equal(created.created, true);
  assert.equal(created.leaseTtlMs, 3000);
  assert.equal((await s.create(id, cfg)).created, false);
  await assert.rejects(s.create(id, { ...cfg, leaseTtlMs: 4000 }), (e) => e.code === "CONFLICT_EXISTS" && e.status === 409);

  const other = `${p}/extra/b`;
  await s.addStreams(id, [other]);
  assert.notEqual((await s.get(id)).ackedOffset(other), undefined);
  await s.removeStream(id, other);
  assert.equal((await s.get(id)).ackedOffset(other), undefined);

  const paths = [0, 1, 2].map((i) => `${p}/events/${i}`);
  for (const path of paths) await jsonStream(s, path);
  paths.push(extra);

  const seen = [];
  const ac = new AbortController();
  const runs = [0, 1, 2].map((w) =>
    s.worker(id, `w${w}`, wake).run(
      async (item) => {
        for (const m of item.messages) seen.push(`${item.stream}|${m.s}|${m.n}`);
      },
      { signal: ac.signal },
    ),
  );
  const N = 5;
  for (let n = 0; n < N; n++) {
    for (const [i, path] of paths.entries()) await s.stream(path).append(JSON.stringify({ s: i, n }));
  }
  const total = paths.length * N;
  await until("every message acked", async () => {
    if (seen.length < total) return false;
    const sub = await s.get(id);
    for (const path of paths) if (sub.ackedOffset(path) !== (await tail(s, path))) return false;
    return true;
  });
  ac.abort();
  const offsets = await Promise.all(runs);
  assert.equal(seen.length, total, `duplicates or losses: ${seen}`);
  const want = paths.flatMap((path, i) => [...Array(N).keys()].map((n) => `${path}|${i}|${n}`));
  assert.deepEqual([...seen].sort(), want.sort());
  for (const o of offsets) assert.ok(typeof o === "string" && o.length > 0);
  await s.delete(id);
  await assert.rejects(s.get(id), (e) => e.code === "NOT_FOUND");
});

test("a lost lease is fenced and the late ack advances nothing", async () => {
  const s = subs();
  const { wake, path, id, h } = await oneStreamSubscription(s, "fence", 1000);
  const before = (await s.get(id)).ackedOffset(path);
  await h.append(JSON.stringify({ n: 1 }));
  const end = await tail(s, path);

  const first = await s.claim(id, "slow");
  assert.equal(first.streams[0].path, path);
  assert.equal(first.streams[0].hasPending, true);
  await assert.rejects(s.claim(id, "other"), (e) => e instanceof ds.AlreadyClaimedError && e.currentHolder === "slow");
  await sleep(1600); // no heartbeat: the 1 s lease runs out
  const second = await s.claim(id, "fast");
  assert.ok(second.generation > first.generation);

  await assert.rejects(s.ack(first, { [path]: end }, { done: true }), (e) => {
    assert.ok(e instanceof ds.FencedError && e instanceof ds.SubscriptionError);
    assert.equal(e.status, 409);
    return true;
  });
  assert.equal((await s.get(id)).ackedOffset(path), before);
  assert.equal((await s.ack(second, { [path]: end }, { done: true })).ok, true);
  assert.equal((await s.get(id)).ackedOffset(path), end);
  await assert.rejects(s.claim(id, "fast"), ds.NoPendingWorkError);
});

test("a failing handler leaves the work pending and it is woken again", async () => {
  const s = subs();
  const { wake, path, id, h } = await oneStreamSubscription(s, "fail", 1000);
  const before = (await s.get(id)).ackedOffset(path);
  await h.append(JSON.stringify({ n: 1 }));
  const end = await tail(s, path);

  const calls = [];
  const ac = new AbortController();
  const queue = s.worker(id, "w", wake).jobs({ signal: ac.signal });
  for await (const job of queue) {
    calls.push([job.item.offset, job.item.messages]);
    if (calls.length === 1) {
      assert.equal((await s.get(id)).ackedOffset(path), before);
      job.fail("boom");
      continue;
    }
    await sleep(1500); // past the 1 s lease: heartbeats keep it
    job.ack();
    await until("the ack", async () => (await s.get(id)).ackedOffset(path) === end);
    ac.abort();
  }
  assert.deepEqual(calls, [
    [end, [{ n: 1 }]],
    [end, [{ n: 1 }]],
  ]);
  assert.ok(queue.offset);
});

test("job messages are what the server sent: keys in their order", async () => {
  // The core once parsed messages into maps that sorted their keys.
  const s = subs();
  const { wake, path, id, h } = await oneStreamSubscription(s, "exact", 5000);
  for (const m of ['{"b": 1, "a": {"z": null, "y": [2.5, "\\u00e9"]}}', "12.50", '"x"']) await h.append(m);
  const sent = await (await h.stream({ json: true })).text();
  const ac = new AbortController();
  for await (const job of s.worker(id, "q", wake).jobs({ signal: ac.signal })) {
    assert.equal(JSON.stringify(job.item.messages), sent);
    assert.deepEqual(Object.keys(job.item.messages[0]), ["b", "a"]);
    assert.deepEqual(Object.keys(job.item.messages[0].a), ["z", "y"]);
    job.ack();
    ac.abort();
  }
});

test("webhooks: verified deliveries, synchronous done, asynchronous callback, rejections", async () => {
  const s = subs();
  const verifier = new ds.WebhookVerifier(s.jwksUrl);
  const deliveries = [];
  let answer = ds.WEBHOOK_DONE;
  const receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      try {
        const wake = await verifier.verify(req.headers, body);
        deliveries.push({ sig: req.headers["webhook-signature"], body, wake });
        res.writeHead(200, { "content-type": "application/json" }).end(answer);
      } catch (e) {
        deliveries.push({ error: e });
        res.writeHead(401).end();
      }
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${receiver.address().port}/hook`;
    const p = prefix("hook");
    const path = `${p}/wh/a`;
    const h = await jsonStream(s, path);
    const id = `sub-${p}`;
    const sub = await s.create(id, { webhookUrl: url, pattern: `${p}/wh/*`, leaseTtlMs: 5000 });
    assert.equal(sub.kind, "webhook");
    assert.equal(sub.signing?.jwksUrl, s.jwksUrl);

    await h.append(JSON.stringify({ n: 1 }));
    await until("a delivery", () => deliveries.length >= 1);
    const d1 = deliveries[0];
    assert.ok(d1.wake, d1.error);
    const end1 = await tail(s, path);
    assert.equal(d1.wake.subscriptionId, id);
    assert.deepEqual([d1.wake.streams[0].path, d1.wake.streams[0].tailOffset], [path, end1]);
    await until("synchronous done acked", async () => (await s.get(id)).ackedOffset(path) === end1);

    answer = "{}";
    await h.append(JSON.stringify({ n: 2 }));
    await until("a second delivery", () => deliveries.length >= 2);
    const d2 = deliveries[1];
    assert.ok(d2.wake, d2.error);
    assert.ok(d2.wake.callbackUrl);
    const end2 = await tail(s, path);
    const r = await s.callback(d2.wake, { [path]: end2 }, { done: true });
    assert.deepEqual(r, { ok: true, nextWake: false });
    assert.equal((await s.get(id)).ackedOffset(path), end2);
    await assert.rejects(s.callback(d2.wake, { [path]: end2 }, { done: true }), ds.FencedError);

    const check = async (headers, body, nowMs) => {
      const e = await verifier.verify(headers, body, { nowMs }).then(
        () => assert.fail("verified"),
        (err) => err,
      );
      assert.ok(e instanceof ds.InvalidSignatureError, String(e));
      assert.equal(e.code, "INVALID_SIGNATURE");
      return e.check;
    };
    const sig = d2.sig;
    const tampered = Buffer.from(d2.body.toString().replace('"generation":', '"generation": '));
    assert.notDeepEqual(tampered, d2.body);
    assert.equal(await check({ "webhook-signature": sig }, tampered), "bad_signature");
    assert.equal(await check({ "webhook-signature": sig }, d2.body, Date.now() + 600_000), "timestamp_out_of_window");
    const kid = sig.split(",").find((x) => x.startsWith("kid=")).slice(4);
    assert.equal(await check(new Headers({ "Webhook-Signature": sig.replace(kid, "ds_unknown") }), d2.body), "unknown_key");
    assert.equal(await check({}, d2.body), "missing_header");
    assert.equal(await check({ "webhook-signature": "t=1" }, d2.body), "malformed_header");
    await s.delete(id);
  } finally {
    receiver.close();
  }
});

test("a time past what the system time holds is an invalid argument", async () => {
  // nowMs of 1e22 (1e19 s) made the addon panic: adding it to the epoch overflowed. The check
  // comes before any request.
  const verifier = new ds.WebhookVerifier("http://127.0.0.1:9/v1/stream/__ds/jwks.json");
  const headers = { "webhook-signature": "t=1,kid=k,ed25519=x" };
  await assert.rejects(verifier.verify(headers, Buffer.from("{}"), { nowMs: 1e22 }), (e) => {
    assert.ok(e instanceof ds.InvalidArgumentError, String(e));
    assert.match(e.message, /past what the system time holds/);
    return true;
  });
});
