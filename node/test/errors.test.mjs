// The error contract: every code of the core maps to one error class with its fields.
// The list of codes comes from the core (ErrorCode::ALL); a code added there without a row
// here fails "every core code has a row".
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import net from "node:net";

import * as ds from "../dist/index.js";
import { fromDescription } from "../dist/errors.js";

import { injectError, useServer } from "./server.mjs";

const server = useServer();
const native = createRequire(import.meta.url)("../native/index.js");
const URL_ = "http://127.0.0.1:1/v1/stream/example";
const WAIT = { retryAfterMs: 1500, headers: { "retry-after": "2" } };

// code -> [class, status, retryable, extra fields]
const CONTRACT = {
  NOT_FOUND: [ds.FetchError, 404, false, {}],
  CONFLICT_EXISTS: [ds.FetchError, 409, false, {}],
  CONFLICT: [ds.FetchError, 409, false, {}],
  CONFLICT_SEQ: [ds.FetchError, 409, false, {}],
  STREAM_CLOSED: [ds.StreamClosedError, 409, false, { finalOffset: "0000000000000042", streamClosed: true }],
  BAD_REQUEST: [ds.FetchError, 400, false, {}],
  UNAUTHORIZED: [ds.FetchError, 401, false, {}],
  FORBIDDEN: [ds.FetchError, 403, false, {}],
  GONE: [ds.FetchError, 410, false, {}],
  PAYLOAD_TOO_LARGE: [ds.FetchError, 413, false, {}],
  RATE_LIMITED: [ds.RateLimitedError, 429, true, WAIT],
  BUSY: [ds.FetchError, 503, true, { headers: { "retry-after": "2" } }],
  SERVER_ERROR: [ds.FetchError, 500, true, { headers: {} }],
  UNEXPECTED_STATUS: [ds.FetchError, 418, false, {}],
  STALE_EPOCH: [ds.StaleEpochError, 403, false, { producerId: "writer-1", epoch: 3, currentEpoch: 7 }],
  SEQUENCE_GAP: [ds.SequenceGapError, 409, false, { expectedSeq: 5, receivedSeq: 9 }],
  PRODUCER_SESSION_CONFLICT: [
    ds.ProducerSessionConflictError,
    undefined,
    false,
    { producerId: "agent-7", epoch: 3, serverSeq: 41 },
  ],
  NETWORK_ERROR: [ds.NetworkError, undefined, true, {}],
  TIMEOUT: [ds.StreamTimeoutError, undefined, true, {}],
  PARSE_ERROR: [ds.ParseError, undefined, false, {}],
  INVALID_ARGUMENT: [ds.InvalidArgumentError, undefined, false, {}],
  ALREADY_CONSUMED: [ds.InvalidStateError, undefined, false, {}],
  ALREADY_CLOSED: [ds.InvalidStateError, undefined, false, {}],
  CANCELLED: [ds.FetchBackoffAbortError, undefined, false, {}],
  BUFFER_FULL: [ds.BufferFullError, undefined, false, { requested: 10, buffered: 60, limit: 64 }],
  FENCED: [ds.FencedError, 409, false, { subscriptionCode: "FENCED" }],
  ALREADY_CLAIMED: [ds.AlreadyClaimedError, 409, false, { subscriptionCode: "ALREADY_CLAIMED", currentHolder: "worker-2" }],
  NO_PENDING_WORK: [ds.NoPendingWorkError, 409, false, { subscriptionCode: "NO_PENDING_WORK" }],
  INVALID_SIGNATURE: [ds.InvalidSignatureError, undefined, false, { check: "bad_signature" }],
};
// Codes whose example concerns a stream URL.
const WITH_URL = new Set([
  "NOT_FOUND", "CONFLICT_EXISTS", "CONFLICT", "CONFLICT_SEQ", "STREAM_CLOSED", "BAD_REQUEST",
  "UNAUTHORIZED", "FORBIDDEN", "GONE", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", "BUSY", "SERVER_ERROR",
  "UNEXPECTED_STATUS", "NETWORK_ERROR",
]);
// Answers whose meaning is in headers, not in a body the client keeps.
const WITHOUT_SERVER_MESSAGE = new Set(["STREAM_CLOSED", "STALE_EPOCH", "SEQUENCE_GAP"]);

test("every core code has a row", () => {
  const codes = native.errorCodes();
  assert.equal(new Set(codes).size, codes.length);
  const missing = codes.filter((c) => !(c in CONTRACT));
  assert.deepEqual(missing, [], `core error codes without a Node mapping: ${missing}`);
  const stale = Object.keys(CONTRACT).filter((c) => !codes.includes(c));
  assert.deepEqual(stale, [], `rows for codes the core no longer has: ${stale}`);
});

for (const [code, [cls, status, retryable, extra]] of Object.entries(CONTRACT)) {
  test(`${code} maps to ${cls.name} with its fields`, () => {
    const err = fromDescription(native.errorForCode(code));
    assert.equal(Object.getPrototypeOf(err), cls.prototype, `${code}: ${err.constructor.name}`);
    assert.ok(err instanceof ds.DurableStreamError && err instanceof Error);
    assert.equal(err.name, cls.name);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    assert.equal(err.retryable, retryable);
    assert.ok(err.message.length > 0);
    const carries = status !== undefined && !WITHOUT_SERVER_MESSAGE.has(code);
    assert.equal(err.details.serverMessage, carries ? "server says no" : undefined);
    if (err instanceof ds.FetchError) {
      assert.equal(err.url, URL_);
      assert.equal(err.text, code === "STREAM_CLOSED" ? undefined : "server says no");
    }
    for (const [name, value] of Object.entries(extra)) {
      assert.deepEqual(err[name], value, `${code}.${name}`);
    }
    // The cause chain: every error has `cause` and `attempts` (undefined when there is none).
    assert.ok("attempts" in err, `${code}.attempts`);
    assert.equal(err.url, WITH_URL.has(code) ? URL_ : undefined, `${code}.url`);
    assert.equal(err.attempts, undefined);
    if (code === "NETWORK_ERROR") {
      assert.equal(Object.getPrototypeOf(err.cause), ds.TransportError.prototype);
      assert.equal(err.cause.code, "ECONNREFUSED");
      assert.equal(err.cause.kind, "connection_refused");
      assert.match(err.cause.message, /connection refused/);
    } else if (code === "PARSE_ERROR") {
      assert.equal(Object.getPrototypeOf(err.cause), SyntaxError.prototype);
      assert.match(err.cause.message, /line 1 column 2/);
    } else {
      assert.equal(err.cause, undefined, `${code}.cause`);
    }
  });
}

for (const [code, [cls, status, retryable, extra]] of Object.entries(CONTRACT)) {
  test(`${code} after retries keeps ${cls.name} and its fields, with the last attempt as cause`, () => {
    const plain = fromDescription(native.errorForCode(code));
    const err = fromDescription(native.errorForCode(code, true));
    assert.equal(Object.getPrototypeOf(err), cls.prototype, `${code}: ${err.constructor.name}`);
    assert.deepEqual([err.code, err.status, err.retryable, err.attempts], [code, status, retryable, 3]);
    assert.deepEqual([err.url, err.details.serverMessage], [plain.url, plain.details.serverMessage]);
    for (const [name, value] of Object.entries(extra)) {
      assert.deepEqual(err[name], value, `${code}.${name}`);
    }
    assert.equal(err.message, `${plain.message} (gave up after 3 attempts)`);
    const last = err.cause;
    assert.equal(Object.getPrototypeOf(last), cls.prototype);
    assert.deepEqual([last.message, last.attempts], [plain.message, undefined]);
    assert.equal(last.cause?.constructor, plain.cause?.constructor);
  });
}

function closedPort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const FAST = { initialDelay: 5, maxDelay: 10, multiplier: 2, maxRetries: 2 };

test("the cause chain of a refused connection: retries -> last attempt -> transport error", async () => {
  const url = `http://127.0.0.1:${await closedPort()}/v1/stream/nothing-listens`;
  const once = await new ds.DurableStream({ url, backoffOptions: { maxRetries: 0 } }).head().catch((e) => e);
  assert.ok(once instanceof ds.NetworkError, String(once));
  assert.deepEqual([once.code, once.status, once.retryable, once.attempts], ["NETWORK_ERROR", undefined, true, undefined]);
  assert.equal(once.url, url);
  assert.ok(once.cause instanceof ds.TransportError);
  assert.equal(once.cause.code, "ECONNREFUSED");
  assert.match(once.cause.message, /refused/i);

  for (const run of [
    () => new ds.DurableStream({ url, backoffOptions: FAST }).head(),
    () => ds.stream({ url, live: false, backoffOptions: FAST }),
  ]) {
    const err = await run().catch((e) => e);
    assert.ok(err instanceof ds.DurableStreamError, String(err));
    assert.equal(err.code, "NETWORK_ERROR");
    assert.equal(err.attempts, 3);
    assert.match(err.message, /\(gave up after 3 attempts\)$/);
    assert.ok(err instanceof ds.NetworkError);
    const last = err.cause;
    assert.ok(last instanceof ds.NetworkError);
    assert.deepEqual([last.code, last.attempts], ["NETWORK_ERROR", undefined]);
    assert.ok(last.cause instanceof ds.TransportError);
    assert.equal(last.cause.code, "ECONNREFUSED");
    assert.equal(last.cause.cause, undefined);
  }
});

test("the cause chain of a 503 until the retries run out: BUSY, with the last 503 as cause", async () => {
  const url = server.streamUrl("busy");
  const h = await ds.DurableStream.create({ url, contentType: "application/json", backoffOptions: FAST });
  await injectError(server.url, { path: new URL(url).pathname, status: 503, count: 10, method: "HEAD" });
  const err = await h.head().catch((e) => e);
  assert.ok(err instanceof ds.FetchError, String(err));
  assert.deepEqual([err.code, err.status, err.retryable, err.attempts], ["BUSY", 503, true, 3]);
  assert.equal(err.url, url);
  const last = err.cause;
  assert.ok(last instanceof ds.FetchError);
  assert.deepEqual([last.code, last.status, last.attempts, last.cause], ["BUSY", 503, undefined, undefined]);
});

test("one family per code: the invalid-state errors share a class", () => {
  for (const code of ["ALREADY_CONSUMED", "ALREADY_CLOSED", "BUFFER_FULL"]) {
    assert.ok(fromDescription(native.errorForCode(code)) instanceof ds.InvalidStateError, code);
  }
  assert.ok(fromDescription(native.errorForCode("RATE_LIMITED")) instanceof ds.FetchError);
});

test("an unknown code is refused by the native hook", () => {
  assert.throws(() => native.errorForCode("NO_SUCH_CODE"), /NO_SUCH_CODE/);
});

test("the reference constructors", () => {
  const stale = new ds.StaleEpochError(4);
  assert.equal(stale.currentEpoch, 4);
  assert.equal(stale.code, "STALE_EPOCH");
  const gap = new ds.SequenceGapError(2, 6);
  assert.deepEqual([gap.expectedSeq, gap.receivedSeq], [2, 6]);
  const closed = new ds.StreamClosedError("http://x/s", "12");
  assert.deepEqual([closed.code, closed.status, closed.finalOffset, closed.streamClosed], ["STREAM_CLOSED", 409, "12", true]);
  assert.ok(closed instanceof ds.FetchError && closed instanceof ds.DurableStreamError);
  const fe = new ds.FetchError(404, "nope", undefined, { a: "b" }, "http://x/s");
  assert.deepEqual([fe.status, fe.text, fe.headers, fe.url, fe.code], [404, "nope", { a: "b" }, "http://x/s", "NOT_FOUND"]);
  assert.match(fe.message, /HTTP Error 404 at http:\/\/x\/s: nope/);
  assert.equal(new ds.FetchBackoffAbortError().code, "CANCELLED");
});
