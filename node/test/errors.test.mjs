// The error contract: every code of the core maps to one error class with its fields.
// The list of codes comes from the core (ErrorCode::ALL); a code added there without a row
// here fails "every core code has a row".
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import * as ds from "../dist/index.js";
import { fromDescription } from "../dist/errors.js";

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
  NETWORK_ERROR: [ds.DurableStreamError, undefined, true, {}],
  TIMEOUT: [ds.DurableStreamError, undefined, true, {}],
  PARSE_ERROR: [ds.DurableStreamError, undefined, false, {}],
  INVALID_ARGUMENT: [ds.DurableStreamError, undefined, false, {}],
  ALREADY_CONSUMED: [ds.DurableStreamError, undefined, false, {}],
  ALREADY_CLOSED: [ds.DurableStreamError, undefined, false, {}],
  CANCELLED: [ds.FetchBackoffAbortError, undefined, false, {}],
  BUFFER_FULL: [ds.BufferFullError, undefined, false, { requested: 10, buffered: 60, limit: 64 }],
  FENCED: [ds.FencedError, 409, false, { subscriptionCode: "FENCED" }],
  ALREADY_CLAIMED: [ds.AlreadyClaimedError, 409, false, { subscriptionCode: "ALREADY_CLAIMED", currentHolder: "worker-2" }],
  NO_PENDING_WORK: [ds.NoPendingWorkError, 409, false, { subscriptionCode: "NO_PENDING_WORK" }],
  INVALID_SIGNATURE: [ds.InvalidSignatureError, undefined, false, { check: "bad_signature" }],
};
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
  });
}

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
