/**
 * The error classes of the package. Every error the client raises is a
 * {@link DurableStreamError} (or a subclass) with a stable `code`, `retryable`, and, when a
 * response caused it, the HTTP `status`.
 *
 * The classes match those of `@durable-streams/client`: a refused HTTP request is a
 * {@link FetchError} (with `status`, `text`, `json`, `headers`, `url`), which here is also a
 * {@link DurableStreamError} carrying the finer `code`.
 */
/** Stable error codes (those of `@durable-streams/client` plus the core's finer ones). */
export type DurableStreamErrorCode = "NOT_FOUND" | "CONFLICT_SEQ" | "CONFLICT_EXISTS" | "CONFLICT" | "BAD_REQUEST" | "BUSY" | "SSE_NOT_SUPPORTED" | "UNAUTHORIZED" | "FORBIDDEN" | "GONE" | "PAYLOAD_TOO_LARGE" | "RATE_LIMITED" | "SERVER_ERROR" | "UNEXPECTED_STATUS" | "STALE_EPOCH" | "SEQUENCE_GAP" | "PRODUCER_SESSION_CONFLICT" | "NETWORK_ERROR" | "TIMEOUT" | "PARSE_ERROR" | "INVALID_ARGUMENT" | "ALREADY_CONSUMED" | "ALREADY_CLOSED" | "STREAM_CLOSED" | "CANCELLED" | "BUFFER_FULL" | "FENCED" | "ALREADY_CLAIMED" | "NO_PENDING_WORK" | "INVALID_SIGNATURE" | "MISSING_URL" | "INVALID_SIGNAL" | "UNKNOWN";
/** Structured data of an error, beyond its code and status. */
export interface DurableStreamErrorDetails {
    /** The server's own message, when it sent one. */
    serverMessage?: string | undefined;
    /** Whether retrying the same request may succeed. */
    retryable?: boolean | undefined;
    /** How long the server asked the client to wait, in milliseconds. */
    retryAfterMs?: number | undefined;
}
/** The kind of a {@link TransportError}. */
export type TransportErrorKind = "connection_refused" | "connection_reset" | "connection_aborted" | "broken_pipe" | "unexpected_eof" | "io" | "connect" | "timeout" | "http" | "other";
/**
 * The transport's own error under a `NETWORK_ERROR` or `TIMEOUT` {@link DurableStreamError}
 * (its `cause`): what the connection reported, escaped and bounded. `code` is Node's name
 * for the system error when there is one (`ECONNREFUSED`, `ECONNRESET`, `ECONNABORTED`,
 * `EPIPE`, `ETIMEDOUT`), as on the errors of `node:net`.
 */
export declare class TransportError extends Error {
    /** Node's system error code, when the failure has one (e.g. `"ECONNREFUSED"`). */
    readonly code: string | undefined;
    /** What failed. */
    readonly kind: TransportErrorKind;
    constructor(message: string, kind: TransportErrorKind, code?: string);
}
/**
 * What a {@link DurableStreamError}'s `cause` can be: the last attempt's failure of a request
 * that gave up after its retries, the transport's error under a network error or timeout, the
 * parser's `SyntaxError` under a `PARSE_ERROR` of a JSON body, or, for a
 * {@link FetchBackoffAbortError}, the signal's abort reason (a `DOMException` named
 * `AbortError` unless the caller passed its own reason to `abort()`, which is kept as it is).
 */
export type DurableStreamErrorCause = DurableStreamError | TransportError | SyntaxError | DOMException;
/** The base class of every error of the client. */
export declare class DurableStreamError extends Error {
    /** A stable, language-neutral code. */
    readonly code: DurableStreamErrorCode;
    /**
     * The cause chain (ES2022 `cause`): for a request that gave up after its retries, the last
     * attempt's failure (same `code`); for a network error or timeout, the {@link TransportError};
     * for a JSON body that does not parse, the parser's `SyntaxError`; for an aborted request
     * ({@link FetchBackoffAbortError}), the signal's reason; `undefined` otherwise.
     */
    readonly cause?: DurableStreamErrorCause;
    /**
     * How many attempts a request made before it gave up, when it was retried (at least 2);
     * `undefined` when it was not retried.
     */
    readonly attempts: number | undefined;
    /**
     * The stream URL the failed request went to (credentials and query removed), when the error
     * concerns one (a {@link FetchError}'s is always set).
     */
    readonly url: string | undefined;
    /** The HTTP status of the response that caused the error, if any. */
    readonly status: number | undefined;
    /** Structured data about the error. */
    readonly details: DurableStreamErrorDetails;
    /**
     * `details` is normally a {@link DurableStreamErrorDetails}; as in `@durable-streams/client`
     * any value is accepted (a string becomes `serverMessage`, another non-object value is kept
     * as its JSON text there).
     */
    constructor(message: string, code: DurableStreamErrorCode, status?: number, details?: unknown);
    /**
     * Whether repeating the request may succeed (network errors, timeouts, 429, 5xx). It does
     * not say whether repeating is safe: a plain append is not idempotent.
     */
    get retryable(): boolean;
    /** The error for a failed `Response` (reads its body as the details' server message). */
    static fromResponse(response: Response, url: string): Promise<DurableStreamError>;
    /** The {@link DurableStreamError} view of a {@link FetchError}. */
    static fromFetchError(error: FetchError): DurableStreamError;
}
/** Internal: the precise code and details a native error adds to a {@link FetchError}. */
interface Refinement {
    code: DurableStreamErrorCode;
    details: DurableStreamErrorDetails;
}
/**
 * An HTTP request was refused (any 4xx or 5xx status), as in `@durable-streams/client`.
 * `code` tells the cases apart (`NOT_FOUND`, `CONFLICT_EXISTS`, `SERVER_ERROR`, ...).
 */
export declare class FetchError extends DurableStreamError {
    readonly status: number;
    /** The response body as text, when it was not JSON. */
    readonly text: string | undefined;
    /** The response body, when it was JSON. */
    readonly json: object | undefined;
    /** Response headers known to the client (`retry-after` when the server sent one). */
    readonly headers: Record<string, string>;
    /** The stream URL. */
    readonly url: string;
    constructor(status: number, text: string | undefined, json: object | undefined, headers: Record<string, string>, url: string, message?: string, refinement?: Refinement);
    /** The error for a failed `Response`. */
    static fromResponse(response: Response, url: string): Promise<FetchError>;
}
/** 429: the server asks the client to slow down (`retryAfterMs` when it said how long). */
export declare class RateLimitedError extends FetchError {
    /** How long the server asked the client to wait, in milliseconds. */
    get retryAfterMs(): number | undefined;
}
/** The stream is closed: nothing more can be appended (HTTP 409 with `Stream-Closed`). */
export declare class StreamClosedError extends FetchError {
    readonly code: "STREAM_CLOSED";
    readonly status: 409;
    /** Always true: the reference client's marker of this error. */
    readonly streamClosed: true;
    /** The stream's final offset, when the server reported it. */
    readonly finalOffset: string | undefined;
    constructor(url?: string, finalOffset?: string, message?: string, details?: DurableStreamErrorDetails);
}
/** A newer producer epoch owns this producer id (HTTP 403 on an idempotent append). */
export declare class StaleEpochError extends DurableStreamError {
    /** The epoch the server holds. */
    readonly currentEpoch: number;
    /** The epoch this producer used, when known. */
    readonly epoch: number | undefined;
    /** The producer id, when known. */
    readonly producerId: string | undefined;
    constructor(currentEpoch: number, message?: string, epoch?: number, producerId?: string);
}
/** The server expected another producer sequence number (HTTP 409). */
export declare class SequenceGapError extends DurableStreamError {
    /** The sequence number the server expected. */
    readonly expectedSeq: number;
    /** The sequence number it received. */
    readonly receivedSeq: number;
    constructor(expectedSeq: number, receivedSeq: number, message?: string);
}
/**
 * A response body was already consumed (`ALREADY_CONSUMED`) or a producer or handle was
 * closed (`ALREADY_CLOSED`); as {@link BufferFullError}, a producer's buffer is full.
 */
export declare class InvalidStateError extends DurableStreamError {
    constructor(message: string, code: "ALREADY_CONSUMED" | "ALREADY_CLOSED" | "BUFFER_FULL", details?: DurableStreamErrorDetails);
}
/** A producer's bounded buffer has no room for a message right now. */
export declare class BufferFullError extends InvalidStateError {
    /** The size of the refused message in bytes. */
    readonly requested: number;
    /** Bytes buffered when it was refused. */
    readonly buffered: number;
    /** The producer's buffer limit in bytes. */
    readonly limit: number;
    constructor(message: string, requested: number, buffered: number, limit: number);
}
/** An operation was aborted (its `signal` fired) or cancelled. */
export declare class FetchBackoffAbortError extends DurableStreamError {
    constructor(message?: string);
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
/**
 * A subscription request was refused with a protocol code. The HTTP-like codes
 * (`SUBSCRIPTION_NOT_FOUND`, `SUBSCRIPTION_ALREADY_EXISTS`, ...) stay {@link FetchError}s with
 * `code` `NOT_FOUND`, `CONFLICT_EXISTS`, ...; the lease protocol's own answers are the
 * subclasses {@link FencedError}, {@link AlreadyClaimedError} and {@link NoPendingWorkError}.
 */
export declare class SubscriptionError extends DurableStreamError {
    /** The protocol's code (`FENCED`, `ALREADY_CLAIMED`, `NO_PENDING_WORK`). */
    readonly subscriptionCode: string;
    constructor(message: string, code: DurableStreamErrorCode, subscriptionCode: string, status?: number, details?: DurableStreamErrorDetails);
}
/** 409 `FENCED`: the wake is stale, the lease is lost; nothing was acked. */
export declare class FencedError extends SubscriptionError {
    constructor(message: string, status?: number, details?: DurableStreamErrorDetails);
}
/** 409 `ALREADY_CLAIMED`: another worker holds the subscription's lease. */
export declare class AlreadyClaimedError extends SubscriptionError {
    /** The worker holding it, when the server said. */
    readonly currentHolder: string | undefined;
    constructor(message: string, currentHolder?: string, status?: number, details?: DurableStreamErrorDetails);
}
/** 409 `NO_PENDING_WORK`: a claim found nothing to do. */
export declare class NoPendingWorkError extends SubscriptionError {
    constructor(message: string, status?: number, details?: DurableStreamErrorDetails);
}
/**
 * A webhook delivery failed verification: answer 401 and do not process it. `check` says
 * which check failed: `missing_header`, `malformed_header`, `timestamp_out_of_window`,
 * `unknown_key`, `bad_signature` or `malformed_payload`.
 */
export declare class InvalidSignatureError extends DurableStreamError {
    /** The failed check. */
    readonly check: string;
    constructor(message: string, check: string);
}
/**
 * The connection failed before a response arrived (`NETWORK_ERROR`); `cause` is the
 * {@link TransportError} (or, after retries, the last attempt's `NetworkError`).
 */
export declare class NetworkError extends DurableStreamError {
    readonly code: "NETWORK_ERROR";
    constructor(message: string, details?: DurableStreamErrorDetails);
}
/** A request or an operation ran past its deadline (`TIMEOUT`). */
export declare class StreamTimeoutError extends DurableStreamError {
    readonly code: "TIMEOUT";
    constructor(message: string, details?: DurableStreamErrorDetails);
}
/** A server response could not be parsed (`PARSE_ERROR`); for JSON, `cause` is a `SyntaxError`. */
export declare class ParseError extends DurableStreamError {
    readonly code: "PARSE_ERROR";
    constructor(message: string, details?: DurableStreamErrorDetails);
}
/** A value was refused before anything was sent (`INVALID_ARGUMENT`). */
export declare class InvalidArgumentError extends DurableStreamError {
    readonly code: "INVALID_ARGUMENT";
    constructor(message: string, details?: DurableStreamErrorDetails);
}
/** A handle or read was created without a URL. */
export declare class MissingStreamUrlError extends DurableStreamError {
    constructor();
}
/** The `signal` option is not an `AbortSignal`. */
export declare class InvalidSignalError extends DurableStreamError {
    constructor();
}
/**
 * The error class instance for a native error description (see bindings/node/src/error.rs).
 * This is the one place that maps a core code to a class; a code it does not know becomes the
 * base class (and fails the error-contract test, test/errors.test.mjs).
 */
export declare function fromDescription(text: string): DurableStreamError;
/** The package's error for anything a native call threw; other values pass through. */
export declare function convert(e: unknown): unknown;
export {};
