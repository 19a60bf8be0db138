// Conformance adapter for the npm package durable-streams-client: reads one JSON command per
// line on stdin, drives the package's public API, writes one JSON result per line on stdout.
// It only translates: every rule (validation, retries, parsing, batching) comes from the
// library. Logs go to stderr.

import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import {
  DurableStream,
  DurableStreamError,
  IdempotentProducer,
} from "../../../node/dist/index.js";

const { version } = createRequire(import.meta.url)("../../../node/package.json");

let serverUrl = "";
const contentTypes = new Map();
const producers = new Map();
/** name -> { fn, last } for set-dynamic-header / set-dynamic-param. */
let dynHeaders = new Map();
let dynParams = new Map();

const urlOf = (cmd) => {
  if (!cmd.path) throw invalid("missing path");
  return serverUrl + cmd.path;
};
const invalid = (m) => new DurableStreamError(m, "INVALID_ARGUMENT");

function dynamic(map) {
  const out = {};
  for (const [name, d] of map) out[name] = d.fn;
  return out;
}

function sent(cmd, result) {
  const headers = {};
  for (const [n, d] of dynHeaders) if (d.last !== undefined) headers[n] = d.last;
  Object.assign(headers, cmd.headers ?? {});
  const params = {};
  for (const [n, d] of dynParams) if (d.last !== undefined) params[n] = d.last;
  if (Object.keys(headers).length > 0) result.headersSent = headers;
  if (Object.keys(params).length > 0) result.paramsSent = params;
  return result;
}

function handle(cmd, withDynamic = false) {
  return new DurableStream({
    url: urlOf(cmd),
    contentType: contentTypes.get(cmd.path),
    headers: withDynamic ? dynamic(dynHeaders) : undefined,
    params: withDynamic ? dynamic(dynParams) : undefined,
    // The library retries nothing unsafe by default; the suite expects appends to survive
    // transient faults and reads to give up once they persist.
    appendBackoffOptions: { maxRetries: 10 },
    backoffOptions: { maxRetries: 10 },
  });
}

function nonNegative(obj, key) {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || v < 0) throw invalid(`${key} must be a non-negative integer, got ${v}`);
  return v;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

const commands = {
  init(cmd) {
    serverUrl = String(cmd.serverUrl ?? "").replace(/\/+$/, "");
    contentTypes.clear();
    producers.clear();
    dynHeaders = new Map();
    dynParams = new Map();
    return {
      clientName: "durable-streams-client (node)",
      clientVersion: version,
      features: {
        batching: true,
        sse: true,
        longPoll: true,
        auto: true,
        streaming: true,
        dynamicHeaders: true,
        retryOptions: true,
        batchItems: true,
        strictZeroValidation: true,
      },
    };
  },

  async create(cmd) {
    const contentType = cmd.contentType ?? "application/octet-stream";
    const h = handle(cmd);
    const before = await h.head();
    await h.create({
      contentType,
      ttlSeconds: cmd.ttlSeconds,
      expiresAt: cmd.expiresAt,
      closed: cmd.closed,
      body: cmd.data,
      headers: cmd.headers,
    });
    contentTypes.set(cmd.path, h.contentType ?? contentType);
    const after = await h.head();
    return {
      status: before.exists ? 200 : 201,
      offset: after.exists ? after.offset : undefined,
    };
  },

  async connect(cmd) {
    const h = await DurableStream.connect({ url: urlOf(cmd), headers: cmd.headers });
    if (h.contentType) contentTypes.set(cmd.path, h.contentType);
    const info = await h.head();
    return { status: 200, offset: info.exists ? info.offset : undefined };
  },

  async append(cmd) {
    const h = handle(cmd, true);
    const body = cmd.binary ? Buffer.from(cmd.data ?? "", "base64") : (cmd.data ?? "");
    const seq = cmd.seq === undefined ? undefined : String(cmd.seq);
    const r = await h.append(body, { seq, headers: cmd.headers });
    if (h.contentType) contentTypes.set(cmd.path, h.contentType);
    return sent(cmd, { status: 200, offset: r.offset });
  },

  async head(cmd) {
    const h = new DurableStream({ url: urlOf(cmd), headers: cmd.headers });
    const info = await h.head();
    if (!info.exists) {
      throw new DurableStreamError(`stream not found: ${cmd.path}`, "NOT_FOUND", 404);
    }
    if (info.contentType) contentTypes.set(cmd.path, info.contentType);
    return {
      status: 200,
      offset: info.offset,
      contentType: info.contentType,
      streamClosed: info.streamClosed,
      ttlSeconds: info.ttlSeconds,
      expiresAt: info.expiresAt,
    };
  },

  async delete(cmd) {
    await new DurableStream({ url: urlOf(cmd), headers: cmd.headers }).delete();
    contentTypes.delete(cmd.path);
    return { status: 200 };
  },

  async close(cmd) {
    const r = await handle(cmd).close({ body: cmd.data, contentType: cmd.contentType });
    return { status: 200, finalOffset: r.finalOffset };
  },

  async read(cmd) {
    const h = handle(cmd, true);
    const live = cmd.live === undefined || cmd.live === null ? false : cmd.live;
    const res = await h.stream({ offset: cmd.offset ?? "-1", live, headers: cmd.headers });
    if (res.contentType) contentTypes.set(cmd.path, res.contentType);
    const json = res.contentType?.split(";")[0].trim().toLowerCase() === "application/json";
    const maxChunks = cmd.maxChunks ?? 100;
    const chunks = [];
    let timedOut = false;
    let unsubscribe = () => {};
    const done = new Promise((resolve) => {
      const take = (data, b) => {
        if (data !== undefined) chunks.push({ data: data.data, offset: b.offset, ...(data.binary ? { binary: true } : {}) });
        if (b.streamClosed || chunks.length >= maxChunks || (cmd.waitForUpToDate && b.upToDate)) {
          unsubscribe();
          resolve();
        }
      };
      unsubscribe = json
        ? res.subscribeJson((b) => take(b.items.length > 0 ? { data: JSON.stringify(b.items) } : undefined, b))
        : res.subscribeBytes((b) => {
            if (b.data.length === 0) return take(undefined, b);
            try {
              take({ data: utf8.decode(b.data) }, b);
            } catch {
              take({ data: Buffer.from(b.data).toString("base64"), binary: true }, b);
            }
          });
    });
    const timer = setTimeout(() => {
      timedOut = true;
      unsubscribe();
    }, cmd.timeoutMs ?? 5000);
    try {
      await Promise.race([done, res.closed]);
    } finally {
      clearTimeout(timer);
      unsubscribe();
    }
    return sent(cmd, {
      status: timedOut && chunks.length === 0 && live !== false ? 204 : 200,
      chunks,
      offset: res.offset,
      upToDate: res.upToDate || timedOut,
      streamClosed: res.streamClosed,
      cursor: res.cursor,
    });
  },

  async "idempotent-append"(cmd) {
    const p = cachedProducer(cmd);
    const receipt = p.append(cmd.data ?? "");
    await p.flush();
    const d = await receipt.wait();
    return {
      status: d.duplicate ? 204 : 200,
      offset: d.offset,
      duplicate: d.duplicate,
      producerEpoch: d.epoch,
      producerSeq: d.seq,
    };
  },

  async "idempotent-append-batch"(cmd) {
    const inFlight = Math.max(nonNegative(cmd, "maxInFlight") ?? 1, 1);
    // Several in flight: the suite wants many small concurrent batches; otherwise one batch.
    const shape = inFlight > 1 ? { maxInFlight: inFlight, maxBatchBytes: 1, lingerMs: 0 } : { lingerMs: 1000 };
    const p = new IdempotentProducer(handle(cmd), cmd.producerId ?? "", {
      epoch: nonNegative(cmd, "epoch") ?? 0,
      autoClaim: cmd.autoClaim ?? false,
      headers: cmd.headers,
      ...shape,
    });
    if (!Array.isArray(cmd.items)) throw invalid("missing items");
    for (const item of cmd.items) {
      const data = typeof item === "string" ? item : JSON.stringify(item);
      await p.ready(Buffer.byteLength(data));
      p.append(data);
    }
    let failure;
    await p.flush().catch((e) => (failure = e));
    await p.detach();
    if (failure) throw failure;
    return { status: 200 };
  },

  async "idempotent-close"(cmd) {
    const r = await cachedProducer(cmd).close(cmd.data);
    return { status: 200, finalOffset: r.finalOffset };
  },

  async "idempotent-detach"(cmd) {
    await cachedProducer(cmd).detach();
    producers.delete(producerKey(cmd));
    return { status: 200 };
  },

  "set-dynamic-header"(cmd) {
    dynHeaders.set(cmd.name, dynamicValue(cmd));
    return {};
  },

  "set-dynamic-param"(cmd) {
    dynParams.set(cmd.name, dynamicValue(cmd));
    return {};
  },

  "clear-dynamic"() {
    dynHeaders = new Map();
    dynParams = new Map();
    return {};
  },

  async validate(cmd) {
    const t = cmd.target ?? {};
    if (t.target === "retry-options") {
      // The handle checks its backoff options when it is built.
      new DurableStream({
        url: `${serverUrl}/validate`,
        backoffOptions: {
          maxRetries: t.maxRetries,
          initialDelay: t.initialDelayMs,
          maxDelay: t.maxDelayMs,
          multiplier: t.multiplier,
        },
      });
      return {};
    }
    if (t.target === "idempotent-producer") {
      const p = new IdempotentProducer(
        new DurableStream({ url: `${serverUrl}/validate` }),
        t.producerId ?? "validate",
        // maxBatchItems is this suite's name for maxBatchMessages; its sign is checked here
        // (as the Rust adapter does), every other rule by the library.
        { epoch: t.epoch, maxBatchBytes: t.maxBatchBytes, maxBatchMessages: nonNegative(t, "maxBatchItems") },
      );
      await p.detach();
      return {};
    }
    throw Object.assign(invalid(`unsupported validation target ${JSON.stringify(t.target)}`), {
      adapterCode: "NOT_SUPPORTED",
    });
  },
};

function dynamicValue(cmd) {
  const d = { fn: undefined, last: undefined };
  const record = (v) => ((d.last = v), v);
  switch (cmd.valueType) {
    case "counter": {
      let n = 0;
      d.fn = () => record(String(++n));
      break;
    }
    case "timestamp":
      d.fn = () => record(String(Date.now()));
      break;
    case "token":
      d.fn = async () => record(cmd.initialValue ?? "");
      break;
    default:
      throw invalid(`unknown valueType ${JSON.stringify(cmd.valueType)}`);
  }
  return d;
}

const producerKey = (cmd) => JSON.stringify([cmd.path, cmd.producerId ?? "", cmd.epoch ?? 0]);

function cachedProducer(cmd) {
  const key = producerKey(cmd);
  let p = producers.get(key);
  if (!p) {
    p = new IdempotentProducer(handle(cmd), cmd.producerId ?? "", {
      epoch: nonNegative(cmd, "epoch") ?? 0,
      autoClaim: cmd.autoClaim ?? false,
      headers: cmd.headers,
      lingerMs: 0,
      maxInFlight: 1,
    });
    producers.set(key, p);
  }
  return p;
}

/** The adapter protocol's error code for a library error. */
function errorCode(kind, e) {
  if (e.adapterCode) return e.adapterCode;
  switch (e.code) {
    case "NOT_FOUND":
    case "STREAM_CLOSED":
    case "PARSE_ERROR":
    case "INVALID_ARGUMENT":
    case "NETWORK_ERROR":
    case "TIMEOUT":
    case "STALE_EPOCH":
    case "SEQUENCE_GAP":
    case "PRODUCER_SESSION_CONFLICT":
      return e.code;
    case "CONFLICT_EXISTS":
    case "CONFLICT":
      return "CONFLICT";
    case "CONFLICT_SEQ":
      return "SEQUENCE_CONFLICT";
    case "BAD_REQUEST":
      return kind === "read" ? "INVALID_OFFSET" : "UNEXPECTED_STATUS";
    default:
      return e instanceof DurableStreamError ? "UNEXPECTED_STATUS" : "INTERNAL_ERROR";
  }
}

function errorResult(kind, e) {
  const out = {
    type: "error",
    success: false,
    commandType: kind,
    errorCode: errorCode(kind, e),
    message: e?.message ?? String(e),
  };
  if (e?.status !== undefined) out.status = e.status;
  const details = {};
  if (e?.currentEpoch !== undefined) details.currentEpoch = e.currentEpoch;
  if (e?.expectedSeq !== undefined) {
    details.expectedSeq = e.expectedSeq;
    details.receivedSeq = e.receivedSeq;
  }
  if (e?.finalOffset !== undefined) details.finalOffset = e.finalOffset;
  if (Object.keys(details).length > 0) out.details = details;
  return out;
}

const write = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// One command at a time, in order: the runner waits for each answer.
let queue = Promise.resolve();
createInterface({ input: process.stdin, crlfDelay: Infinity }).on("line", (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      write(errorResult("unknown", invalid(`not JSON: ${e.message}`)));
      return;
    }
    const kind = cmd.type;
    if (kind === "shutdown") {
      write({ type: "shutdown", success: true });
      process.exit(0);
    }
    const run = commands[kind];
    if (!run) {
      write(errorResult(kind, Object.assign(invalid(`unsupported command ${kind}`), { adapterCode: "NOT_SUPPORTED" })));
      return;
    }
    try {
      const out = await run(cmd);
      write({ ...out, type: kind, success: true });
    } catch (e) {
      if (!(e instanceof DurableStreamError)) console.error(e);
      write(errorResult(kind, e));
    }
  });
});
