/** Helpers shared by the classes: option conversion, cancellation and error mapping. */
import * as native from "../native/index.js";
/** A value or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;
/** Header values: strings, or (async) functions evaluated for every request. */
export type HeadersRecord = Record<string, string | (() => MaybePromise<string>)>;
/** Query parameter values: strings, or (async) functions evaluated for every request. */
export type ParamsRecord = Record<string, string | (() => MaybePromise<string>) | undefined>;
/** Retry settings of failed requests (network errors, 5xx, 429). */
export interface BackoffOptions {
    /** Upper bound of the first delay in milliseconds (default 100). */
    initialDelay?: number;
    /** Upper bound of any delay in milliseconds (default 60000). */
    maxDelay?: number;
    /** Growth factor of the bound (default 1.3). */
    multiplier?: number;
    /** Retries after the first attempt (default `Infinity`). */
    maxRetries?: number;
    /**
     * Called after every failed attempt, whether or not it will be retried, as the reference
     * client does: of reads (before `onError`), and of a handle's `create()`, `append()`,
     * `appendStream()`, `close()` and `delete()` (appends use `appendBackoffOptions`'s when it has
     * one). Not called by `head()` (the reference sends it without backoff) or producers (their
     * failures reach `onError`). A callback that throws is ignored.
     */
    onFailedAttempt?: () => void;
}
/** The native description of headers and parameters. */
export declare function extras(headers?: HeadersRecord, params?: ParamsRecord): native.Extras | undefined;
/** Native backoff options. */
export declare function backoff(o?: BackoffOptions): native.Backoff | undefined;
/** Checks a `signal` option. */
export declare function checkSignal(signal: unknown): AbortSignal | undefined;
/** The rejection of an aborted operation: the signal's reason. */
export declare function abortReason(signal: AbortSignal): unknown;
/**
 * Runs a native call; `signal` cancels it (dropping the Rust future and its request) and the
 * call then rejects with `aborted(signal)` (default: the signal's reason). Native errors become
 * the package's classes.
 */
export declare function run<T>(signal: AbortSignal | undefined, call: (token: native.CancelToken | undefined) => Promise<T>, aborted?: (signal: AbortSignal) => unknown): Promise<T>;
/**
 * The rejection of an aborted request that the reference client sends through its backoff
 * wrapper (create, append, appendStream, close, delete, a read's first request): a
 * `FetchBackoffAbortError`, with the signal's reason as its `cause`.
 */
export declare function backoffAborted(signal: AbortSignal): unknown;
/** Runs a synchronous native call, converting its errors. */
export declare function sync<T>(call: () => T): T;
/** A message body as the native layer takes it. */
/**
 * A message for `append` or `close`: a string or bytes, as in `@durable-streams/client`, which
 * refuses other values too (on a JSON stream pass `JSON.stringify(value)`).
 */
export declare function messageOf(body: unknown, what: string): string | Buffer;
/** A request body: a string, bytes, or a value serialized as JSON (`create`'s `body`). */
export declare function bodyOf(body: string | Uint8Array | object): string | Buffer;
/**
 * Warns once per process that a `fetch` option is not used: requests go through the native
 * HTTP client, so a custom `fetch` (a proxy, a mock, instrumentation) has no effect.
 */
export declare function warnFetchIgnored(): void;
