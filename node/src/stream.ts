/** `DurableStream` (a handle on one stream URL) and `stream()` (a read without a handle). */

import * as native from "../native/index.js";
import { convert, DurableStreamError, MissingStreamUrlError } from "./errors.js";
import {
  backoff,
  backoffAborted,
  type BackoffOptions,
  bodyOf,
  messageOf,
  checkSignal,
  extras,
  type HeadersRecord,
  type MaybePromise,
  type ParamsRecord,
  run,
  sync,
  warnFetchIgnored,
} from "./internal.js";
import { IdempotentProducer, type IdempotentProducerOptions } from "./producer.js";
import { type LiveMode, type Offset, StreamResponse } from "./response.js";

/** What an error hook may answer: headers and parameters to retry with, or nothing to give up. */
export type RetryOpts = { headers?: HeadersRecord; params?: ParamsRecord };

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
export type HeadResult =
  | { exists: false }
  | {
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
 * An iterator over a `ReadableStream`'s chunks; `return()` cancels the stream (which also ends
 * a read in progress) and releases its lock.
 */
function readerIterator<T>(stream: ReadableStream<T>): AsyncIterator<T> {
  const reader = stream.getReader();
  return {
    next: async (): Promise<IteratorResult<T>> => {
      const { done, value } = await reader.read();
      return done ? { done: true, value: undefined } : { done: false, value };
    },
    return: async (): Promise<IteratorResult<T>> => {
      await reader.cancel();
      reader.releaseLock();
      return { done: true, value: undefined };
    },
  };
}

/** Header or parameter values with the functions among them called. */
async function resolve(rec?: ParamsRecord): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec ?? {})) {
    if (v !== undefined) out[k] = typeof v === "string" ? v : await v();
  }
  return out;
}

/**
 * The native error hook of a read: `onFailedAttempt` (from `backoffOptions`) is called after
 * every failed attempt, as the reference's fetch wrapper does, then `onError` decides; without
 * `onError` the retry policy does. A throwing callback ends the read with the original error.
 */
function hook(
  onError: StreamErrorHandler | undefined,
  onFailedAttempt: (() => void) | undefined,
): native.NativeReadOptions["onError"] {
  if (!onError && !onFailedAttempt) return undefined;
  return async (description: string): Promise<string | null> => {
    onFailedAttempt?.();
    if (!onError) return null;
    const err = convert(new Error(description)) as Error;
    const answer = await onError(err);
    if (!answer) return null;
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
function observer(
  backoffOptions: BackoffOptions | undefined,
  appendBackoffOptions: BackoffOptions | undefined,
): ((operation: string) => void) | undefined {
  const general = backoffOptions?.onFailedAttempt;
  const append = appendBackoffOptions?.onFailedAttempt ?? general;
  if (!general && !append) return undefined;
  return (operation: string): void => {
    const f = operation === "append" ? append : operation === "head" ? undefined : general;
    try {
      f?.();
    } catch {
      // The reference lets it escape into its retry loop, where it ends the request; here the
      // request's own outcome is kept.
    }
  };
}

function urlOf(url: string | URL | undefined): string {
  if (url === undefined || url === "") throw new MissingStreamUrlError();
  return url.toString();
}

/** The live mode for the addon; unset stays unset (the core's default applies). */
function liveOf(live: LiveMode | undefined): string | undefined {
  if (live === undefined) return undefined;
  if (live === true) return "auto";
  if (live === false) return "off";
  return live;
}

/** The `LiveMode` the core chose for a read whose `live` was left unset. */
function liveModeOf(mode: string): LiveMode {
  if (mode === "auto") return true;
  if (mode === "off") return false;
  if (mode === "long-poll" || mode === "sse") return mode;
  return true;
}

function readOptions(o: ReadOptions): native.NativeReadOptions {
  return {
    offset: o.offset,
    live: liveOf(o.live),
    json: o.json,
    extras: extras(o.headers, o.params),
    backoff: backoff(o.backoffOptions),
    sseResilience: o.sseResilience,
    onError: hook(o.onError, o.backoffOptions?.onFailedAttempt),
    maxChunkBytes: o.maxChunkBytes,
    maxReadBytes: o.maxReadBytes,
  };
}

async function read<T>(
  handle: native.NativeStream,
  o: ReadOptions,
  handleSignal: AbortSignal | undefined,
): Promise<StreamResponse<T>> {
  const signal = checkSignal(o.signal) ?? handleSignal;
  const opts = readOptions(o);
  const n = await run(signal, (t) => handle.stream(opts, t), backoffAborted);
  return new StreamResponse<T>(n, o.live ?? liveModeOf(n.live), signal);
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
export async function stream<TJson = unknown>(options: StreamOptions): Promise<StreamResponse<TJson>> {
  if (options.fetch !== undefined) warnFetchIgnored();
  const handle = sync(() => new native.NativeStream(urlOf(options.url)));
  return read<TJson>(handle, options, undefined);
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
export class DurableStream {
  /** The stream URL. */
  readonly url: string;
  readonly #native: native.NativeStream;
  readonly #options: StreamHandleOptions;
  #contentType: string | undefined;

  constructor(options: DurableStreamOptions) {
    this.url = urlOf(options?.url);
    checkSignal(options.signal);
    this.#options = options;
    this.#contentType = options.contentType;
    this.#native = sync(
      () =>
        new native.NativeStream(this.url, {
          contentType: options.contentType,
          extras: extras(options.headers, options.params),
          backoff: backoff(options.backoffOptions),
          appendBackoff: backoff(options.appendBackoffOptions),
          onFailedAttempt: observer(options.backoffOptions, options.appendBackoffOptions),
        }),
    );
    if (options.fetch !== undefined) warnFetchIgnored();
  }

  /** The stream's content type, when known (from the options, create, head or connect). */
  get contentType(): string | undefined {
    return this.#contentType ?? this.#native.contentType ?? undefined;
  }

  set contentType(ct: string | undefined) {
    this.#contentType = ct;
  }

  #signal(s: AbortSignal | undefined): AbortSignal | undefined {
    return checkSignal(s) ?? this.#options.signal;
  }

  /** Creates the stream and returns a handle on it. */
  static async create(options: DurableStreamOptions & CreateOptions): Promise<DurableStream> {
    const handle = new DurableStream(options);
    await handle.create(options);
    return handle;
  }

  /** A handle on an existing stream; one `HEAD` learns its content type. */
  static async connect(options: DurableStreamOptions): Promise<DurableStream> {
    const handle = new DurableStream(options);
    const signal = handle.#signal(undefined);
    const h = await run(signal, (t) => handle.#native.head(t));
    handle.#contentType = h.contentType ?? handle.#contentType;
    return handle;
  }

  /** The metadata of the stream at `options.url`. */
  static head(options: DurableStreamOptions): Promise<HeadResult> {
    return new DurableStream(options).head();
  }

  /** Deletes the stream at `options.url`. */
  static delete(options: DurableStreamOptions): Promise<void> {
    return new DurableStream(options).delete();
  }

  /**
   * Creates the stream (`PUT`); succeeds when an identical stream already exists. Resolves to
   * this handle, as in `@durable-streams/client`.
   */
  async create(options: CreateOptions = {}): Promise<this> {
    const opts: native.NativeCreateOptions = {
      contentType: options.contentType ?? this.#contentType,
      ttlSeconds: options.ttlSeconds,
      expiresAt: options.expiresAt,
      closed: options.closed,
      body: options.body === undefined ? undefined : bodyOf(options.body),
      extras: extras(options.headers),
    };
    const r = await run(this.#signal(options.signal), (t) => this.#native.create(opts, t), backoffAborted);
    this.#contentType = r.contentType ?? opts.contentType ?? this.#contentType;
    return this;
  }

  /** The handle's headers with computed values evaluated now (as sent on the next request). */
  resolveHeaders(): Promise<Record<string, string>> {
    return resolve(this.#options.headers);
  }

  /** The stream's metadata; `{exists: false}` when there is no stream. */
  async head(options: { signal?: AbortSignal } = {}): Promise<HeadResult> {
    try {
      const h = await run(this.#signal(options.signal), (t) => this.#native.head(t));
      if (h.contentType) this.#contentType = h.contentType;
      return {
        exists: true,
        contentType: h.contentType ?? undefined,
        offset: h.offset ?? undefined,
        etag: h.etag ?? undefined,
        streamClosed: h.streamClosed,
        ttlSeconds: h.ttlSeconds ?? undefined,
        expiresAt: h.expiresAt ?? undefined,
      };
    } catch (e) {
      if (e instanceof DurableStreamError && e.code === "NOT_FOUND") return { exists: false };
      throw e;
    }
  }

  /**
   * Appends one message. On a JSON stream pass one JSON text (or a value, which is
   * serialized); otherwise a string or bytes.
   */
  async append(
    body: string | Uint8Array | Promise<string | Uint8Array>,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const data = messageOf(await body, "append()");
    const opts: native.NativeAppendOptions = {
      seq: options.seq,
      contentType: options.contentType,
      extras: extras(options.headers, options.params),
    };
    const r = await run(this.#signal(options.signal), (t) => this.#native.append(data, opts, t), backoffAborted);
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
  async appendStream(
    source: ReadableStream<Uint8Array | string> | AsyncIterable<Uint8Array | string>,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const iterator: AsyncIterator<Uint8Array | string> =
      source instanceof ReadableStream ? readerIterator(source) : source[Symbol.asyncIterator]();
    let done = false;
    let pulling = false;
    let sourceError: { error: unknown } | undefined;
    const pull = async (): Promise<Uint8Array | null> => {
      pulling = true;
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done) {
            done = true;
            return null;
          }
          const chunk: unknown = next.value;
          if (typeof chunk === "string") {
            if (chunk.length > 0) return Buffer.from(chunk, "utf8");
          } else if (chunk instanceof Uint8Array) {
            if (chunk.byteLength > 0) return chunk;
          } else {
            messageOf(chunk, "appendStream()");
          }
        }
      } catch (e) {
        done = true;
        sourceError = { error: e };
        throw e;
      } finally {
        pulling = false;
      }
    };
    const opts: native.NativeAppendOptions = {
      seq: options.seq,
      contentType: options.contentType,
      extras: extras(options.headers, options.params),
    };
    try {
      const r = await run(
        this.#signal(options.signal),
        (t) => this.#native.appendStream(pull, opts, t),
        backoffAborted,
      );
      return { offset: r.offset ?? undefined, streamClosed: r.streamClosed };
    } catch (e) {
      if (sourceError) throw sourceError.error;
      throw e;
    } finally {
      if (!done) {
        // Close the source. An async generator still busy with a pull would only run its
        // `finally` after that pull, which may never end: then don't wait for it.
        const closing = Promise.resolve()
          .then(() => iterator.return?.())
          .catch(() => undefined);
        if (!pulling) await closing;
      }
    }
  }

  /** Closes the stream (no more appends), with an optional final message. */
  async close(options: CloseOptions = {}): Promise<CloseResult> {
    const body = options.body === undefined ? undefined : messageOf(options.body, "close()");
    const opts: native.NativeAppendOptions = { contentType: options.contentType };
    const r = await run(this.#signal(options.signal), (t) => this.#native.close(body, opts, t), backoffAborted);
    // As in the reference: "" when the server sent no offset.
    return { finalOffset: r.finalOffset ?? "" };
  }

  /** Deletes the stream. */
  async delete(options: { signal?: AbortSignal } = {}): Promise<void> {
    await run(this.#signal(options.signal), (t) => this.#native.delete(t), backoffAborted);
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
  writable(
    options: Pick<IdempotentProducerOptions, "headers" | "lingerMs" | "maxBatchBytes" | "onError"> & {
      producerId?: string;
      signal?: AbortSignal;
    } = {},
  ): WritableStream<Uint8Array | string> {
    const producerId = options.producerId ?? `writable-${crypto.randomUUID().slice(0, 8)}`;
    let failure: Error | undefined;
    const producer = new IdempotentProducer(this, producerId, {
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
    const append = async (chunk: Uint8Array | string): Promise<void> => {
      try {
        producer.append(chunk);
      } catch (e) {
        if (!(e instanceof DurableStreamError) || e.code !== "BUFFER_FULL") throw e;
        // Back-pressure: wait for room, then the message fits (or fails for another reason).
        await producer.ready(typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength);
        producer.append(chunk);
      }
    };
    return new WritableStream<Uint8Array | string>({
      write: (chunk) => append(chunk),
      close: async () => {
        await producer.close();
        if (failure) throw failure;
      },
      abort: async () => {
        try {
          await producer.detach();
        } catch (e) {
          options.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
      },
    });
  }

  /** Reads the stream; the handle's headers, parameters, backoff options and error hook apply. */
  stream<TJson = unknown>(options: ReadOptions = {}): Promise<StreamResponse<TJson>> {
    const o: ReadOptions = {
      onError: this.#options.onError,
      backoffOptions: this.#options.backoffOptions,
      ...options,
    };
    return read<TJson>(this.#native, o, this.#signal(undefined));
  }

  /** @internal The native handle, for the producer. */
  get native(): native.NativeStream {
    return this.#native;
  }
}
