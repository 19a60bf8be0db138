"use strict";
/** `DurableStream` (a handle on one stream URL) and `stream()` (a read without a handle). */
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
exports.DurableStream = void 0;
exports.stream = stream;
const native = __importStar(require("../native/index.js"));
const errors_js_1 = require("./errors.js");
const internal_js_1 = require("./internal.js");
const producer_js_1 = require("./producer.js");
const response_js_1 = require("./response.js");
/**
 * An iterator over a `ReadableStream`'s chunks; `return()` cancels the stream (which also ends
 * a read in progress) and releases its lock.
 */
function readerIterator(stream) {
    const reader = stream.getReader();
    return {
        next: async () => {
            const { done, value } = await reader.read();
            return done ? { done: true, value: undefined } : { done: false, value };
        },
        return: async () => {
            await reader.cancel();
            reader.releaseLock();
            return { done: true, value: undefined };
        },
    };
}
/** Header or parameter values with the functions among them called. */
async function resolve(rec) {
    const out = {};
    for (const [k, v] of Object.entries(rec ?? {})) {
        if (v !== undefined)
            out[k] = typeof v === "string" ? v : await v();
    }
    return out;
}
/**
 * The native error hook of a read: `onFailedAttempt` (from `backoffOptions`) is called after
 * every failed attempt, as the reference's fetch wrapper does, then `onError` decides; without
 * `onError` the retry policy does. A throwing callback ends the read with the original error.
 */
function hook(onError, onFailedAttempt) {
    if (!onError && !onFailedAttempt)
        return undefined;
    return async (description) => {
        onFailedAttempt?.();
        if (!onError)
            return null;
        const err = (0, errors_js_1.convert)(new Error(description));
        const answer = await onError(err);
        if (!answer)
            return null;
        return JSON.stringify({
            headers: await resolve(answer.headers),
            params: await resolve(answer.params),
        });
    };
}
/**
 * The native observer of a handle's failed attempts: `onFailedAttempt` of the backoff options
 * that govern the request (appends: `appendBackoffOptions`, else `backoffOptions`), as the
 * reference calls it for create, append, close and delete. Not for `head()`, which the
 * reference sends without its backoff wrapper. A throwing callback is ignored, as a failed
 * attempt must go on to its retry or its error.
 */
function observer(backoffOptions, appendBackoffOptions) {
    const general = backoffOptions?.onFailedAttempt;
    const append = appendBackoffOptions?.onFailedAttempt ?? general;
    if (!general && !append)
        return undefined;
    return (operation) => {
        const f = operation === "append" ? append : operation === "head" ? undefined : general;
        try {
            f?.();
        }
        catch {
            // The reference lets it escape into its retry loop, where it ends the request; here the
            // request's own outcome is kept.
        }
    };
}
function urlOf(url) {
    if (url === undefined || url === "")
        throw new errors_js_1.MissingStreamUrlError();
    return url.toString();
}
/** The live mode for the addon; unset stays unset (the core's default applies). */
function liveOf(live) {
    if (live === undefined)
        return undefined;
    if (live === true)
        return "auto";
    if (live === false)
        return "off";
    return live;
}
/** The `LiveMode` the core chose for a read whose `live` was left unset. */
function liveModeOf(mode) {
    if (mode === "auto")
        return true;
    if (mode === "off")
        return false;
    if (mode === "long-poll" || mode === "sse")
        return mode;
    return true;
}
function readOptions(o) {
    return {
        offset: o.offset,
        live: liveOf(o.live),
        json: o.json,
        extras: (0, internal_js_1.extras)(o.headers, o.params),
        backoff: (0, internal_js_1.backoff)(o.backoffOptions),
        sseResilience: o.sseResilience,
        onError: hook(o.onError, o.backoffOptions?.onFailedAttempt),
        maxChunkBytes: o.maxChunkBytes,
        maxReadBytes: o.maxReadBytes,
    };
}
async function read(handle, o, handleSignal) {
    const signal = (0, internal_js_1.checkSignal)(o.signal) ?? handleSignal;
    const opts = readOptions(o);
    const n = await (0, internal_js_1.run)(signal, (t) => handle.stream(opts, t), internal_js_1.backoffAborted);
    return new response_js_1.StreamResponse(n, o.live ?? liveModeOf(n.live), signal);
}
/**
 * Reads the stream at `url` without a handle: sends the first request and resolves to the
 * response to consume.
 *
 * @example
 * ```ts
 * const res = await stream<{ n: number }>({ url, live: false });
 * const items = await res.json();
 * ```
 */
async function stream(options) {
    if (options.fetch !== undefined)
        (0, internal_js_1.warnFetchIgnored)();
    const handle = (0, internal_js_1.sync)(() => new native.NativeStream(urlOf(options.url)));
    return read(handle, options, undefined);
}
/**
 * A handle on one stream URL. Creating it sends nothing; `DurableStream.create` and
 * `DurableStream.connect` create or look up the stream first.
 *
 * @example
 * ```ts
 * const handle = await DurableStream.create({ url, contentType: "application/json" });
 * await handle.append(JSON.stringify({ type: "started" }));
 * const res = await handle.stream({ live: false });
 * console.log(await res.json());
 * ```
 */
class DurableStream {
    /** The stream URL. */
    url;
    #native;
    #options;
    #contentType;
    constructor(options) {
        this.url = urlOf(options?.url);
        (0, internal_js_1.checkSignal)(options.signal);
        this.#options = options;
        this.#contentType = options.contentType;
        this.#native = (0, internal_js_1.sync)(() => new native.NativeStream(this.url, {
            contentType: options.contentType,
            extras: (0, internal_js_1.extras)(options.headers, options.params),
            backoff: (0, internal_js_1.backoff)(options.backoffOptions),
            appendBackoff: (0, internal_js_1.backoff)(options.appendBackoffOptions),
            onFailedAttempt: observer(options.backoffOptions, options.appendBackoffOptions),
        }));
        if (options.fetch !== undefined)
            (0, internal_js_1.warnFetchIgnored)();
    }
    /** The stream's content type, when known (from the options, create, head or connect). */
    get contentType() {
        return this.#contentType ?? this.#native.contentType ?? undefined;
    }
    set contentType(ct) {
        this.#contentType = ct;
    }
    #signal(s) {
        return (0, internal_js_1.checkSignal)(s) ?? this.#options.signal;
    }
    /** Creates the stream and returns a handle on it. */
    static async create(options) {
        const handle = new DurableStream(options);
        await handle.create(options);
        return handle;
    }
    /** A handle on an existing stream; one `HEAD` learns its content type. */
    static async connect(options) {
        const handle = new DurableStream(options);
        const signal = handle.#signal(undefined);
        const h = await (0, internal_js_1.run)(signal, (t) => handle.#native.head(t));
        handle.#contentType = h.contentType ?? handle.#contentType;
        return handle;
    }
    /** The metadata of the stream at `options.url`. */
    static head(options) {
        return new DurableStream(options).head();
    }
    /** Deletes the stream at `options.url`. */
    static delete(options) {
        return new DurableStream(options).delete();
    }
    /**
     * Creates the stream (`PUT`); succeeds when an identical stream already exists. Resolves to
     * this handle, as in `@durable-streams/client`.
     */
    async create(options = {}) {
        const opts = {
            contentType: options.contentType ?? this.#contentType,
            ttlSeconds: options.ttlSeconds,
            expiresAt: options.expiresAt,
            closed: options.closed,
            body: options.body === undefined ? undefined : (0, internal_js_1.bodyOf)(options.body),
            extras: (0, internal_js_1.extras)(options.headers),
        };
        const r = await (0, internal_js_1.run)(this.#signal(options.signal), (t) => this.#native.create(opts, t), internal_js_1.backoffAborted);
        this.#contentType = r.contentType ?? opts.contentType ?? this.#contentType;
        return this;
    }
    /** The handle's headers with computed values evaluated now (as sent on the next request). */
    resolveHeaders() {
        return resolve(this.#options.headers);
    }
    /** The stream's metadata; `{exists: false}` when there is no stream. */
    async head(options = {}) {
        try {
            const h = await (0, internal_js_1.run)(this.#signal(options.signal), (t) => this.#native.head(t));
            if (h.contentType)
                this.#contentType = h.contentType;
            return {
                exists: true,
                contentType: h.contentType ?? undefined,
                offset: h.offset ?? undefined,
                etag: h.etag ?? undefined,
                streamClosed: h.streamClosed,
                ttlSeconds: h.ttlSeconds ?? undefined,
                expiresAt: h.expiresAt ?? undefined,
            };
        }
        catch (e) {
            if (e instanceof errors_js_1.DurableStreamError && e.code === "NOT_FOUND")
                return { exists: false };
            throw e;
        }
    }
    /**
     * Appends one message. On a JSON stream pass one JSON text (or a value, which is
     * serialized); otherwise a string or bytes.
     */
    async append(body, options = {}) {
        const data = (0, internal_js_1.messageOf)(await body, "append()");
        const opts = {
            seq: options.seq,
            contentType: options.contentType,
            extras: (0, internal_js_1.extras)(options.headers, options.params),
        };
        const r = await (0, internal_js_1.run)(this.#signal(options.signal), (t) => this.#native.append(data, opts, t), internal_js_1.backoffAborted);
        return { offset: r.offset ?? undefined, streamClosed: r.streamClosed };
    }
    /**
     * Appends everything a `ReadableStream` or async iterable yields as ONE message, sent as one
     * streamed request while the source produces it, as `@durable-streams/client` does; strings
     * are encoded as UTF-8. Memory stays bounded: the next chunk is read from the source only when
     * the connection has taken the previous one. On a JSON stream the whole text must be one JSON
     * value (or an array of messages).
     *
     * Never retried (a source cannot be replayed): a failed request rejects with its error at
     * once, and the source is closed. An error thrown by the source aborts the request before
     * its end, so nothing of it is stored, and `appendStream()` rejects with that error.
     */
    async appendStream(source, options = {}) {
        const iterator = source instanceof ReadableStream ? readerIterator(source) : source[Symbol.asyncIterator]();
        let done = false;
        let pulling = false;
        let sourceError;
        const pull = async () => {
            pulling = true;
            try {
                for (;;) {
                    const next = await iterator.next();
                    if (next.done) {
                        done = true;
                        return null;
                    }
                    const chunk = next.value;
                    if (typeof chunk === "string") {
                        if (chunk.length > 0)
                            return Buffer.from(chunk, "utf8");
                    }
                    else if (chunk instanceof Uint8Array) {
                        if (chunk.byteLength > 0)
                            return chunk;
                    }
                    else {
                        (0, internal_js_1.messageOf)(chunk, "appendStream()");
                    }
                }
            }
            catch (e) {
                done = true;
                sourceError = { error: e };
                throw e;
            }
            finally {
                pulling = false;
            }
        };
        const opts = {
            seq: options.seq,
            contentType: options.contentType,
            extras: (0, internal_js_1.extras)(options.headers, options.params),
        };
        try {
            const r = await (0, internal_js_1.run)(this.#signal(options.signal), (t) => this.#native.appendStream(pull, opts, t), internal_js_1.backoffAborted);
            return { offset: r.offset ?? undefined, streamClosed: r.streamClosed };
        }
        catch (e) {
            if (sourceError)
                throw sourceError.error;
            throw e;
        }
        finally {
            if (!done) {
                // Close the source. An async generator still busy with a pull would only run its
                // `finally` after that pull, which may never end: then don't wait for it.
                const closing = Promise.resolve()
                    .then(() => iterator.return?.())
                    .catch(() => undefined);
                if (!pulling)
                    await closing;
            }
        }
    }
    /** Closes the stream (no more appends), with an optional final message. */
    async close(options = {}) {
        const body = options.body === undefined ? undefined : (0, internal_js_1.messageOf)(options.body, "close()");
        const opts = { contentType: options.contentType };
        const r = await (0, internal_js_1.run)(this.#signal(options.signal), (t) => this.#native.close(body, opts, t), internal_js_1.backoffAborted);
        // As in the reference: "" when the server sent no offset.
        return { finalOffset: r.finalOffset ?? "" };
    }
    /** Deletes the stream. */
    async delete(options = {}) {
        await (0, internal_js_1.run)(this.#signal(options.signal), (t) => this.#native.delete(t), internal_js_1.backoffAborted);
    }
    /**
     * A `WritableStream` that appends every chunk written to it through an idempotent producer
     * (batched, exactly once, with `autoClaim`), as in `@durable-streams/client`. Closing the
     * writable flushes and closes the stream; `pipeTo()` then rejects with the first failed batch.
     * Aborting it detaches the producer without closing the stream.
     *
     * @example
     * ```ts
     * await source.pipeTo(stream.writable({ producerId: "importer-1", lingerMs: 10 }));
     * ```
     */
    writable(options = {}) {
        const producerId = options.producerId ?? `writable-${crypto.randomUUID().slice(0, 8)}`;
        let failure;
        const producer = new producer_js_1.IdempotentProducer(this, producerId, {
            autoClaim: true,
            headers: options.headers,
            lingerMs: options.lingerMs,
            maxBatchBytes: options.maxBatchBytes,
            signal: options.signal,
            onError: (error) => {
                failure ??= error;
                options.onError?.(error);
            },
        });
        const append = async (chunk) => {
            try {
                producer.append(chunk);
            }
            catch (e) {
                if (!(e instanceof errors_js_1.DurableStreamError) || e.code !== "BUFFER_FULL")
                    throw e;
                // Back-pressure: wait for room, then the message fits (or fails for another reason).
                await producer.ready(typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength);
                producer.append(chunk);
            }
        };
        return new WritableStream({
            write: (chunk) => append(chunk),
            close: async () => {
                await producer.close();
                if (failure)
                    throw failure;
            },
            abort: async () => {
                try {
                    await producer.detach();
                }
                catch (e) {
                    options.onError?.(e instanceof Error ? e : new Error(String(e)));
                }
            },
        });
    }
    /** Reads the stream; the handle's headers, parameters, backoff options and error hook apply. */
    stream(options = {}) {
        const o = {
            onError: this.#options.onError,
            backoffOptions: this.#options.backoffOptions,
            ...options,
        };
        return read(this.#native, o, this.#signal(undefined));
    }
    /** @internal The native handle, for the producer. */
    get native() {
        return this.#native;
    }
}
exports.DurableStream = DurableStream;
