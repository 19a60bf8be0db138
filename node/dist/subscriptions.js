"use strict";
/**
 * Subscriptions (PROTOCOL §6–7): durable cursors over many streams that wake workers.
 *
 * {@link Subscriptions} manages them and speaks the lease protocol; {@link PullWakeWorker}
 * turns a pull-wake subscription into a work queue (a handler, or an async iterator of
 * {@link Job}s); {@link WebhookVerifier} checks signed webhook deliveries.
 *
 * Delivery is exactly once in the normal case and *at least once* when a worker processes an
 * item and dies (or loses its lease) before its ack lands: the next worker reads again from the
 * last acked offset. A handler makes itself idempotent by storing `(item.stream, item.offset)`
 * with its effects and skipping an item whose offset is not past the stored one. Every item
 * ends at an offset to resume from and starts at its stream's acked offset; an item read again
 * after a crash may hold more than before (the same `startOffset`, the messages handled before
 * first): to skip exactly those, store its `startOffset` and number of messages too.
 */
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.WebhookVerifier = exports.PullWakeWorker = exports.JobQueue = exports.Job = exports.Subscriptions = exports.Wake = exports.WEBHOOK_DONE = void 0;
const native = __importStar(require("../native/index.js"));
const errors_js_1 = require("./errors.js");
const internal_js_1 = require("./internal.js");
const stream_js_1 = require("./stream.js");
/**
 * The body that finishes a webhook wake synchronously: answer 200 with it and
 * `Content-Type: application/json`; the server acks the wake's tail offsets and releases it.
 */
exports.WEBHOOK_DONE = native.webhookDone();
function subscription(n) {
    const streams = n.streams.map((l) => ({ ...l }));
    return {
        id: n.id,
        kind: n.kind,
        pattern: n.pattern ?? undefined,
        streams,
        wakeStream: n.wakeStream ?? undefined,
        webhookUrl: n.webhookUrl ?? undefined,
        signing: n.signing ? { ...n.signing } : undefined,
        leaseTtlMs: n.leaseTtlMs,
        createdAt: n.createdAt ?? undefined,
        status: n.status ?? undefined,
        description: n.description ?? undefined,
        ackedOffset: (path) => streams.find((s) => s.path === path)?.ackedOffset,
    };
}
/**
 * A held wake: a claim (pull-wake) or a verified webhook delivery. Its token stays in the
 * native layer: it never appears in an inspection, a log or an error.
 */
class Wake {
    /** @internal */
    native;
    subscriptionId;
    wakeId;
    /** The fencing generation. */
    generation;
    /** The lease (claims only). */
    leaseTtlMs;
    /** Where to call back (webhook deliveries only). */
    callbackUrl;
    streams;
    /** @internal */
    constructor(n) {
        this.native = n;
        this.subscriptionId = n.subscriptionId;
        this.wakeId = n.wakeId;
        this.generation = n.generation;
        this.leaseTtlMs = n.leaseTtlMs ?? undefined;
        this.callbackUrl = n.callbackUrl ?? undefined;
        this.streams = n.streams.map((s) => ({ ...s }));
    }
}
exports.Wake = Wake;
function acksOf(acks) {
    return Object.entries(acks ?? {}).map(([stream, offset]) => ({ stream, offset }));
}
/**
 * Subscriptions of the streams under one stream root (the URL prefix under which the server's
 * streams live, e.g. `http://127.0.0.1:4437/v1/stream/`); paths are relative to it.
 *
 * @example
 * ```ts
 * const subs = new Subscriptions("http://127.0.0.1:4437/v1/stream/")
 * await subs.create("billing", { wakeStream: "wake/billing", pattern: "orders/*" })
 * await subs.worker("billing", "worker-1", "wake/billing").run(async (item) => {
 *   console.log(item.stream, item.messages)
 * }, { signal })
 * ```
 */
class Subscriptions {
    #native;
    #options;
    constructor(root, options = {}) {
        this.#options = options;
        this.#native = (0, internal_js_1.sync)(() => new native.NativeSubscriptions(String(root), (0, internal_js_1.extras)(options.headers, options.params)));
    }
    /** The stream root URL (ends with `/`). */
    get root() {
        return this.#native.root;
    }
    /** The URL of the server's webhook signing keys (`__ds/jwks.json` under the root). */
    get jwksUrl() {
        return this.#native.jwksUrl;
    }
    /** A stream handle for a root-relative path, with this handle's headers and parameters. */
    stream(path) {
        return new stream_js_1.DurableStream({
            url: this.root + path,
            headers: this.#options.headers,
            params: this.#options.params,
        });
    }
    /**
     * Creates the subscription, or confirms an identical one (`created` tells which). Another
     * configuration under the same id fails with a `FetchError` of code `CONFLICT_EXISTS`.
     */
    async create(id, config, options = {}) {
        const cfg = { ...config };
        const n = await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.create(id, cfg, t));
        return { ...subscription(n), created: n.created ?? false };
    }
    /** The subscription with its linked streams and acked offsets. */
    async get(id, options = {}) {
        return subscription(await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.get(id, t)));
    }
    /** Deletes the subscription (idempotent). */
    async delete(id, options = {}) {
        await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.delete(id, t));
    }
    /** Links explicit streams (at their current tail; idempotent). */
    async addStreams(id, streams, options = {}) {
        await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.addStreams(id, streams, t));
    }
    /** Removes an explicit link (a glob link stays; idempotent). */
    async removeStream(id, path, options = {}) {
        await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.removeStream(id, path, t));
    }
    /**
     * Claims a pull-wake subscription's lease. Rejects with `AlreadyClaimedError` or
     * `NoPendingWorkError` when there is nothing to take.
     */
    async claim(id, worker, options = {}) {
        return new Wake(await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.claim(id, worker, t)));
    }
    /**
     * Acks progress on a claimed wake; without acks and `done` it is a heartbeat. A stale wake
     * rejects with `FencedError` and acks nothing, unless the request was retried after an
     * attempt whose answer was lost (its message then says so): that attempt may have landed.
     */
    async ack(wake, acks, options = {}) {
        return (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.ack(wake.native, acksOf(acks), options.done ?? false, t));
    }
    /**
     * Answers a webhook wake asynchronously through its `callbackUrl` (which must be on the
     * stream root's origin). A stale wake rejects with `FencedError`.
     */
    async callback(wake, acks, options = {}) {
        return (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.callback(wake.native, acksOf(acks), options.done ?? false, t));
    }
    /** Gives a claimed wake back without acking; pending work is woken again. */
    async release(wake, options = {}) {
        await (0, internal_js_1.run)((0, internal_js_1.checkSignal)(options.signal), (t) => this.#native.release(wake.native, t));
    }
    /** A pull-wake worker named `worker` for subscription `id`; see {@link PullWakeWorker}. */
    worker(id, worker, wakeStream, options = {}) {
        return new PullWakeWorker(this.#native, id, worker, wakeStream, options);
    }
}
exports.Subscriptions = Subscriptions;
/** One delivery of a {@link JobQueue}: answer it with {@link Job.ack} or {@link Job.fail}. */
class Job {
    item;
    #native;
    /** @internal */
    constructor(n) {
        this.#native = n;
        const raw = n.messagesJson;
        this.item = {
            stream: n.stream,
            startOffset: n.startOffset,
            offset: n.offset,
            messages: raw == null ? [] : JSON.parse(raw),
            data: n.data,
        };
    }
    /** Handled: the worker acks `item.offset` and goes on. */
    ack() {
        this.#native.ack();
    }
    /** Not handled: the worker releases the wake without acking; it is woken again. */
    fail(reason = "failed") {
        this.#native.fail(reason);
    }
}
exports.Job = Job;
/**
 * The jobs of a running worker: `for await` over it, answer each job, and {@link stop} it
 * (leaving the loop early stops it too). Stopping releases the wake the worker holds.
 */
class JobQueue {
    #queue;
    #offset;
    /** @internal */
    constructor(queue, signal) {
        this.#queue = queue;
        queue.catch(() => undefined);
        if (signal) {
            const onAbort = () => this.requestStop();
            if (signal.aborted)
                onAbort();
            else
                signal.addEventListener("abort", onAbort, { once: true });
        }
    }
    /** After {@link stop}: the wake-stream offset to resume from (pass it as `fromOffset`). */
    get offset() {
        return this.#offset;
    }
    /**
     * Asks the worker to stop without waiting: the ack in flight lands, no new job comes, the
     * wake is released, and a pending {@link next} resolves to `null`.
     */
    requestStop() {
        void this.#queue.then((q) => q.requestStop()).catch(() => undefined);
    }
    /** The next job, or `null` once the worker has stopped. */
    async next() {
        const q = await (0, internal_js_1.run)(undefined, () => this.#queue);
        const n = await (0, internal_js_1.run)(undefined, (t) => q.next(t));
        return n ? new Job(n) : null;
    }
    /** Stops the worker (a held lease is released); resolves to the offset to resume from. */
    async stop() {
        const q = await (0, internal_js_1.run)(undefined, () => this.#queue);
        const off = await (0, internal_js_1.run)(undefined, () => q.stop());
        if (off != null)
            this.#offset = off;
        return this.#offset;
    }
    async *[Symbol.asyncIterator]() {
        try {
            for (;;) {
                const job = await this.next();
                if (!job)
                    return;
                yield job;
            }
        }
        finally {
            await this.stop();
        }
    }
}
exports.JobQueue = JobQueue;
/**
 * A pull-wake worker: follows the wake stream (from `fromOffset`, default its tail; work
 * pending from before is claimed at start), claims on every wake, reads each pending stream
 * from its acked offset, hands the items over, acks them, heartbeats while a handler runs, and
 * finishes the wake. A handler error releases the wake without acking (it is woken again after a
 * pause of at least 100 ms, longer while failures go on); a lost lease (`FENCED`) drops the wake
 * without acking.
 */
class PullWakeWorker {
    #subs;
    #args;
    /** @internal */
    constructor(subs, id, worker, wakeStream, options) {
        this.#subs = subs;
        this.#args = [id, worker, wakeStream, options];
    }
    /** Starts the worker and returns its job queue. */
    jobs(options = {}) {
        const signal = (0, internal_js_1.checkSignal)(options.signal);
        const [id, worker, wakeStream, o] = this.#args;
        const queue = this.#subs.jobs(id, worker, wakeStream, o.fromOffset, o.heartbeats);
        return new JobQueue(queue, signal);
    }
    /**
     * Runs `handler` on every item until `signal` aborts; a handler that throws (or rejects)
     * fails the item. Resolves to the wake-stream offset to resume from.
     */
    async run(handler, options = {}) {
        if (typeof handler !== "function") {
            throw new errors_js_1.InvalidArgumentError("run needs a handler function");
        }
        const signal = (0, internal_js_1.checkSignal)(options.signal);
        const queue = this.jobs();
        // The stop is requested between items, never between a handler's return and its answer:
        // the item just handled gets its ack.
        let busy = false;
        const onAbort = () => {
            if (!busy)
                queue.requestStop();
        };
        if (signal?.aborted)
            onAbort();
        signal?.addEventListener("abort", onAbort, { once: true });
        try {
            for await (const job of queue) {
                busy = true;
                try {
                    await handler(job.item);
                    job.ack();
                }
                catch (e) {
                    job.fail(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
                }
                finally {
                    busy = false;
                }
                if (signal?.aborted)
                    queue.requestStop();
            }
        }
        finally {
            signal?.removeEventListener("abort", onAbort);
        }
        return queue.offset;
    }
}
exports.PullWakeWorker = PullWakeWorker;
function signatureOf(headers) {
    if (headers instanceof Headers)
        return headers.get("webhook-signature") ?? undefined;
    const entries = headers instanceof Map ? headers.entries() : Object.entries(headers);
    for (const [k, v] of entries) {
        if (k.toLowerCase() === "webhook-signature")
            return Array.isArray(v) ? v[0] : v;
    }
    return undefined;
}
/**
 * Verifies signed webhook deliveries, for any web framework: pass the request headers and the
 * raw body bytes, get a verified {@link Wake}. The Ed25519 key is chosen by `kid` from the
 * server's JWK Set (fetched once, cached, fetched again on an unknown `kid` at most every
 * 10 s). On `InvalidSignatureError` answer 401; after processing answer 200 with
 * {@link WEBHOOK_DONE}, or 200 with `{}` and finish later with {@link Subscriptions.callback}.
 */
class WebhookVerifier {
    #native;
    constructor(jwksUrl, options = {}) {
        this.#native = (0, internal_js_1.sync)(() => new native.NativeWebhookVerifier(String(jwksUrl), options.replayWindowMs));
    }
    /**
     * Verifies a delivery (`nowMs`: the time to check against, for tests). Rejects with
     * `InvalidSignatureError`, whose `check` says which check failed.
     */
    async verify(headers, body, options = {}) {
        if (!(body instanceof Uint8Array)) {
            throw new errors_js_1.InvalidArgumentError("verify takes the raw request body as bytes (a Buffer or Uint8Array), exactly as received");
        }
        const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        const sig = signatureOf(headers);
        return new Wake(await (0, internal_js_1.run)(undefined, () => this.#native.verify(sig, buf, options.nowMs)));
    }
}
exports.WebhookVerifier = WebhookVerifier;
