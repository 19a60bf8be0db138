"use strict";
/** `StreamResponse`: one read, consumed once, as a whole, as a stream or through a subscriber. */
Object.defineProperty(exports, "__esModule", { value: true });
exports.StreamResponse = void 0;
exports.asAsyncIterableReadableStream = asAsyncIterableReadableStream;
const errors_js_1 = require("./errors.js");
const internal_js_1 = require("./internal.js");
/** The native form of a pick, checked; `undefined` for whole messages. */
function nativePick(o) {
    if (o === undefined || o === null)
        return undefined;
    if (typeof o !== "object")
        throw new errors_js_1.InvalidArgumentError("the JSON read options must be an object");
    const { field, fields } = o;
    if (field !== undefined && fields !== undefined) {
        throw new errors_js_1.InvalidArgumentError("give field (one value of each message) or fields (some members), not both");
    }
    if (field !== undefined) {
        if (typeof field !== "string") {
            throw new errors_js_1.InvalidArgumentError(`field must be a member name (string), got ${typeof field}`);
        }
        return { field };
    }
    if (fields !== undefined) {
        if (!Array.isArray(fields) || fields.some((f) => typeof f !== "string")) {
            throw new errors_js_1.InvalidArgumentError("fields must be an array of member names (strings)");
        }
        if (fields.length === 0) {
            throw new errors_js_1.InvalidArgumentError("fields must name at least one member (leave it out to read whole messages)");
        }
        return { fields: [...fields] };
    }
    return undefined;
}
/**
 * `stream`, made async-iterable where the runtime's `ReadableStream` is not (Node's already
 * is; then `stream` is returned as it is).
 */
function asAsyncIterableReadableStream(stream) {
    const s = stream;
    if (typeof s[Symbol.asyncIterator] !== "function") {
        Object.defineProperty(s, Symbol.asyncIterator, {
            configurable: true,
            writable: true,
            value: async function* () {
                const reader = this.getReader();
                try {
                    for (;;) {
                        const { done, value } = await reader.read();
                        if (done)
                            return;
                        yield value;
                    }
                }
                finally {
                    reader.releaseLock();
                }
            },
        });
    }
    return s;
}
/** Plain `Uint8Array` views of native `Buffer`s (as the reference client hands out). */
function plain(b) {
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
/** How many items of a batch one pull of a web stream enqueues (see `#readable`). */
const HANDOUT = 512;
/** How many arrays one `concat` call joins (its arguments stay far below V8's limit). */
const CONCAT_ARRAYS = 1024;
/**
 * The messages of one part: a text is parsed here, since `JSON.parse` builds JavaScript values
 * much faster than the addon can one by one. Numbers are copied into a preallocated array,
 * which holds them unboxed: for 1,000,000 integers 10 ms and 2,000 page faults, against 50 ms
 * and 9,300 for `JSON.parse` of their text (`Array.from` took 55 ms).
 */
function parsePart(part) {
    if (typeof part === "string")
        return JSON.parse(part);
    const n = part.length;
    const out = new Array(n);
    for (let i = 0; i < n; i++)
        out[i] = part[i];
    return out;
}
/**
 * The messages of the JSON parts from the native layer (`itemsJson`). The parsed arrays are
 * joined with `concat`, which copies them in blocks: about four times as fast as pushing
 * 1,000,000 items one by one (5.5 ms against 23 ms).
 */
function parseArrays(parts) {
    if (!parts || parts.length === 0)
        return [];
    if (parts.length === 1)
        return parsePart(parts[0]);
    const joined = [];
    for (let i = 0; i < parts.length; i += CONCAT_ARRAYS) {
        const parsed = parts.slice(i, i + CONCAT_ARRAYS).map((part) => parsePart(part));
        joined.push([].concat(...parsed));
    }
    return joined.length === 1 ? joined[0] : [].concat(...joined);
}
function meta(b) {
    return {
        offset: b.offset,
        cursor: b.cursor ?? undefined,
        upToDate: b.upToDate,
        streamClosed: b.streamClosed,
        checkpoint: b.checkpoint,
    };
}
/**
 * A read in progress. Its data can be consumed exactly once: as a whole (`json`, `text`,
 * `body`), as a stream (`jsonStream`, `textStream`, `bodyStream`) or through a subscriber
 * (`subscribeJson`, `subscribeText`, `subscribeBytes`); a second consumer fails with code
 * `ALREADY_CONSUMED`. `offset`, `cursor`, `upToDate` and `streamClosed` advance as data is
 * delivered.
 */
class StreamResponse {
    #native;
    #signal;
    #live;
    #head;
    /** Whether any batch was handed on (a batch inside a response leaves the offset at its start). */
    #consumed = false;
    /** A consumer (`json`, `text`, `bytes`, a stream or a subscriber) has started. */
    #started = false;
    /** The read has ended (`closed` settled). */
    #ended = false;
    #headers;
    #settle;
    /**
     * Settles when the read ends: resolves on completion or cancellation, rejects with the
     * error that ended it. Never an unhandled rejection when nobody listens.
     */
    closed;
    /** @internal */
    constructor(n, live, signal) {
        this.#native = n;
        this.#live = live;
        this.#signal = signal;
        this.#head = n.firstResponse ?? null;
        this.closed = new Promise((resolve, reject) => {
            this.#settle = (error) => {
                this.#ended = true;
                if (error === undefined)
                    resolve();
                else
                    reject(error);
            };
        });
        this.closed.catch(() => undefined);
        if (signal) {
            if (signal.aborted)
                this.cancel();
            else {
                // Held weakly and removed when the read ends: one signal shared by many reads keeps
                // neither them nor their native reads alive, nor a listener per finished read.
                const read = new WeakRef(this);
                const onAbort = () => read.deref()?.cancel();
                signal.addEventListener("abort", onAbort, { once: true });
                void this.closed.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => undefined);
            }
        }
    }
    /** The stream URL. */
    get url() {
        return this.#native.url;
    }
    /** The stream's content type. */
    get contentType() {
        return this.#native.contentType ?? undefined;
    }
    /** The live mode of this read. */
    get live() {
        return this.#live;
    }
    /** The offset the read started from. */
    get startOffset() {
        return this.#native.startOffset;
    }
    /** The headers of the first response (the one `stream()` waited for). */
    get headers() {
        if (this.#headers === undefined) {
            const h = new Headers();
            for (const [name, value] of this.#head?.headers ?? []) {
                if (name !== undefined && value !== undefined)
                    h.append(name, value);
            }
            this.#headers = h;
        }
        return this.#headers;
    }
    /** The HTTP status of the first response. */
    get status() {
        return this.#head?.status ?? 200;
    }
    /** The status text of the first response (the standard phrase, `"OK"`). */
    get statusText() {
        return this.#head?.statusText ?? "OK";
    }
    /** Whether the first response was a success: always true, since failures are thrown. */
    get ok() {
        const status = this.status;
        return status >= 200 && status < 300;
    }
    /** Whether the first response is still awaited: always false once `stream()` resolved. */
    get isLoading() {
        return false;
    }
    /**
     * Nothing was delivered yet: the position getters then report the first response's
     * headers, as they do in `@durable-streams/client` right after `await stream()`.
     */
    #fresh() {
        const n = this.#native;
        return (this.#head !== null &&
            !this.#consumed &&
            // A consumer that ended without handing anything over (a failed or cancelled read): the
            // offset is where the read started, so a read resumed there gets the first response too.
            !(this.#started && this.#ended) &&
            n.offset === n.startOffset &&
            !n.upToDate &&
            !n.streamClosed &&
            (n.cursor ?? undefined) === undefined);
    }
    /**
     * The offset after the data delivered so far; right after `stream()`, the first response's
     * `Stream-Next-Offset`.
     */
    get offset() {
        if (this.#fresh())
            return this.#head?.offset ?? this.#native.offset;
        return this.#native.offset;
    }
    /** The last cursor the server sent. */
    get cursor() {
        if (this.#fresh())
            return this.#head?.cursor ?? undefined;
        return this.#native.cursor ?? undefined;
    }
    /** Whether the data delivered so far reaches the tail of the stream (first response: its header). */
    get upToDate() {
        if (this.#fresh())
            return this.#head?.upToDate ?? false;
        return this.#native.upToDate;
    }
    /** Whether the last data of a closed stream was delivered (first response: its header). */
    get streamClosed() {
        if (this.#fresh())
            return this.#head?.streamClosed ?? false;
        return this.#native.streamClosed;
    }
    /** Stops the read: the request in flight is abandoned, streams and subscribers end. */
    cancel(_reason) {
        this.#native.cancel();
        // With no consumer there is nobody to see the read end: `closed` resolves now.
        if (!this.#started)
            this.#settle();
    }
    async #whole(call) {
        this.#started = true;
        try {
            const out = await (0, internal_js_1.run)(this.#signal, call);
            // The data is the caller's now: the position moves past it (a read that failed halfway
            // leaves it where it was, before anything the caller did not get).
            this.#native.releasePosition();
            this.#settle();
            return out;
        }
        catch (e) {
            this.#settle(e);
            throw e;
        }
    }
    /** All bytes up to the first up-to-date point (or the end of a closed stream). */
    async body() {
        const buf = await this.#whole((t) => this.#native.bytes(t));
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    /** All text up to the first up-to-date point. */
    text() {
        return this.#whole((t) => this.#native.text(t));
    }
    /**
     * All JSON messages up to the first up-to-date point (JSON streams, or `json: true`). With
     * `{ field }` or `{ fields }`, only that part of each message (see {@link JsonPickOptions}).
     */
    async json(options) {
        const pick = nativePick(options);
        try {
            return parseArrays(await this.#whole((t) => this.#native.json(t, pick)));
        }
        catch (e) {
            throw asBadRequest(e);
        }
    }
    /** The batches, pulled one at a time; ends (returns `null`) when the read is over. */
    #batches(kind, pick) {
        let reader;
        this.#started = true;
        try {
            reader = (0, internal_js_1.sync)(() => this.#native.reader(kind, pick));
        }
        catch (e) {
            throw kind === "json" ? asBadRequest(e) : e;
        }
        return async () => {
            try {
                const b = await (0, internal_js_1.run)(undefined, (t) => reader.next(t));
                if (b !== null)
                    this.#consumed = true;
                if (b === null) {
                    if (this.#signal?.aborted)
                        throw (0, internal_js_1.abortReason)(this.#signal);
                    this.#settle();
                }
                return b;
            }
            catch (e) {
                // An abort ends the read cleanly: `closed` resolves, the consumer sees the reason.
                this.#settle(this.#signal?.aborted ? undefined : e);
                throw e;
            }
        };
    }
    #readable(kind, pick, json) {
        const next = this.#batches(kind, json);
        // The items of the current batch are handed on at most HANDOUT per pull from this array,
        // not all enqueued at once: the stream's own queue takes items from the front of an array,
        // which for a queue of tens of thousands of messages costs time in proportion to its
        // length on every read (measured, debug addon: 1,000,000 messages in 8 MiB parts took 58 s
        // instead of 7 s).
        let items = [];
        let at = 0;
        let cancelled = false;
        const stream = new ReadableStream({
            pull: async (controller) => {
                while (at >= items.length) {
                    const b = await next();
                    // Cancelled while the batch was on its way: nobody takes it, and the position
                    // stays before it.
                    if (cancelled)
                        return;
                    if (b === null) {
                        items = [];
                        controller.close();
                        return;
                    }
                    items = pick(b);
                    at = 0;
                    this.#native.releasePosition();
                }
                const end = Math.min(items.length, at + HANDOUT);
                for (; at < end; at += 1)
                    controller.enqueue(items[at]);
                if (at >= items.length) {
                    // Let the batch's memory go before the next one is read.
                    items = [];
                    at = 0;
                }
            },
            cancel: () => {
                cancelled = true;
                this.cancel();
                // The consumer ended the read: `closed` resolves now, even with a pull still waiting
                // for a batch that nobody will take.
                this.#settle();
            },
        }, { highWaterMark: 0 });
        return stream;
    }
    /** The data as a stream of byte chunks (async iterable). */
    bodyStream() {
        return this.#readable("bytes", (b) => (b.bytes && b.bytes.length > 0 ? [plain(b.bytes)] : []));
    }
    /** The data as a stream of text chunks (async iterable). */
    textStream() {
        return this.#readable("text", (b) => (b.text ? [b.text] : []));
    }
    /** The JSON messages one by one (async iterable); `options` as in {@link json}. */
    jsonStream(options) {
        return this.#readable("json", (b) => parseArrays(b.itemsJson), nativePick(options));
    }
    #subscribe(kind, shape, callback, json) {
        const next = this.#batches(kind, json);
        let active = true;
        void (async () => {
            try {
                for (let b = await next(); b !== null && active; b = await next()) {
                    // Handed to the callback: the position moves past it. A batch that arrives after
                    // unsubscribing is not, and the position stays before it.
                    this.#native.releasePosition();
                    // The next batch is requested only once the callback's promise settled.
                    await callback(shape(b));
                }
                this.#settle();
            }
            catch (e) {
                // A failed read or a throwing callback ends the subscription.
                this.cancel();
                this.#settle(e instanceof errors_js_1.DurableStreamError ? e : (0, errors_js_1.convert)(e));
            }
        })();
        return () => {
            active = false;
            this.cancel();
        };
    }
    /**
     * Calls `callback` with every batch of JSON messages; the next batch is fetched once the
     * returned promise settles (backpressure). Returns a function that unsubscribes. Errors end
     * the subscription and reject `closed`. `options` as in {@link json}.
     */
    subscribeJson(callback, options) {
        return this.#subscribe("json", (b) => ({ items: parseArrays(b.itemsJson), ...meta(b) }), callback, nativePick(options));
    }
    /** Like {@link subscribeJson}, with the raw bytes of each batch. */
    subscribeBytes(callback) {
        return this.#subscribe("bytes", (b) => ({ data: b.bytes ? plain(b.bytes) : new Uint8Array(), ...meta(b) }), callback);
    }
    /** Like {@link subscribeJson}, with the text of each batch. */
    subscribeText(callback) {
        return this.#subscribe("text", (b) => ({ text: b.text ?? "", ...meta(b) }), callback);
    }
}
exports.StreamResponse = StreamResponse;
/**
 * A JSON consumer on a stream that is not JSON: `BAD_REQUEST`, as `@durable-streams/client`
 * reports it (the core calls it `INVALID_ARGUMENT`; no other argument is checked there).
 */
function asBadRequest(e) {
    if (e instanceof errors_js_1.DurableStreamError && e.code === "INVALID_ARGUMENT" && e.status === undefined) {
        return new errors_js_1.DurableStreamError(e.message, "BAD_REQUEST", undefined, e.details);
    }
    return e;
}
