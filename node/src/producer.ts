/** `IdempotentProducer`: exactly-once, batching, pipelined appends. */

import * as native from "../native/index.js";
import { convert, DurableStreamError, fromDescription, InvalidArgumentError } from "./errors.js";
import {
  backoff,
  type BackoffOptions,
  messageOf,
  checkSignal,
  extras,
  type HeadersRecord,
  type ParamsRecord,
  run,
  sync,
  warnFetchIgnored,
} from "./internal.js";
import type { Offset } from "./response.js";
import type { DurableStream } from "./stream.js";

/** Options of {@link IdempotentProducer}. */
export interface IdempotentProducerOptions {
  /** The epoch to start with (default 0). */
  epoch?: number;
  /** On a 403 (stale epoch), take the server's epoch + 1 and resend (default false). */
  autoClaim?: boolean;
  /** The largest batch in bytes (default 1 MiB). */
  maxBatchBytes?: number;
  /** The most messages in a batch (default: no limit). */
  maxBatchMessages?: number;
  /** How long a batch waits for more messages, in milliseconds (default 5). */
  lingerMs?: number;
  /** Batches in flight at once (default 5). */
  maxInFlight?: number;
  /** The most bytes held before `append` fails with `BUFFER_FULL` (default 32 MiB). */
  maxBufferedBytes?: number;
  /** How long `ready()` waits for room, in milliseconds (default 60000). */
  bufferTimeoutMs?: number;
  /** How long a batch is retried before it fails, in milliseconds (default 120000). */
  deliveryTimeoutMs?: number;
  /** Retries of failed batches (network errors, 5xx, 429). */
  backoffOptions?: BackoffOptions;
  /** Headers of the producer's requests (over the handle's). */
  headers?: HeadersRecord;
  /** Query parameters of the producer's requests. */
  params?: ParamsRecord;
  /** Aborting detaches the producer (pending messages are still flushed). */
  signal?: AbortSignal;
  /** Called with every batch that fails for good. */
  onError?: (error: Error) => void;
  /**
   * Accepted for compatibility, not used: requests go through the native HTTP client. Setting
   * it emits a warning once per process (code `DSC_FETCH_IGNORED`).
   */
  fetch?: unknown;
}

/** Where a message was stored. */
export interface Delivery {
  /** The tail offset after the batch (undefined for a duplicate). */
  offset: Offset | undefined;
  /** Whether the server had already stored the batch. */
  duplicate: boolean;
  /** The epoch the batch was stored under. */
  epoch: number;
  /** The batch's sequence number. */
  seq: number;
}

/** Calls a user's error callback; what it throws becomes a process warning, never a crash. */
function report(onError: (error: Error) => void, error: Error): void {
  try {
    onError(error);
  } catch (e) {
    process.emitWarning(`IdempotentProducer onError callback threw: ${String(e)}`);
  }
}

/** Producer counters (a snapshot). */
export type ProducerMetrics = native.NativeProducerMetrics;

/**
 * The outcome of one appended message. Ignoring it costs nothing and can never cause an
 * unhandled rejection: a promise exists only once {@link Receipt.wait} is called.
 */
export class Receipt {
  readonly #producer: native.NativeProducer;
  /** The message's number in its producer (0 for the first append). */
  readonly messageNumber: number;

  /** @internal */
  constructor(producer: native.NativeProducer, messageNumber: number) {
    this.#producer = producer;
    this.messageNumber = messageNumber;
  }

  /** Waits for the message's batch to be stored (or to fail for good). */
  async wait(options: { signal?: AbortSignal } = {}): Promise<Delivery> {
    const d = await run(checkSignal(options.signal), (t) =>
      this.#producer.delivery(this.messageNumber, t),
    );
    return { offset: d.offset ?? undefined, duplicate: d.duplicate, epoch: d.epoch, seq: d.seq };
  }
}

/**
 * Appends to a stream exactly once: messages are batched, sent with a producer id, epoch and
 * sequence number, retried on network errors, 5xx and 429 with the same numbers, and
 * deduplicated by the server.
 *
 * `append` never blocks and never waits: it hands the message to the producer's native task
 * or, when `maxBufferedBytes` are held already, fails at once with code `BUFFER_FULL`; await
 * {@link ready} to wait for room.
 *
 * @example
 * ```ts
 * const producer = new IdempotentProducer(handle, "ingest-1", { autoClaim: true });
 * producer.append(JSON.stringify({ n: 1 }));
 * await producer.flush();
 * await producer.close();
 * ```
 */
export class IdempotentProducer {
  readonly #native: native.NativeProducer;
  /** The producer's slot for `producerAppendText`/`producerAppendJoined`/`producerAppendBytes`, the cheapest calls into the addon. */
  readonly #slot: number;
  /** Removes the listener on the constructor's `signal`, if there is one. */
  #unlisten: (() => void) | undefined;
  /** The producer id. */
  readonly producerId: string;

  constructor(stream: DurableStream, producerId: string, options: IdempotentProducerOptions = {}) {
    const signal = checkSignal(options.signal);
    const onError = options.onError;
    if (options.fetch !== undefined) warnFetchIgnored();
    this.producerId = producerId;
    this.#native = sync(
      () =>
        new native.NativeProducer(stream.native, producerId, {
          epoch: options.epoch,
          autoClaim: options.autoClaim,
          lingerMs: options.lingerMs,
          maxBatchBytes: options.maxBatchBytes,
          maxBatchMessages: options.maxBatchMessages,
          maxInFlight: options.maxInFlight,
          maxBufferedBytes: options.maxBufferedBytes,
          bufferTimeoutMs: options.bufferTimeoutMs,
          deliveryTimeoutMs: options.deliveryTimeoutMs,
          backoff: backoff(options.backoffOptions),
          extras: extras(options.headers, options.params),
          onError: onError ? (d: string) => report(onError, fromDescription(d)) : undefined,
        }),
    );
    this.#slot = this.#native.slot;
    if (signal) {
      // Held weakly, and removed once the producer is detached or closed: one signal shared by
      // many producers keeps neither them nor a listener each alive.
      const producer = new WeakRef(this);
      const stop = (): void => void producer.deref()?.detach().catch(() => undefined);
      if (signal.aborted) stop();
      else {
        signal.addEventListener("abort", stop, { once: true });
        this.#unlisten = () => signal.removeEventListener("abort", stop);
      }
    }
  }

  /**
   * Appends one message: a string or bytes (on a JSON stream one JSON text; a value is
   * refused with `BAD_REQUEST`, as in `@durable-streams/client`: pass `JSON.stringify(value)`). Returns at once; throws `BUFFER_FULL` when the buffer has no
   * room and `ALREADY_CLOSED` after `close`/`detach`.
   */
  append(body: string | Uint8Array): Receipt {
    if (typeof body !== "string" && !(body instanceof Uint8Array)) messageOf(body, "append()");
    let n: number;
    try {
      n =
        typeof body === "string"
          ? appendText(this.#slot, body)
          : native.producerAppendBytes(this.#slot, body);
    } catch (e) {
      throw convert(e);
    }
    return new Receipt(this.#native, n);
  }

  /**
   * Appends `messages[start..]` in order, with one call into the native layer per run of up
   * to 1,024 strings (cheaper than one `append` per message), as long as there is room;
   * returns the index of the first message not appended: `messages.length` when all were.
   *
   * Never waits: when a message does not fit (what would be `BUFFER_FULL`), it returns that
   * message's index; `await producer.ready()` and call again from there. Any other failure of
   * a message (not a string or `Uint8Array`, not one JSON value on a JSON stream, producer
   * closed) is thrown when it is the first message of the call; otherwise the call returns
   * its index and the next call throws it. Messages are not given receipts: `flush()` waits
   * for them.
   *
   * @example
   * ```ts
   * for (let i = producer.appendMany(lines); i < lines.length; i = producer.appendMany(lines, i)) {
   *   await producer.ready(Buffer.byteLength(lines[i]!));
   * }
   * await producer.flush();
   * ```
   */
  appendMany(messages: ReadonlyArray<string | Uint8Array>, start = 0): number {
    if (!Array.isArray(messages)) {
      throw new InvalidArgumentError("appendMany takes an array of messages");
    }
    if (!Number.isInteger(start) || start < 0 || start > 0xffff_ffff) {
      throw new InvalidArgumentError(`start must be a whole number >= 0, got ${String(start)}`);
    }
    return sync(() => appendRuns(this.#native, this.#slot, messages, start));
  }

  /** Resolves once a message of `bytes` bytes would fit in the buffer. */
  ready(bytes = 1, options: { signal?: AbortSignal } = {}): Promise<void> {
    return run(checkSignal(options.signal), (t) => this.#native.waitForRoom(bytes, t));
  }

  /** Alias of {@link ready}. */
  waitForRoom(bytes: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.ready(bytes, options);
  }

  /**
   * Sends what is batched and waits until everything appended before is stored or failed;
   * rejects with the first failure since the previous flush.
   */
  flush(options: { signal?: AbortSignal } = {}): Promise<void> {
    return run(checkSignal(options.signal), (t) => this.#native.flush(t));
  }

  /** Flushes, then closes the stream, optionally with a final message. */
  async close(finalMessage?: string | Uint8Array): Promise<{ finalOffset: Offset | undefined }> {
    const body = finalMessage === undefined ? undefined : messageOf(finalMessage, "close()");
    try {
      const o = await run(undefined, (t) => this.#native.close(body, t));
      return { finalOffset: o ?? undefined };
    } finally {
      this.#unlisten?.();
    }
  }

  /** Flushes and stops without closing the stream. */
  async detach(): Promise<void> {
    try {
      await run(undefined, (t) => this.#native.detach(t));
    } finally {
      this.#unlisten?.();
    }
  }

  /** Flushes, then starts a new session: epoch + 1, sequence 0. */
  restart(): Promise<void> {
    return run(undefined, (t) => this.#native.restart(t));
  }

  /** The current epoch. */
  get epoch(): number {
    return this.#native.epoch;
  }
  /** The sequence number of the next batch. */
  get nextSeq(): number {
    return this.#native.nextSeq;
  }
  /** Messages appended but not yet stored or failed. */
  get pendingCount(): number {
    return this.#native.pendingCount;
  }
  /** Batches in flight. */
  get inFlightCount(): number {
    return this.#native.inFlightCount;
  }
  /** The offset after the last stored batch. */
  get lastSuccessfulOffset(): Offset | undefined {
    return this.#native.lastOffset ?? undefined;
  }
  /** A snapshot of the producer's counters. */
  metrics(): ProducerMetrics {
    return this.#native.metrics();
  }
}

/**
 * The addon's `producerAppendText(slot, text)`: appends a string message with one plain napi
 * call (bindings/node/src/fast.rs); registered by the addon's init, so not in the generated
 * declarations.
 */
const appendText = (native as unknown as { producerAppendText: (slot: number, text: string) => number })
  .producerAppendText;

/**
 * The addon's `producerAppendJoined(slot, joined, count, throwFirst, oneByte)`: `appendMany` of
 * `count` string messages joined by NUL, with one plain napi call (bindings/node/src/fast.rs): how
 * many were appended, or -1 when `joined` does not hold `count` pieces (a message held a NUL).
 * `oneByte` (no character above U+00FF) lets the addon copy the text as Latin-1 instead of
 * widening it to UTF-16 and narrowing it back.
 */
const appendJoined = (
  native as unknown as {
    producerAppendJoined: (
      slot: number,
      joined: string,
      count: number,
      throwFirst: boolean,
      oneByte: boolean,
    ) => number;
  }
).producerAppendJoined;

/**
 * Finds a character above U+00FF. V8 compiles a separate matcher for one-byte strings, in which
 * this class can match nothing, so the test on the usual (one-byte) joined run returns at once;
 * on a two-byte string it stops at the first such character.
 */
const ABOVE_LATIN1 = /[^\u0000-\u00ff]/;

/** The most messages, and about the most characters, joined into one string for one native call. */
const JOIN_MESSAGES = 1024;
const JOIN_CHARS = 256 * 1024;

/**
 * `appendMany`: runs of string messages cross into the addon as one string each (joined by NUL,
 * which no JSON text holds; the addon splits it and appends every piece as its own message), other
 * messages one by one. Keeps `appendMany`'s rules: a failure of the call's first message is thrown,
 * a later one ends the call at its index.
 */
function appendRuns(
  p: native.NativeProducer,
  slot: number,
  messages: ReadonlyArray<string | Uint8Array>,
  start: number,
): number {
  const n = messages.length;
  let i = start;
  while (i < n) {
    let j = i;
    let chars = 0;
    while (j < n && j - i < JOIN_MESSAGES) {
      const m = messages[j];
      if (typeof m !== "string") break;
      // A long message is not joined onto others (joining one near V8's longest string would
      // throw); alone, it goes through the one-message call below.
      if (j > i && chars + m.length > JOIN_CHARS) break;
      chars += m.length;
      j++;
    }
    const first = i === start;
    let done: number;
    if (j - i >= 2) {
      // The whole array when it is one run (no copy of it first).
      const run = i === 0 && j === n ? messages : messages.slice(i, j);
      const joined = run.join("\u0000");
      const took = appendJoined(slot, joined, j - i, first, !ABOVE_LATIN1.test(joined));
      // -1: a message holds a NUL itself (a byte stream's); append that run one by one.
      done = took < 0 ? p.appendMany(messages, i, j, first) : i + took;
    } else {
      // A lone string, or a run of messages that are not strings (Uint8Arrays; anything else
      // is refused with its index): one native call, which reads them from the array.
      if (j === i) {
        while (j < n && j - i < JOIN_MESSAGES && typeof messages[j] !== "string") j++;
      }
      j = Math.max(j, i + 1);
      done = p.appendMany(messages, i, j, first);
    }
    if (done < j) return done;
    i = j;
  }
  return i;
}

/**
 * The outcome of one idempotent append, as `@durable-streams/client` declares it (its producer
 * never returns one; here a {@link Receipt}'s `wait()` gives the fuller {@link Delivery}).
 */
export interface IdempotentAppendResult {
  /** The offset after the message. */
  offset: Offset;
  /** Whether the server had the message already (an idempotent success). */
  duplicate: boolean;
}
