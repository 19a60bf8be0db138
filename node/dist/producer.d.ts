/** `IdempotentProducer`: exactly-once, batching, pipelined appends. */
import * as native from "../native/index.js";
import { type BackoffOptions, type HeadersRecord, type ParamsRecord } from "./internal.js";
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
/** Producer counters (a snapshot). */
export type ProducerMetrics = native.NativeProducerMetrics;
/**
 * The outcome of one appended message. Ignoring it costs nothing and can never cause an
 * unhandled rejection: a promise exists only once {@link Receipt.wait} is called.
 */
export declare class Receipt {
    #private;
    /** The message's number in its producer (0 for the first append). */
    readonly messageNumber: number;
    /** Waits for the message's batch to be stored (or to fail for good). */
    wait(options?: {
        signal?: AbortSignal;
    }): Promise<Delivery>;
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
export declare class IdempotentProducer {
    #private;
    /** The producer id. */
    readonly producerId: string;
    constructor(stream: DurableStream, producerId: string, options?: IdempotentProducerOptions);
    /**
     * Appends one message: a string or bytes (on a JSON stream one JSON text; a value is
     * refused with `BAD_REQUEST`, as in `@durable-streams/client`: pass `JSON.stringify(value)`). Returns at once; throws `BUFFER_FULL` when the buffer has no
     * room and `ALREADY_CLOSED` after `close`/`detach`.
     */
    append(body: string | Uint8Array): Receipt;
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
    appendMany(messages: ReadonlyArray<string | Uint8Array>, start?: number): number;
    /** Resolves once a message of `bytes` bytes would fit in the buffer. */
    ready(bytes?: number, options?: {
        signal?: AbortSignal;
    }): Promise<void>;
    /** Alias of {@link ready}. */
    waitForRoom(bytes: number, options?: {
        signal?: AbortSignal;
    }): Promise<void>;
    /**
     * Sends what is batched and waits until everything appended before is stored or failed;
     * rejects with the first failure since the previous flush.
     */
    flush(options?: {
        signal?: AbortSignal;
    }): Promise<void>;
    /** Flushes, then closes the stream, optionally with a final message. */
    close(finalMessage?: string | Uint8Array): Promise<{
        finalOffset: Offset | undefined;
    }>;
    /** Flushes and stops without closing the stream. */
    detach(): Promise<void>;
    /** Flushes, then starts a new session: epoch + 1, sequence 0. */
    restart(): Promise<void>;
    /** The current epoch. */
    get epoch(): number;
    /** The sequence number of the next batch. */
    get nextSeq(): number;
    /** Messages appended but not yet stored or failed. */
    get pendingCount(): number;
    /** Batches in flight. */
    get inFlightCount(): number;
    /** The offset after the last stored batch. */
    get lastSuccessfulOffset(): Offset | undefined;
    /** A snapshot of the producer's counters. */
    metrics(): ProducerMetrics;
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
