"use strict";
/**
 * The error classes of the package. Every error the client raises is a
 * {@link DurableStreamError} (or a subclass) with a stable `code` and, when a response caused
 * it, the HTTP `status`.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.InvalidSignalError = exports.MissingStreamUrlError = exports.ProducerSessionConflictError = exports.SequenceGapError = exports.StaleEpochError = exports.StreamClosedError = exports.FetchError = exports.DurableStreamError = void 0;
exports.fromDescription = fromDescription;
exports.convert = convert;
/** The base class of every error of the client. */
class DurableStreamError extends Error {
    /** A stable, language-neutral code. */
    code;
    /** The HTTP status of the response that caused the error, if any. */
    status;
    /** Structured data about the error. */
    details;
    constructor(message, code, status, details = {}) {
        super(message);
        this.name = new.target.name;
        this.code = code;
        this.status = status;
        this.details = details;
    }
}
exports.DurableStreamError = DurableStreamError;
/** A request failed with an unexpected or server-side (5xx) HTTP status. */
class FetchError extends DurableStreamError {
}
exports.FetchError = FetchError;
/** The stream is closed: nothing more can be appended. */
class StreamClosedError extends DurableStreamError {
    /** The stream's final offset, when the server reported it. */
    finalOffset;
    constructor(message, finalOffset, details = {}) {
        super(message, "STREAM_CLOSED", 409, details);
        this.finalOffset = finalOffset;
    }
}
exports.StreamClosedError = StreamClosedError;
/** A newer producer epoch owns this producer id (HTTP 403 on an idempotent append). */
class StaleEpochError extends DurableStreamError {
    /** The epoch the server holds. */
    currentEpoch;
    constructor(message, currentEpoch, details = {}) {
        super(message, "STALE_EPOCH", 403, details);
        this.currentEpoch = currentEpoch;
    }
}
exports.StaleEpochError = StaleEpochError;
/** The server expected another producer sequence number (HTTP 409). */
class SequenceGapError extends DurableStreamError {
    /** The sequence number the server expected. */
    expectedSeq;
    /** The sequence number it received. */
    receivedSeq;
    constructor(message, expectedSeq, receivedSeq, details = {}) {
        super(message, "SEQUENCE_GAP", 409, details);
        this.expectedSeq = expectedSeq;
        this.receivedSeq = receivedSeq;
    }
}
exports.SequenceGapError = SequenceGapError;
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
/** A handle or read was created without a URL. */
class MissingStreamUrlError extends DurableStreamError {
    constructor() {
        super("a stream URL is required (the url option)", "MISSING_URL");
    }
}
exports.MissingStreamUrlError = MissingStreamUrlError;
/** The `signal` option is not an `AbortSignal`. */
class InvalidSignalError extends DurableStreamError {
    constructor() {
        super("the signal option must be an AbortSignal", "INVALID_SIGNAL");
    }
}
exports.InvalidSignalError = InvalidSignalError;
const MARKER = "durable-streams-client:";
/** The error class instance for a native error description (see bindings/node/src/error.rs). */
function fromDescription(text) {
    const d = JSON.parse(text.slice(MARKER.length));
    const details = {
        serverMessage: d.serverMessage ?? undefined,
        retryable: d.retryable,
        retryAfterMs: d.retryAfterMs,
    };
    switch (d.name) {
        case "StreamClosedError":
            return new StreamClosedError(d.message, d.finalOffset ?? undefined, details);
        case "StaleEpochError":
            return new StaleEpochError(d.message, d.currentEpoch ?? 0, details);
        case "SequenceGapError":
            return new SequenceGapError(d.message, d.expectedSeq ?? 0, d.receivedSeq ?? 0, details);
        case "ProducerSessionConflictError":
            return new ProducerSessionConflictError(d.message, d.producerId ?? "", d.epoch ?? 0, d.serverSeq ?? undefined, details);
        case "FetchError":
            return new FetchError(d.message, d.code, d.status ?? undefined, details);
        default:
            return new DurableStreamError(d.message, d.code, d.status ?? undefined, details);
    }
}
/** The package's error for anything a native call threw; other values pass through. */
function convert(e) {
    if (e instanceof Error && !(e instanceof DurableStreamError) && e.message.startsWith(MARKER)) {
        return fromDescription(e.message);
    }
    return e;
}
