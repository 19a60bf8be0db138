/** `StreamResponse`: one read, consumed once, as a whole, as a stream or through a subscriber. */
/** How a read continues after catching up: `false` stops, `true` (auto) picks SSE for JSON streams and long-poll otherwise. */
export type LiveMode = boolean | "long-poll" | "sse";
/** A stream offset: `"-1"` (beginning), `"now"` (tail) or one the server returned. */
export type Offset = string;
/** The position after a batch or chunk. */
export interface BatchMeta {
    /** The offset to resume from after this batch. */
    offset: Offset;
    /** The server's cursor. */
    cursor: string | undefined;
    /** Whether the reader had caught up at this point. */
    upToDate: boolean;
    /** Whether the stream is closed and this batch holds its last data. */
    streamClosed: boolean;
    /**
     * Whether the batch ends where a response (or an SSE control event) ends: then `offset`
     * resumes exactly after it, and is the one to store. `false` for a part of a response still
     * arriving (or SSE data before its control event): `offset` is then where that response
     * started, and `upToDate`/`streamClosed` are false; resuming from it repeats the part and
     * loses nothing. An addition of this package, set on every batch it hands out; optional in
     * the type only so that code building the reference's `BatchMeta` still type-checks.
     */
    checkpoint?: boolean;
}
/** The JSON messages of one batch. */
export interface JsonBatch<T = unknown> extends BatchMeta {
    /** The messages. */
    items: T[];
}
/** The bytes of one batch. */
export interface ByteChunk extends BatchMeta {
    /** The data. */
    data: Uint8Array;
}
/** The text of one batch. */
export interface TextChunk extends BatchMeta {
    /** The text. */
    text: string;
}
/**
 * What a JSON consumer keeps of each message, so that only that is built in JavaScript (an
 * addition of this client). Every message is still checked whole. Give one of the two.
 */
export interface JsonPickOptions {
    /**
     * The value of this top-level member of each message: `null` where a message has no such
     * member or is not an object.
     */
    field?: string;
    /**
     * An object of these top-level members that each message has, in the message's order: `null`
     * for a message that is not an object.
     */
    fields?: readonly string[];
}
/** A `ReadableStream` that is also an async iterable (as it is in Node). */
export type ReadableStreamAsyncIterable<T> = ReadableStream<T> & AsyncIterable<T>;
/** The reference client's name for {@link BatchMeta}. */
export type JsonBatchMeta = BatchMeta;
/** The live modes of the reference client's older read options. */
export type LegacyLiveMode = "long-poll" | "sse";
/**
 * `stream`, made async-iterable where the runtime's `ReadableStream` is not (Node's already
 * is; then `stream` is returned as it is).
 */
export declare function asAsyncIterableReadableStream<T>(stream: ReadableStream<T>): ReadableStreamAsyncIterable<T>;
/**
 * A read in progress. Its data can be consumed exactly once: as a whole (`json`, `text`,
 * `body`), as a stream (`jsonStream`, `textStream`, `bodyStream`) or through a subscriber
 * (`subscribeJson`, `subscribeText`, `subscribeBytes`); a second consumer fails with code
 * `ALREADY_CONSUMED`. `offset`, `cursor`, `upToDate` and `streamClosed` advance as data is
 * delivered.
 */
export declare class StreamResponse<TJson = unknown> {
    #private;
    /**
     * Settles when the read ends: resolves on completion or cancellation, rejects with the
     * error that ended it. Never an unhandled rejection when nobody listens.
     */
    readonly closed: Promise<void>;
    /** The stream URL. */
    get url(): string;
    /** The stream's content type. */
    get contentType(): string | undefined;
    /** The live mode of this read. */
    get live(): LiveMode;
    /** The offset the read started from. */
    get startOffset(): Offset;
    /** The headers of the first response (the one `stream()` waited for). */
    get headers(): Headers;
    /** The HTTP status of the first response. */
    get status(): number;
    /** The status text of the first response (the standard phrase, `"OK"`). */
    get statusText(): string;
    /** Whether the first response was a success: always true, since failures are thrown. */
    get ok(): boolean;
    /** Whether the first response is still awaited: always false once `stream()` resolved. */
    get isLoading(): boolean;
    /**
     * The offset after the data delivered so far; right after `stream()`, the first response's
     * `Stream-Next-Offset`.
     */
    get offset(): Offset;
    /** The last cursor the server sent. */
    get cursor(): string | undefined;
    /** Whether the data delivered so far reaches the tail of the stream (first response: its header). */
    get upToDate(): boolean;
    /** Whether the last data of a closed stream was delivered (first response: its header). */
    get streamClosed(): boolean;
    /** Stops the read: the request in flight is abandoned, streams and subscribers end. */
    cancel(_reason?: unknown): void;
    /** All bytes up to the first up-to-date point (or the end of a closed stream). */
    body(): Promise<Uint8Array>;
    /** All text up to the first up-to-date point. */
    text(): Promise<string>;
    /**
     * All JSON messages up to the first up-to-date point (JSON streams, or `json: true`). With
     * `{ field }` or `{ fields }`, only that part of each message (see {@link JsonPickOptions}).
     */
    json<T = TJson>(options?: JsonPickOptions): Promise<T[]>;
    /** The data as a stream of byte chunks (async iterable). */
    bodyStream(): ReadableStreamAsyncIterable<Uint8Array>;
    /** The data as a stream of text chunks (async iterable). */
    textStream(): ReadableStreamAsyncIterable<string>;
    /** The JSON messages one by one (async iterable); `options` as in {@link json}. */
    jsonStream<T = TJson>(options?: JsonPickOptions): ReadableStreamAsyncIterable<T>;
    /**
     * Calls `callback` with every batch of JSON messages; the next batch is fetched once the
     * returned promise settles (backpressure). Returns a function that unsubscribes. Errors end
     * the subscription and reject `closed`. `options` as in {@link json}.
     */
    subscribeJson<T = TJson>(callback: (batch: JsonBatch<T>) => void | Promise<void>, options?: JsonPickOptions): () => void;
    /** Like {@link subscribeJson}, with the raw bytes of each batch. */
    subscribeBytes(callback: (chunk: ByteChunk) => void | Promise<void>): () => void;
    /** Like {@link subscribeJson}, with the text of each batch. */
    subscribeText(callback: (chunk: TextChunk) => void | Promise<void>): () => void;
}
