/**
 * The error classes of the package. Every error the client raises is a
 * {@link DurableStreamError} (or a subclass) with a stable `code` and, when a response caused
 * it, the HTTP `status`.
 */
/** Stable error codes (those of `@durable-streams/client` plus the core's finer ones). */
export type DurableStreamErrorCode = "NOT_FOUND" | "CONFLICT_SEQ" | "CONFLICT_EXISTS" | "CONFLICT" | "BAD_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "GONE" | "PAYLOAD_TOO_LARGE" | "RATE_LIMITED" | "SERVER_ERROR" | "UNEXPECTED_STATUS" | "STALE_EPOCH" | "SEQUENCE_GAP" | "PRODUCER_SESSION_CONFLICT" | "NETWORK_ERROR" | "TIMEOUT" | "PARSE_ERROR" | "INVALID_ARGUMENT" | "ALREADY_CONSUMED" | "ALREADY_CLOSED" | "STREAM_CLOSED" | "CANCELLED" | "MISSING_URL" | "INVALID_SIGNAL" | "UNKNOWN";
/** Structured data of an error, beyond its code and status. */
export interface DurableStreamErrorDetails {
    /** The server's own message, when it sent one. */
    serverMessage?: string | undefined;
    /** Whether retrying the same request may succeed. */
    retryable?: boolean | undefined;
    /** How long the server asked the client to wait, in milliseconds. */
    retryAfterMs?: number | undefined;
}
/** The base class of every error of the client. */
export declare class DurableStreamError extends Error {
    /** A stable, language-neutral code. */
    readonly code: DurableStreamErrorCode;
    /** The HTTP status of the response that caused the error, if any. */
    readonly status: number | undefined;
    /** Structured data about the error. */
    readonly details: DurableStreamErrorDetails;
    constructor(message: string, code: DurableStreamErrorCode, status?: number, details?: DurableStreamErrorDetails);
}
/** A request failed with an unexpected or server-side (5xx) HTTP status. */
export declare class FetchError extends DurableStreamError {
}
/** The stream is closed: nothing more can be appended. */
export declare class StreamClosedError extends DurableStreamError {
    /** The stream's final offset, when the server reported it. */
    readonly finalOffset: string | undefined;
    constructor(message: string, finalOffset?: string, details?: DurableStreamErrorDetails);
}
/** A newer producer epoch owns this producer id (HTTP 403 on an idempotent append). */
export declare class StaleEpochError extends DurableStreamError {
    /** The epoch the server holds. */
    readonly currentEpoch: number;
    constructor(message: string, currentEpoch: number, details?: DurableStreamErrorDetails);
}
/** The server expected another producer sequence number (HTTP 409). */
export declare class SequenceGapError extends DurableStreamError {
    /** The sequence number the server expected. */
    readonly expectedSeq: number;
    /** The sequence number it received. */
    readonly receivedSeq: number;
    constructor(message: string, expectedSeq: number, receivedSeq: number, details?: DurableStreamErrorDetails);
}
/**
 * Another session of this producer id has written in this producer's epoch (a restarted
 * writer starting again at the same epoch, or two writers sharing one id): the server answered
 * a batch as a duplicate this session never sent, so it was not stored. Use a new epoch
 * (`autoClaim`, or `restart()`).
 */
export declare class ProducerSessionConflictError extends DurableStreamError {
    /** The producer id. */
    readonly producerId: string;
    /** The epoch both sessions wrote in. */
    readonly epoch: number;
    /** The highest sequence the server holds for that epoch, if it said. */
    readonly serverSeq: number | undefined;
    constructor(message: string, producerId: string, epoch: number, serverSeq?: number, details?: DurableStreamErrorDetails);
}
/** A handle or read was created without a URL. */
export declare class MissingStreamUrlError extends DurableStreamError {
    constructor();
}
/** The `signal` option is not an `AbortSignal`. */
export declare class InvalidSignalError extends DurableStreamError {
    constructor();
}
/** The error class instance for a native error description (see bindings/node/src/error.rs). */
export declare function fromDescription(text: string): DurableStreamError;
/** The package's error for anything a native call threw; other values pass through. */
export declare function convert(e: unknown): unknown;
