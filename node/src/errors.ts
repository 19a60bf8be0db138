/**
 * The error classes of the package. Every error the client raises is a
 * {@link DurableStreamError} (or a subclass) with a stable `code` and, when a response caused
 * it, the HTTP `status`.
 */

/** Stable error codes (those of `@durable-streams/client` plus the core's finer ones). */
export type DurableStreamErrorCode =
  | "NOT_FOUND"
  | "CONFLICT_SEQ"
  | "CONFLICT_EXISTS"
  | "CONFLICT"
  | "BAD_REQUEST"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "GONE"
  | "PAYLOAD_TOO_LARGE"
  | "RATE_LIMITED"
  | "SERVER_ERROR"
  | "UNEXPECTED_STATUS"
  | "STALE_EPOCH"
  | "SEQUENCE_GAP"
  | "PRODUCER_SESSION_CONFLICT"
  | "NETWORK_ERROR"
  | "TIMEOUT"
  | "PARSE_ERROR"
  | "INVALID_ARGUMENT"
  | "ALREADY_CONSUMED"
  | "ALREADY_CLOSED"
  | "STREAM_CLOSED"
  | "CANCELLED"
  | "MISSING_URL"
  | "INVALID_SIGNAL"
  | "UNKNOWN";

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
export class DurableStreamError extends Error {
  /** A stable, language-neutral code. */
  readonly code: DurableStreamErrorCode;
  /** The HTTP status of the response that caused the error, if any. */
  readonly status: number | undefined;
  /** Structured data about the error. */
  readonly details: DurableStreamErrorDetails;

  constructor(
    message: string,
    code: DurableStreamErrorCode,
    status?: number,
    details: DurableStreamErrorDetails = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** A request failed with an unexpected or server-side (5xx) HTTP status. */
export class FetchError extends DurableStreamError {}

/** The stream is closed: nothing more can be appended. */
export class StreamClosedError extends DurableStreamError {
  /** The stream's final offset, when the server reported it. */
  readonly finalOffset: string | undefined;

  constructor(message: string, finalOffset?: string, details: DurableStreamErrorDetails = {}) {
    super(message, "STREAM_CLOSED", 409, details);
    this.finalOffset = finalOffset;
  }
}

/** A newer producer epoch owns this producer id (HTTP 403 on an idempotent append). */
export class StaleEpochError extends DurableStreamError {
  /** The epoch the server holds. */
  readonly currentEpoch: number;

  constructor(message: string, currentEpoch: number, details: DurableStreamErrorDetails = {}) {
    super(message, "STALE_EPOCH", 403, details);
    this.currentEpoch = currentEpoch;
  }
}

/** The server expected another producer sequence number (HTTP 409). */
export class SequenceGapError extends DurableStreamError {
  /** The sequence number the server expected. */
  readonly expectedSeq: number;
  /** The sequence number it received. */
  readonly receivedSeq: number;

  constructor(
    message: string,
    expectedSeq: number,
    receivedSeq: number,
    details: DurableStreamErrorDetails = {},
  ) {
    super(message, "SEQUENCE_GAP", 409, details);
    this.expectedSeq = expectedSeq;
    this.receivedSeq = receivedSeq;
  }
}

/**
 * Another session of this producer id has written in this producer's epoch (a restarted
 * writer starting again at the same epoch, or two writers sharing one id): the server answered
 * a batch as a duplicate this session never sent, so it was not stored. Use a new epoch
 * (`autoClaim`, or `restart()`).
 */
export class ProducerSessionConflictError extends DurableStreamError {
  /** The producer id. */
  readonly producerId: string;
  /** The epoch both sessions wrote in. */
  readonly epoch: number;
  /** The highest sequence the server holds for that epoch, if it said. */
  readonly serverSeq: number | undefined;

  constructor(
    message: string,
    producerId: string,
    epoch: number,
    serverSeq?: number,
    details: DurableStreamErrorDetails = {},
  ) {
    super(message, "PRODUCER_SESSION_CONFLICT", undefined, details);
    this.producerId = producerId;
    this.epoch = epoch;
    this.serverSeq = serverSeq;
  }
}

/** A handle or read was created without a URL. */
export class MissingStreamUrlError extends DurableStreamError {
  constructor() {
    super("a stream URL is required (the url option)", "MISSING_URL");
  }
}

/** The `signal` option is not an `AbortSignal`. */
export class InvalidSignalError extends DurableStreamError {
  constructor() {
    super("the signal option must be an AbortSignal", "INVALID_SIGNAL");
  }
}

const MARKER = "durable-streams-client:";

interface Described {
  name: string;
  message: string;
  code: DurableStreamErrorCode;
  status: number | null;
  serverMessage: string | null;
  retryable: boolean;
  retryAfterMs?: number;
  finalOffset?: string | null;
  currentEpoch?: number;
  expectedSeq?: number;
  receivedSeq?: number;
  producerId?: string;
  epoch?: number;
  serverSeq?: number | null;
}

/** The error class instance for a native error description (see bindings/node/src/error.rs). */
export function fromDescription(text: string): DurableStreamError {
  const d = JSON.parse(text.slice(MARKER.length)) as Described;
  const details: DurableStreamErrorDetails = {
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
      return new ProducerSessionConflictError(
        d.message,
        d.producerId ?? "",
        d.epoch ?? 0,
        d.serverSeq ?? undefined,
        details,
      );
    case "FetchError":
      return new FetchError(d.message, d.code, d.status ?? undefined, details);
    default:
      return new DurableStreamError(d.message, d.code, d.status ?? undefined, details);
  }
}

/** The package's error for anything a native call threw; other values pass through. */
export function convert(e: unknown): unknown {
  if (e instanceof Error && !(e instanceof DurableStreamError) && e.message.startsWith(MARKER)) {
    return fromDescription(e.message);
  }
  return e;
}
