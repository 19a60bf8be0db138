"use strict";
/**
 * `createFetchWithBackoff` and `createFetchWithConsumedBody`: wrappers around a `fetch`
 * function with the behaviour `@durable-streams/client` documents for them, for code that
 * uses them directly (this package's own requests retry in the Rust core).
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.createFetchWithBackoff = createFetchWithBackoff;
exports.createFetchWithConsumedBody = createFetchWithConsumedBody;
exports.warnIfUsingHttpInBrowser = warnIfUsingHttpInBrowser;
exports._resetHttpWarningForTesting = _resetHttpWarningForTesting;
const constants_js_1 = require("./constants.js");
const errors_js_1 = require("./errors.js");
/** Milliseconds a `Retry-After` value asks for (seconds or an HTTP date), at most an hour. */
function retryAfterMs(value) {
    if (!value)
        return 0;
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds > 0)
        return Math.min(seconds * 1000, 3_600_000);
    const at = Date.parse(value);
    return Number.isNaN(at) ? 0 : Math.max(0, Math.min(at - Date.now(), 3_600_000));
}
/**
 * A `fetch` that retries network failures, 429 and 5xx answers with full-jitter exponential
 * backoff (never sooner than a `Retry-After` asks); other 4xx answers throw a
 * {@link FetchError} at once, and an aborted signal a {@link FetchBackoffAbortError}.
 */
function createFetchWithBackoff(fetchClient, backoffOptions = constants_js_1.BackoffDefaults) {
    const { initialDelay, maxDelay, multiplier, onFailedAttempt, debug = false } = backoffOptions;
    const maxRetries = backoffOptions.maxRetries ?? Infinity;
    return async (input, init) => {
        const url = input instanceof Request ? input.url : input.toString();
        let bound = initialDelay;
        for (let attempt = 0;; attempt++) {
            let failure;
            try {
                const res = await fetchClient(input, init);
                if (res.ok)
                    return res;
                failure = await errors_js_1.FetchError.fromResponse(res, url);
            }
            catch (e) {
                failure = e;
            }
            onFailedAttempt?.();
            if (init?.signal?.aborted)
                throw new errors_js_1.FetchBackoffAbortError();
            const status = failure instanceof errors_js_1.FetchError ? failure.status : undefined;
            const retryable = status === undefined || status === 429 || status >= 500;
            if (!retryable || attempt >= maxRetries)
                throw failure;
            const wait = Math.max(failure instanceof errors_js_1.FetchError ? retryAfterMs(failure.headers["retry-after"]) : 0, Math.min(Math.random() * bound, maxDelay));
            if (debug)
                console.log(`retry ${attempt + 1} of ${url} in ${Math.round(wait)} ms`);
            await new Promise((resolve) => setTimeout(resolve, wait));
            bound = Math.min(bound * multiplier, maxDelay);
        }
    };
}
/**
 * A `fetch` whose responses have their body read in full before they are returned (so a
 * connection is never held by an unread body); a failure to read it is a {@link FetchError}.
 */
function createFetchWithConsumedBody(fetchClient) {
    return async (input, init) => {
        const res = await fetchClient(input, init);
        if (res.status < 200 || [201, 204, 205].includes(res.status))
            return res;
        try {
            const body = await res.arrayBuffer();
            return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
        }
        catch (e) {
            if (init?.signal?.aborted)
                throw new errors_js_1.FetchBackoffAbortError();
            const headers = {};
            res.headers.forEach((value, name) => {
                headers[name] = value;
            });
            const url = input instanceof Request ? input.url : input.toString();
            throw new errors_js_1.FetchError(res.status, undefined, undefined, headers, url, e instanceof Error ? e.message : String(e));
        }
    };
}
let warnedAboutHttp = false;
/**
 * In a browser, warns once that a plain `http:` stream URL limits the page to a few parallel
 * connections (HTTP/1.1); elsewhere, and with `warnOnHttp === false`, does nothing.
 */
function warnIfUsingHttpInBrowser(url, warnOnHttp) {
    if (warnOnHttp === false || warnedAboutHttp)
        return;
    const g = globalThis;
    if (g.window === undefined || g.document === undefined)
        return;
    let protocol;
    try {
        protocol = new URL(url.toString()).protocol;
    }
    catch {
        return;
    }
    if (protocol === "http:") {
        warnedAboutHttp = true;
        console.warn("durable-streams-client: an http: stream URL limits a browser to about 6 connections " +
            "per origin (HTTP/1.1); use https: (HTTP/2) for many concurrent streams.");
    }
}
/** Lets tests see the warning of {@link warnIfUsingHttpInBrowser} again. */
function _resetHttpWarningForTesting() {
    warnedAboutHttp = false;
}
