/** `DurableStream` (a handle on one stream URL) and `stream()` (a read without a handle). */
import { type BackoffOptions, type HeadersRecord, type MaybePromise, type ParamsRecord } from "./internal.js";
import { type IdempotentProducerOptions } from "./producer.js";
import { type LiveMode, type Offset, StreamResponse } from "./response.js";
/** What an error hook may answer: headers and parameters to retry with, or nothing to give up. */
export type RetryOpts = {
    headers?: HeadersRecord;
    params?: ParamsRecord;
};
/**
 * Consulted after every failed attempt of a read request: return `{}` (or new headers/params)
 * to retry, `undefined` to leave it to the retry policy (the read ends with the error once the
 * policy gives up or the error is not retried, as in the reference client).
 */
export type StreamErrorHandler = (error: Error) => MaybePromise<RetryOpts | void | undefined>;
/** SSE reconnection settings. */
export interface SSEResilienceOptions {
    /** A connection shorter than this (ms) counts as short (default 1000). */
    minConnectionDuration?: number;
    /** Short connections in a row before falling back to long-poll (default 3). */
    maxShortConnections?: number;
    /** Upper bound of the first reconnection delay in ms (default 100). */
    backoffBaseDelay?: number;
    /** Largest reconnection delay in ms (default 5000). */
    backoffMaxDelay?: number;
    /** Accepted for compatibility; warnings go through the core's logging. */
    logWarnings?: boolean;
}
/** Options of a handle. */
export interface StreamHandleOptions {
    /** The stream URL. */
    url: string | URL;
    /** Headers sent with every request (values may be functions, evaluated per request). */
    headers?: HeadersRecord;
    /** Query parameters sent with every request. */
    params?: ParamsRecord;
    /** Cancels the handle's operations. */
    signal?: AbortSignal;
    /** The stream's content type, when known. */
    contentType?: string;
    /** The error hook of reads made through the handle. */
    onError?: StreamErrorHandler;
    /** Retries of failed requests (appends excepted, see `appendBackoffOptions`). */
    backoffOptions?: BackoffOptions;
    /**
     * Retries of failed plain appends. Off by default, since a retried append whose first
     * attempt was stored is stored twice; the `IdempotentProducer` retries safely.
     */
    appendBackoffOptions?: BackoffOptions;
    /** Accepted for compatibility: appends are always sent as they come. */
    batching?: boolean;
    /** Accepted for compatibility. */
    warnOnHttp?: boolean;
    /**
     * Accepted for compatibility with `@durable-streams/client`, not used: requests go through
     * the native HTTP client. Setting it emits a warning once per process (code
     * `DSC_FETCH_IGNORED`). Headers (fixed or computed per request), params and backoff options
     * cover authentication and retries.
     */
    fetch?: typeof globalThis.fetch;
}
/** Options of {@link DurableStream}. */
export type DurableStreamOptions = StreamHandleOptions;
/** Options of `create`. */
export interface CreateOptions {
    /** The content type (`application/json` for a JSON stream). */
    contentType?: string;
    /** Sliding time-to-live in seconds. */
    ttlSeconds?: number;
    /** Absolute expiry (RFC 3339). */
    expiresAt?: string;
    /** Initial content. */
    body?: string | Uint8Array | object;
    /** Create the stream already closed. */
    closed?: boolean;
    /** Cancels the request. */
    signal?: AbortSignal;
    /** Extra headers for this request. */
    headers?: HeadersRecord;
}
/** Options of `append`. */
export interface AppendOptions {
    /** `Stream-Seq`: a writer sequence that must increase from append to append. */
    seq?: string;
    /** The content type sent. */
    contentType?: string;
    /** Cancels the request. */
    signal?: AbortSignal;
    /** Extra headers for this request. */
    headers?: HeadersRecord;
    /** Extra query parameters for this request. */
    params?: ParamsRecord;
}
/** The result of an append. */
export interface AppendResult {
    /** The tail offset after the append. */
    offset: Offset | undefined;
    /** Whether the stream is now closed. */
    streamClosed: boolean;
}
/** Options of `close`. */
export interface CloseOptions {
    /** A final message, appended atomically with the close. */
    body?: string | Uint8Array;
    /** The content type of the final message. */
    contentType?: string;
    /** Cancels the request. */
    signal?: AbortSignal;
}
/** The result of `close`. */
export interface CloseResult {
    /** The stream's final offset (`""` in the rare case the server did not send it). */
    finalOffset: Offset;
}
/** Stream metadata; `exists: false` when there is no stream at the URL. */
export type HeadResult = {
    exists: false;
} | {
    exists: true;
    /** The content type. */
    contentType: string | undefined;
    /** The tail offset. */
    offset: Offset | undefined;
    /** The ETag. */
    etag: string | undefined;
    /** Whether the stream is closed. */
    streamClosed: boolean;
    /** The sliding TTL in seconds. */
    ttlSeconds: number | undefined;
    /** The absolute expiry. */
    expiresAt: string | undefined;
};
/** Options of a read. */
export interface ReadOptions {
    /** Where to start (default `"-1"`, the beginning). */
    offset?: Offset;
    /** What to do after catching up (default `true`: SSE for JSON streams, long-poll otherwise). */
    live?: LiveMode;
    /** Read the data as JSON whatever the content type. */
    json?: boolean;
    /** Headers of this read (over the handle's). */
    headers?: HeadersRecord;
    /** Query parameters of this read. */
    params?: ParamsRecord;
    /**
     * Accepted for code written for `@durable-streams/client`, whose `ReadOptions` declares it
     * but whose 0.2.7 never reads it; ignored here too. Live requests echo the cursor the server
     * sent last (`response.cursor`), as the protocol asks.
     */
    cursor?: string;
    /** Cancels the read. */
    signal?: AbortSignal;
    /** Consulted after every failed attempt of a request; see {@link StreamErrorHandler}. */
    onError?: StreamErrorHandler;
    /** Retries of failed requests. */
    backoffOptions?: BackoffOptions;
    /** SSE reconnection settings. */
    sseResilience?: SSEResilienceOptions;
    /**
     * The most response data held before it is handed on (default 8 MiB): stream chunks carry at
     * most about this much, and a JSON message larger than this fails with `PARSE_ERROR`.
     */
    maxChunkBytes?: number;
    /**
     * The most data `body()`, `text()` and `json()` collect (default 256 MiB; `PARSE_ERROR` past
     * it). `Infinity` is no limit.
     */
    maxReadBytes?: number;
}
/** Options of {@link stream}. */
export interface StreamOptions extends ReadOptions {
    /** The stream URL. */
    url: string | URL;
    /** Accepted for compatibility. */
    warnOnHttp?: boolean;
    /**
     * Accepted for compatibility, not used: requests go through the native HTTP client. Setting
     * it emits a warning once per process (code `DSC_FETCH_IGNORED`).
     */
    fetch?: typeof globalThis.fetch;
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
export declare function stream<TJson = unknown>(options: StreamOptions): Promise<StreamResponse<TJson>>;
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
export declare class DurableStream {
    #private;
    /** The stream URL. */
    readonly url: string;
    constructor(options: DurableStreamOptions);
    /** The stream's content type, when known (from the options, create, head or connect). */
    get contentType(): string | undefined;
    set contentType(ct: string | undefined);
    /** Creates the stream and returns a handle on it. */
    static create(options: DurableStreamOptions & CreateOptions): Promise<DurableStream>;
    /** A handle on an existing stream; one `HEAD` learns its content type. */
    static connect(options: DurableStreamOptions): Promise<DurableStream>;
    /** The metadata of the stream at `options.url`. */
    static head(options: DurableStreamOptions): Promise<HeadResult>;
    /** Deletes the stream at `options.url`. */
    static delete(options: DurableStreamOptions): Promise<void>;
    /**
     * Creates the stream (`PUT`); succeeds when an identical stream already exists. Resolves to
     * this handle, as in `@durable-streams/client`.
     */
    create(options?: CreateOptions): Promise<this>;
    /** The handle's headers with computed values evaluated now (as sent on the next request). */
    resolveHeaders(): Promise<Record<string, string>>;
    /** The stream's metadata; `{exists: false}` when there is no stream. */
    head(options?: {
        signal?: AbortSignal;
    }): Promise<HeadResult>;
    /**
     * Appends one message. On a JSON stream pass one JSON text (or a value, which is
     * serialized); otherwise a string or bytes.
     */
    append(body: string | Uint8Array | Promise<string | Uint8Array>, options?: AppendOptions): Promise<AppendResult>;
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
    appendStream(source: ReadableStream<Uint8Array | string> | AsyncIterable<Uint8Array | string>, options?: AppendOptions): Promise<AppendResult>;
    /** Closes the stream (no more appends), with an optional final message. */
    close(options?: CloseOptions): Promise<CloseResult>;
    /** Deletes the stream. */
    delete(options?: {
        signal?: AbortSignal;
    }): Promise<void>;
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
    writable(options?: Pick<IdempotentProducerOptions, "headers" | "lingerMs" | "maxBatchBytes" | "onError"> & {
        producerId?: string;
        signal?: AbortSignal;
    }): WritableStream<Uint8Array | string>;
    /** Reads the stream; the handle's headers, parameters, backoff options and error hook apply. */
    stream<TJson = unknown>(options?: ReadOptions): Promise<StreamResponse<TJson>>;
}
