"use strict";
/**
 * The error classes of the package. Every error the client raises is a
 * {@link DurableStreamError} (or a subclass) with a stable `code`, `retryable`, and, when a
 * response caused it, the HTTP `status`.
 *
 * The classes match those of `@durable-streams/client`: a refused HTTP request is a
 * {@link FetchError} (with `status`, `text`, `json`, `headers`, `url`), which here is also a
 * {@link DurableStreamError} carrying the finer `code`.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.InvalidSignalError = exports.MissingStreamUrlError = exports.InvalidArgumentError = exports.ParseError = exports.StreamTimeoutError = exports.NetworkError = exports.InvalidSignatureError = exports.NoPendingWorkError = exports.AlreadyClaimedError = exports.FencedError = exports.SubscriptionError = exports.ProducerSessionConflictError = exports.FetchBackoffAbortError = exports.BufferFullError = exports.InvalidStateError = exports.SequenceGapError = exports.StaleEpochError = exports.StreamClosedError = exports.RateLimitedError = exports.FetchError = exports.DurableStreamError = exports.TransportError = void 0;
exports.fromDescription = fromDescription;
exports.convert = convert;
/**
 * The transport's own error under a `NETWORK_ERROR` or `TIMEOUT` {@link DurableStreamError}
 * (its `cause`): what the connection reported, escaped and bounded. `code` is Node's name
 * for the system error when there is one (`ECONNREFUSED`, `ECONNRESET`, `ECONNABORTED`,
 * `EPIPE`, `ETIMEDOUT`), as on the errors of `node:net`.
 */
class TransportError extends Error {
    /** Node's system error code, when the failure has one (e.g. `"ECONNREFUSED"`). */
    code;
    /** What failed. */
    kind;
    constructor(message, kind, code) {
        super(message);
        this.name = "TransportError";
        this.kind = kind;
        this.code = code;
    }
}
exports.TransportError = TransportError;
/** The base class of every error of the client. */
class DurableStreamError extends Error {
    /** A stable, language-neutral code. */
    code;
    /**
     * How many attempts a request made before it gave up, when it was retried (at least 2);
     * `undefined` when it was not retried.
     */
    attempts = undefined;
    /**
     * The stream URL the failed request went to (credentials and query removed), when the error
     * concerns one (a {@link FetchError}'s is always set).
     */
    url = undefined;
    /** The HTTP status of the response that caused the error, if any. */
    status;
    /** Structured data about the error. */
    details;
    /**
     * `details` is normally a {@link DurableStreamErrorDetails}; as in `@durable-streams/client`
     * any value is accepted (a string becomes `serverMessage`, another non-object value is kept
     * as its JSON text there).
     */
    constructor(message, code, status, details) {
        super(message);
        this.name = new.target.name;
        this.code = code;
        this.status = status;
        this.details = toDetails(details);
    }
    /**
     * Whether repeating the request may succeed (network errors, timeouts, 429, 5xx). It does
     * not say whether repeating is safe: a plain append is not idempotent.
     */
    get retryable() {
        return this.details.retryable ?? false;
    }
    /** The error for a failed `Response` (reads its body as the details' server message). */
    static async fromResponse(response, url) {
        const text = await response.text().catch(() => "");
        return new DurableStreamError(`Durable stream error at ${url}: ${response.statusText || response.status}`, codeForStatus(response.status), response.status, { serverMessage: text || undefined, retryable: retryableStatus(response.status) });
    }
    /** The {@link DurableStreamError} view of a {@link FetchError}. */
    static fromFetchError(error) {
        return new DurableStreamError(error.message, codeForStatus(error.status), error.status, {
            serverMessage: error.text,
            retryable: retryableStatus(error.status),
        });
    }
}
exports.DurableStreamError = DurableStreamError;
function toDetails(details) {
    if (details === undefined || details === null)
        return {};
    if (typeof details === "object")
        return details;
    return { serverMessage: typeof details === "string" ? details : JSON.stringify(details) };
}
/** The code of an HTTP status outside any operation's context. */
function codeForStatus(status) {
    switch (status) {
        case 400:
            return "BAD_REQUEST";
        case 401:
            return "UNAUTHORIZED";
        case 403:
            return "FORBIDDEN";
        case 404:
            return "NOT_FOUND";
        case 409:
            return "CONFLICT";
        case 410:
            return "GONE";
        case 413:
            return "PAYLOAD_TOO_LARGE";
        case 429:
            return "RATE_LIMITED";
        case 503:
            return "BUSY";
        default:
            return status >= 500 && status <= 599 ? "SERVER_ERROR" : "UNEXPECTED_STATUS";
    }
}
function retryableStatus(status) {
    return status === 429 || (status >= 500 && status <= 599);
}
/**
 * An HTTP request was refused (any 4xx or 5xx status), as in `@durable-streams/client`.
 * `code` tells the cases apart (`NOT_FOUND`, `CONFLICT_EXISTS`, `SERVER_ERROR`, ...).
 */
class FetchError extends DurableStreamError {
    /** The response body as text, when it was not JSON. */
    text;
    /** The response body, when it was JSON. */
    json;
    /** Response headers known to the client (`retry-after` when the server sent one). */
    headers;
    /** The stream URL. */
    url;
    constructor(status, text, json, headers, url, message, refinement) {
        super(message || `HTTP Error ${status} at ${url}: ${text ?? JSON.stringify(json)}`, refinement?.code ?? codeForStatus(status), status, refinement?.details ?? { serverMessage: text, retryable: retryableStatus(status) });
        this.text = text;
        this.json = json;
        this.headers = headers;
        this.url = url;
    }
    /** The error for a failed `Response`. */
    static async fromResponse(response, url) {
        const headers = {};
        response.headers.forEach((value, name) => {
            headers[name] = value;
        });
        let text;
        let json;
        if (!response.bodyUsed && response.body !== null) {
            const body = await response.text();
            if (response.headers.get("content-type")?.includes("application/json")) {
                try {
                    json = JSON.parse(body);
                }
                catch {
                    text = body;
                }
            }
            else {
                text = body;
            }
        }
        return new FetchError(response.status, text, json, headers, url);
    }
}
exports.FetchError = FetchError;
/** 429: the server asks the client to slow down (`retryAfterMs` when it said how long). */
class RateLimitedError extends FetchError {
    /** How long the server asked the client to wait, in milliseconds. */
    get retryAfterMs() {
        return this.details.retryAfterMs;
    }
}
exports.RateLimitedError = RateLimitedError;
/** The stream is closed: nothing more can be appended (HTTP 409 with `Stream-Closed`). */
class StreamClosedError extends FetchError {
    /** Always true: the reference client's marker of this error. */
    streamClosed = true;
    /** The stream's final offset, when the server reported it. */
    finalOffset;
    constructor(url, finalOffset, message, details) {
        super(409, undefined, undefined, {}, url ?? "", message ?? "Cannot append to closed stream", {
            code: "STREAM_CLOSED",
            details: details ?? {},
        });
        this.finalOffset = finalOffset;
    }
}
exports.StreamClosedError = StreamClosedError;
/** A newer producer epoch owns this producer id (HTTP 403 on an idempotent append). */
class StaleEpochError extends DurableStreamError {
    /** The epoch the server holds. */
    currentEpoch;
    /** The epoch this producer used, when known. */
    epoch;
    /** The producer id, when known. */
    producerId;
    constructor(currentEpoch, message, epoch, producerId) {
        super(message ??
            `Producer epoch is stale: the server's current epoch is ${currentEpoch}. ` +
                "Call restart() or create a producer with a higher epoch.", "STALE_EPOCH", 403, { retryable: false });
        this.currentEpoch = currentEpoch;
        this.epoch = epoch;
        this.producerId = producerId;
    }
}
exports.StaleEpochError = StaleEpochError;
/** The server expected another producer sequence number (HTTP 409). */
class SequenceGapError extends DurableStreamError {
    /** The sequence number the server expected. */
    expectedSeq;
    /** The sequence number it received. */
    receivedSeq;
    constructor(expectedSeq, receivedSeq, message) {
        super(message ?? `Producer sequence gap: expected ${expectedSeq}, received ${receivedSeq}`, "SEQUENCE_GAP", 409, { retryable: false });
        this.expectedSeq = expectedSeq;
        this.receivedSeq = receivedSeq;
    }
}
exports.SequenceGapError = SequenceGapError;
/**
 * A response body was already consumed (`ALREADY_CONSUMED`) or a producer or handle was
 * closed (`ALREADY_CLOSED`); as {@link BufferFullError}, a producer's buffer is full.
 */
class InvalidStateError extends DurableStreamError {
    constructor(message, code, details = { retryable: false }) {
        super(message, code, undefined, details);
    }
}
exports.InvalidStateError = InvalidStateError;
/** A producer's bounded buffer has no room for a message right now. */
class BufferFullError extends InvalidStateError {
    /** The size of the refused message in bytes. */
    requested;
    /** Bytes buffered when it was refused. */
    buffered;
    /** The producer's buffer limit in bytes. */
    limit;
    constructor(message, requested, buffered, limit) {
        super(message, "BUFFER_FULL", { retryable: false });
        this.requested = requested;
        this.buffered = buffered;
        this.limit = limit;
    }
}
exports.BufferFullError = BufferFullError;
/** An operation was aborted (its `signal` fired) or cancelled. */
class FetchBackoffAbortError extends DurableStreamError {
    constructor(message = "Fetch with backoff aborted") {
        super(message, "CANCELLED", undefined, { retryable: false });
    }
}
exports.FetchBackoffAbortError = FetchBackoffAbortError;
/**
 * Another session of this producer id has written in this producer's epoch (a restarted
 * writer starting again at the same epoch, or two writers sharing one id): the server answered
 * a batch as a duplicate this session never sent, so it was not stored. Use a new epoch
 * (`autoClaim`, or `restart()`).
 */
class ProducerSessionConflictError extends DurableStreamError {
    /** The producer id. */
    producerId;
    /** The epoch both sessions wrote in. */
    epoch;
    /** The highest sequence the server holds for that epoch, if it said. */
    serverSeq;
    constructor(message, producerId, epoch, serverSeq, details = {}) {
        super(message, "PRODUCER_SESSION_CONFLICT", undefined, details);
        this.producerId = producerId;
        this.epoch = epoch;
        this.serverSeq = serverSeq;
    }
}
exports.ProducerSessionConflictError = ProducerSessionConflictError;
/**
 * A subscription request was refused with a protocol code. The HTTP-like codes
 * (`SUBSCRIPTION_NOT_FOUND`, `SUBSCRIPTION_ALREADY_EXISTS`, ...) stay {@link FetchError}s with
 * `code` `NOT_FOUND`, `CONFLICT_EXISTS`, ...; the lease protocol's own answers are the
 * subclasses {@link FencedError}, {@link AlreadyClaimedError} and {@link NoPendingWorkError}.
 */
class SubscriptionError extends DurableStreamError {
    /** The protocol's code (`FENCED`, `ALREADY_CLAIMED`, `NO_PENDING_WORK`). */
    subscriptionCode;
    constructor(message, code, subscriptionCode, status = 409, details = {}) {
        super(message, code, status, details);
        this.subscriptionCode = subscriptionCode;
    }
}
exports.SubscriptionError = SubscriptionError;
/** 409 `FENCED`: the wake is stale, the lease is lost; nothing was acked. */
class FencedError extends SubscriptionError {
    constructor(message, status = 409, details = {}) {
        super(message, "FENCED", "FENCED", status, details);
    }
}
exports.FencedError = FencedError;
/** 409 `ALREADY_CLAIMED`: another worker holds the subscription's lease. */
class AlreadyClaimedError extends SubscriptionError {
    /** The worker holding it, when the server said. */
    currentHolder;
    constructor(message, currentHolder, status = 409, details = {}) {
        super(message, "ALREADY_CLAIMED", "ALREADY_CLAIMED", status, details);
        this.currentHolder = currentHolder;
    }
}
exports.AlreadyClaimedError = AlreadyClaimedError;
/** 409 `NO_PENDING_WORK`: a claim found nothing to do. */
class NoPendingWorkError extends SubscriptionError {
    constructor(message, status = 409, details = {}) {
        super(message, "NO_PENDING_WORK", "NO_PENDING_WORK", status, details);
    }
}
exports.NoPendingWorkError = NoPendingWorkError;
/**
 * A webhook delivery failed verification: answer 401 and do not process it. `check` says
 * which check failed: `missing_header`, `malformed_header`, `timestamp_out_of_window`,
 * `unknown_key`, `bad_signature` or `malformed_payload`.
 */
class InvalidSignatureError extends DurableStreamError {
    /** The failed check. */
    check;
    constructor(message, check) {
        super(message, "INVALID_SIGNATURE", undefined, { retryable: false });
        this.check = check;
    }
}
exports.InvalidSignatureError = InvalidSignatureError;
/**
 * The connection failed before a response arrived (`NETWORK_ERROR`); `cause` is the
 * {@link TransportError} (or, after retries, the last attempt's `NetworkError`).
 */
class NetworkError extends DurableStreamError {
    constructor(message, details = { retryable: true }) {
        super(message, "NETWORK_ERROR", undefined, details);
    }
}
exports.NetworkError = NetworkError;
/** A request or an operation ran past its deadline (`TIMEOUT`). */
class StreamTimeoutError extends DurableStreamError {
    constructor(message, details = { retryable: true }) {
        super(message, "TIMEOUT", undefined, details);
    }
}
exports.StreamTimeoutError = StreamTimeoutError;
/** A server response could not be parsed (`PARSE_ERROR`); for JSON, `cause` is a `SyntaxError`. */
class ParseError extends DurableStreamError {
    constructor(message, details = { retryable: false }) {
        super(message, "PARSE_ERROR", undefined, details);
    }
}
exports.ParseError = ParseError;
/** A value was refused before anything was sent (`INVALID_ARGUMENT`). */
class InvalidArgumentError extends DurableStreamError {
    constructor(message, details = { retryable: false }) {
        super(message, "INVALID_ARGUMENT", undefined, details);
    }
}
exports.InvalidArgumentError = InvalidArgumentError;
/** A handle or read was created without a URL. */
class MissingStreamUrlError extends DurableStreamError {
    constructor() {
        super("Invalid stream options: missing required url parameter", "MISSING_URL");
    }
}
exports.MissingStreamUrlError = MissingStreamUrlError;
/** The `signal` option is not an `AbortSignal`. */
class InvalidSignalError extends DurableStreamError {
    constructor() {
        super("Invalid signal option: it must be an AbortSignal", "INVALID_SIGNAL");
    }
}
exports.InvalidSignalError = InvalidSignalError;
const MARKER = "durable-streams-client:";
/** The codes of a refused HTTP request: a {@link FetchError} as in the reference client. */
const HTTP_CODES = new Set([
    "NOT_FOUND",
    "CONFLICT_EXISTS",
    "CONFLICT",
    "CONFLICT_SEQ",
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "GONE",
    "PAYLOAD_TOO_LARGE",
    "BUSY",
    "SERVER_ERROR",
    "UNEXPECTED_STATUS",
]);
/**
 * The error class instance for a native error description (see bindings/node/src/error.rs).
 * This is the one place that maps a core code to a class; a code it does not know becomes the
 * base class (and fails the error-contract test, test/errors.test.mjs).
 */
function fromDescription(text) {
    return fromDescribed(JSON.parse(text.slice(MARKER.length)));
}
/** The error for a description, with its cause chain and attempts. */
function fromDescribed(d) {
    const err = classFor(d);
    if (err.url === undefined && typeof d.url === "string") {
        err.url = d.url;
    }
    if (typeof d.attempts === "number") {
        err.attempts = d.attempts;
    }
    if (d.cause) {
        const cause = "transport" in d.cause ? transportCause(d.cause) : fromDescribed(d.cause);
        Object.defineProperty(err, "cause", {
            value: cause,
            writable: true,
            configurable: true,
            enumerable: false,
        });
    }
    return err;
}
function transportCause(c) {
    if (c.kind === "json")
        return new SyntaxError(c.message);
    return new TransportError(c.message, c.kind, c.errno ?? undefined);
}
function classFor(d) {
    const details = {
        serverMessage: d.serverMessage ?? undefined,
        retryable: d.retryable,
        retryAfterMs: d.retryAfterMs,
    };
    const url = d.url ?? "";
    switch (d.code) {
        case "STREAM_CLOSED":
            return new StreamClosedError(url, d.finalOffset ?? undefined, d.message, details);
        case "STALE_EPOCH":
            return new StaleEpochError(d.currentEpoch ?? 0, d.message, d.epoch, d.producerId ?? undefined);
        case "SEQUENCE_GAP":
            return new SequenceGapError(d.expectedSeq ?? 0, d.receivedSeq ?? 0, d.message);
        case "BUFFER_FULL":
            return new BufferFullError(d.message, d.requested ?? 0, d.buffered ?? 0, d.limit ?? 0);
        case "PRODUCER_SESSION_CONFLICT":
            return new ProducerSessionConflictError(d.message, d.producerId ?? "", d.epoch ?? 0, d.serverSeq ?? undefined, details);
        case "CANCELLED":
            return new FetchBackoffAbortError(d.message);
        case "NETWORK_ERROR":
            return new NetworkError(d.message, details);
        case "TIMEOUT":
            return new StreamTimeoutError(d.message, details);
        case "PARSE_ERROR":
            return new ParseError(d.message, details);
        case "INVALID_ARGUMENT":
            return new InvalidArgumentError(d.message, details);
        case "ALREADY_CONSUMED":
        case "ALREADY_CLOSED":
            return new InvalidStateError(d.message, d.code, details);
        case "FENCED":
            return new FencedError(d.message, d.status ?? 409, details);
        case "ALREADY_CLAIMED":
            return new AlreadyClaimedError(d.message, d.currentHolder ?? undefined, d.status ?? 409, details);
        case "NO_PENDING_WORK":
            return new NoPendingWorkError(d.message, d.status ?? 409, details);
        case "INVALID_SIGNATURE":
            return new InvalidSignatureError(d.message, d.check ?? "bad_signature");
        case "RATE_LIMITED":
            return new RateLimitedError(d.status ?? 429, d.serverMessage ?? undefined, undefined, retryAfterHeaders(d.retryAfterMs), url, d.message, { code: d.code, details });
    }
    if (HTTP_CODES.has(d.code) && d.status !== null) {
        return new FetchError(d.status, d.serverMessage ?? undefined, undefined, retryAfterHeaders(d.retryAfterMs), url, d.message, { code: d.code, details });
    }
    return new DurableStreamError(d.message, d.code, d.status ?? undefined, details);
}
function retryAfterHeaders(ms) {
    return ms === undefined ? {} : { "retry-after": String(Math.ceil(ms / 1000)) };
}
/** The package's error for anything a native call threw; other values pass through. */
function convert(e) {
    if (e instanceof Error && !(e instanceof DurableStreamError) && e.message.startsWith(MARKER)) {
        return fromDescription(e.message);
    }
    return e;
}
