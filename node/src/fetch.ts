/**
 * `createFetchWithBackoff` and `createFetchWithConsumedBody`: wrappers around a `fetch`
 * function with the behaviour `@durable-streams/client` documents for them, for code that
 * uses them directly (this package's own requests retry in the Rust core).
 */

import { BackoffDefaults } from "./constants.js";
import { FetchBackoffAbortError, FetchError } from "./errors.js";

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

/** Milliseconds a `Retry-After` value asks for (seconds or an HTTP date), at most an hour. */
function retryAfterMs(value: string | undefined): number {
  if (!value) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds > 0) return Math.min(seconds * 1000, 3_600_000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, Math.min(at - Date.now(), 3_600_000));
}

/**
 * A `fetch` that retries network failures, 429 and 5xx answers with full-jitter exponential
 * backoff (never sooner than a `Retry-After` asks); other 4xx answers throw a
 * {@link FetchError} at once, and an aborted signal a {@link FetchBackoffAbortError}.
 */
export function createFetchWithBackoff(
  fetchClient: typeof fetch,
  backoffOptions: FetchBackoffOptions = BackoffDefaults,
): typeof fetch {
  const { initialDelay, maxDelay, multiplier, onFailedAttempt, debug = false } = backoffOptions;
  const maxRetries = backoffOptions.maxRetries ?? Infinity;
  return async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : input.toString();
    let bound = initialDelay;
    for (let attempt = 0; ; attempt++) {
      let failure: unknown;
      try {
        const res = await fetchClient(input, init);
        if (res.ok) return res;
        failure = await FetchError.fromResponse(res, url);
      } catch (e) {
        failure = e;
      }
      onFailedAttempt?.();
      if (init?.signal?.aborted) throw new FetchBackoffAbortError();
      const status = failure instanceof FetchError ? failure.status : undefined;
      const retryable = status === undefined || status === 429 || status >= 500;
      if (!retryable || attempt >= maxRetries) throw failure;
      const wait = Math.max(
        failure instanceof FetchError ? retryAfterMs(failure.headers["retry-after"]) : 0,
        Math.min(Math.random() * bound, maxDelay),
      );
      if (debug) console.log(`retry ${attempt + 1} of ${url} in ${Math.round(wait)} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      bound = Math.min(bound * multiplier, maxDelay);
    }
  };
}

/**
 * A `fetch` whose responses have their body read in full before they are returned (so a
 * connection is never held by an unread body); a failure to read it is a {@link FetchError}.
 */
export function createFetchWithConsumedBody(fetchClient: typeof fetch): typeof fetch {
  return async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    const res = await fetchClient(input, init);
    if (res.status < 200 || [201, 204, 205].includes(res.status)) return res;
    try {
      const body = await res.arrayBuffer();
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } catch (e) {
      if (init?.signal?.aborted) throw new FetchBackoffAbortError();
      const headers: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        headers[name] = value;
      });
      const url = input instanceof Request ? input.url : input.toString();
      throw new FetchError(res.status, undefined, undefined, headers, url, e instanceof Error ? e.message : String(e));
    }
  };
}

let warnedAboutHttp = false;

/**
 * In a browser, warns once that a plain `http:` stream URL limits the page to a few parallel
 * connections (HTTP/1.1); elsewhere, and with `warnOnHttp === false`, does nothing.
 */
export function warnIfUsingHttpInBrowser(url: string | URL, warnOnHttp?: boolean): void {
  if (warnOnHttp === false || warnedAboutHttp) return;
  const g = globalThis as { window?: unknown; document?: unknown };
  if (g.window === undefined || g.document === undefined) return;
  let protocol: string;
  try {
    protocol = new URL(url.toString()).protocol;
  } catch {
    return;
  }
  if (protocol === "http:") {
    warnedAboutHttp = true;
    console.warn(
      "durable-streams-client: an http: stream URL limits a browser to about 6 connections " +
        "per origin (HTTP/1.1); use https: (HTTP/2) for many concurrent streams.",
    );
  }
}

/** Lets tests see the warning of {@link warnIfUsingHttpInBrowser} again. */
export function _resetHttpWarningForTesting(): void {
  warnedAboutHttp = false;
}
