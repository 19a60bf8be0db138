/** Helpers shared by the classes: option conversion, cancellation and error mapping. */

import * as native from "../native/index.js";
import { convert, DurableStreamError, FetchBackoffAbortError, InvalidSignalError } from "./errors.js";

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
export function extras(
  headers?: HeadersRecord,
  params?: ParamsRecord,
): native.Extras | undefined {
  if (!headers && !params) return undefined;
  const fns: Array<() => MaybePromise<string>> = [];
  const entries = (rec: ParamsRecord | undefined): native.Entry[] =>
    Object.entries(rec ?? {}).flatMap(([name, v]): native.Entry[] => {
      if (v === undefined) return [];
      if (typeof v === "string") return [{ name, value: v }];
      if (typeof v === "function") {
        fns.push(v);
        return [{ name, computed: fns.length - 1 }];
      }
      throw new DurableStreamError(
        `the value of ${JSON.stringify(name)} must be a string or a function`,
        "INVALID_ARGUMENT",
      );
    });
  const out: native.Extras = { headers: entries(headers), params: entries(params) };
  if (fns.length > 0) {
    out.resolve = (n: number) => Promise.resolve().then(() => fns[n]!());
  }
  return out;
}

/** Native backoff options. */
export function backoff(o?: BackoffOptions): native.Backoff | undefined {
  if (!o) return undefined;
  return {
    initialDelay: o.initialDelay,
    maxDelay: o.maxDelay,
    multiplier: o.multiplier,
    maxRetries: o.maxRetries,
  };
}

/** Checks a `signal` option. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal === null) return undefined;
  if (!(signal instanceof AbortSignal)) throw new InvalidSignalError();
  return signal;
}

/** The rejection of an aborted operation: the signal's reason. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/**
 * Runs a native call; `signal` cancels it (dropping the Rust future and its request) and the
 * call then rejects with `aborted(signal)` (default: the signal's reason). Native errors become
 * the package's classes.
 */
export async function run<T>(
  signal: AbortSignal | undefined,
  call: (token: native.CancelToken | undefined) => Promise<T>,
  aborted: (signal: AbortSignal) => unknown = abortReason,
): Promise<T> {
  if (!signal) {
    try {
      return await call(undefined);
    } catch (e) {
      throw convert(e);
    }
  }
  if (signal.aborted) throw aborted(signal);
  const token = new native.CancelToken();
  const onAbort = (): void => token.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await call(token);
  } catch (e) {
    if (token.cancelled) throw aborted(signal);
    throw convert(e);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * The rejection of an aborted request that the reference client sends through its backoff
 * wrapper (create, append, appendStream, close, delete, a read's first request): a
 * `FetchBackoffAbortError`, with the signal's reason as its `cause`.
 */
export function backoffAborted(signal: AbortSignal): unknown {
  const e = new FetchBackoffAbortError();
  Object.defineProperty(e, "cause", { value: abortReason(signal), writable: true, configurable: true });
  return e;
}

/** Runs a synchronous native call, converting its errors. */
export function sync<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw convert(e);
  }
}

/** A message body as the native layer takes it. */
/**
 * A message for `append` or `close`: a string or bytes, as in `@durable-streams/client`, which
 * refuses other values too (on a JSON stream pass `JSON.stringify(value)`).
 */
export function messageOf(body: unknown, what: string): string | Buffer {
  if (typeof body === "string" || body instanceof Uint8Array) return bodyOf(body);
  throw new DurableStreamError(
    `${what} takes a string or a Uint8Array; for a JSON value pass JSON.stringify(value)`,
    "BAD_REQUEST",
  );
}

/** A request body: a string, bytes, or a value serialized as JSON (`create`'s `body`). */
export function bodyOf(body: string | Uint8Array | object): string | Buffer {
  if (typeof body === "string") return body;
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return JSON.stringify(body);
}

let fetchWarned = false;

/**
 * Warns once per process that a `fetch` option is not used: requests go through the native
 * HTTP client, so a custom `fetch` (a proxy, a mock, instrumentation) has no effect.
 */
export function warnFetchIgnored(): void {
  if (fetchWarned) return;
  fetchWarned = true;
  process.emitWarning(
    "the fetch option is ignored: durable-streams-client sends its requests through its native " +
      "HTTP client. Pass headers (values may be functions, called per request), params and " +
      "backoffOptions instead.",
    { code: "DSC_FETCH_IGNORED", type: "DurableStreamsWarning" },
  );
}
