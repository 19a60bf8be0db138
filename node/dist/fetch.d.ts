/**
 * `createFetchWithBackoff` and `createFetchWithConsumedBody`: wrappers around a `fetch`
 * function with the behaviour `@durable-streams/client` documents for them, for code that
 * uses them directly (this package's own requests retry in the Rust core).
 */
/** Options of {@link createFetchWithBackoff}. */
export interface FetchBackoffOptions {
    /** Upper bound of the first delay in milliseconds. */
    initialDelay: number;
    /** Upper bound of any delay in milliseconds. */
    maxDelay: number;
    /** Growth factor of the bound. */
    multiplier: number;
    /** Retries after the first attempt (default unbounded). */
    maxRetries?: number;
    /** Called after every failed attempt. */
    onFailedAttempt?: () => void;
    /** Logs each retry to the console. */
    debug?: boolean;
}
/**
 * A `fetch` that retries network failures, 429 and 5xx answers with full-jitter exponential
 * backoff (never sooner than a `Retry-After` asks); other 4xx answers throw a
 * {@link FetchError} at once, and an aborted signal a {@link FetchBackoffAbortError}.
 */
export declare function createFetchWithBackoff(fetchClient: typeof fetch, backoffOptions?: FetchBackoffOptions): typeof fetch;
/**
 * A `fetch` whose responses have their body read in full before they are returned (so a
 * connection is never held by an unread body); a failure to read it is a {@link FetchError}.
 */
export declare function createFetchWithConsumedBody(fetchClient: typeof fetch): typeof fetch;
/**
 * In a browser, warns once that a plain `http:` stream URL limits the page to a few parallel
 * connections (HTTP/1.1); elsewhere, and with `warnOnHttp === false`, does nothing.
 */
export declare function warnIfUsingHttpInBrowser(url: string | URL, warnOnHttp?: boolean): void;
/** Lets tests see the warning of {@link warnIfUsingHttpInBrowser} again. */
export declare function _resetHttpWarningForTesting(): void;
