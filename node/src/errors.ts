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
export type DurableStreamErrorCode =
  | "NOT_FOUND"
  | "CONFLICT_SEQ"
  | "CONFLICT_EXISTS"
  | "CONFLICT"
  | "BAD_REQUEST"
  | "BUSY"
  | "SSE_NOT_SUPPORTED"
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
  | "BUFFER_FULL"
  | "FENCED"
  | "ALREADY_CLAIMED"
  | "NO_PENDING_WORK"
  | "INVALID_SIGNATURE"
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

/** The kind of a {@link TransportError}. */
export type TransportErrorKind =
  | "connection_refused"
  | "connection_reset"
  | "connection_aborted"
  | "broken_pipe"
  | "unexpected_eof"
  | "io"
  | "connect"
  | "timeout"
  | "http"
  | "other";

/**
 * The transport's own error under a `NETWORK_ERROR` or `TIMEOUT` {@link DurableStreamError}
 * (its `cause`): what the connection reported, escaped and bounded. `code` is Node's name
 * for the system error when there is one (`ECONNREFUSED`, `ECONNRESET`, `ECONNABORTED`,
 * `EPIPE`, `ETIMEDOUT`), as on the errors of `node:net`.
 */
export class TransportError extends Error {
  /** Node's system error code, when the failure has one (e.g. `"ECONNREFUSED"`). */
  readonly code: string | undefined;
  /** What failed. */
  readonly kind: TransportErrorKind;

  constructor(message: string, kind: TransportErrorKind, code?: string) {
    super(message);
    this.name = "TransportError";
    this.kind = kind;
    this.code = code;
  }
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
export class DurableStreamError extends Error {
  /** A stable, language-neutral code. */
  readonly code: DurableStreamErrorCode;
  /**
   * The cause chain (ES2022 `cause`): for a request that gave up after its retries, the last
   * attempt's failure (same `code`); for a network error or timeout, the {@link TransportError};
   * for a JSON body that does not parse, the parser's `SyntaxError`; for an aborted request
   * ({@link FetchBackoffAbortError}), the signal's reason; `undefined` otherwise.
   */
  declare readonly cause?: DurableStreamErrorCause;
  /**
   * How many attempts a request made before it gave up, when it was retried (at least 2);
   * `undefined` when it was not retried.
   */
  readonly attempts: number | undefined = undefined;
  /**
   * The stream URL the failed request went to (credentials and query removed), when the error
   * concerns one (a {@link FetchError}'s is always set).
   */
  readonly url: string | undefined = undefined;
  /** The HTTP status of the response that caused the error, if any. */
  readonly status: number | undefined;
  /** Structured data about the error. */
  readonly details: DurableStreamErrorDetails;

  /**
   * `details` is normally a {@link DurableStreamErrorDetails}; as in `@durable-streams/client`
   * any value is accepted (a string becomes `serverMessage`, another non-object value is kept
   * as its JSON text there).
   */
  constructor(message: string, code: DurableStreamErrorCode, status?: number, details?: unknown) {
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
  get retryable(): boolean {
    return this.details.retryable ?? false;
  }

  /** The error for a failed `Response` (reads its body as the details' server message). */
  static async fromResponse(response: Response, url: string): Promise<DurableStreamError> {
    const text = await response.text().catch(() => "");
    return new DurableStreamError(
      `Durable stream error at ${url}: ${response.statusText || response.status}`,
      codeForStatus(response.status),
      response.status,
      { serverMessage: text || undefined, retryable: retryableStatus(response.status) },
    );
  }

  /** The {@link DurableStreamError} view of a {@link FetchError}. */
  static fromFetchError(error: FetchError): DurableStreamError {
    return new DurableStreamError(error.message, codeForStatus(error.status), error.status, {
      serverMessage: error.text,
      retryable: retryableStatus(error.status),
    });
  }
}

function toDetails(details: unknown): DurableStreamErrorDetails {
  if (details === undefined || details === null) return {};
  if (typeof details === "object") return details as DurableStreamErrorDetails;
  return { serverMessage: typeof details === "string" ? details : JSON.stringify(details) };
}

/** The code of an HTTP status outside any operation's context. */
function codeForStatus(status: number): DurableStreamErrorCode {
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

function retryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
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
export class FetchError extends DurableStreamError {
  declare readonly status: number;
  /** The response body as text, when it was not JSON. */
  readonly text: string | undefined;
  /** The response body, when it was JSON. */
  readonly json: object | undefined;
  /** Response headers known to the client (`retry-after` when the server sent one). */
  readonly headers: Record<string, string>;
  /** The stream URL. */
  readonly url: string;

  constructor(
    status: number,
    text: string | undefined,
    json: object | undefined,
    headers: Record<string, string>,
    url: string,
    message?: string,
    refinement?: Refinement,
  ) {
    super(
      message || `HTTP Error ${status} at ${url}: ${text ?? JSON.stringify(json)}`,
      refinement?.code ?? codeForStatus(status),
      status,
      refinement?.details ?? { serverMessage: text, retryable: retryableStatus(status) },
    );
    this.text = text;
    this.json = json;
    this.headers = headers;
    this.url = url;
  }

  /** The error for a failed `Response`. */
  static override async fromResponse(response: Response, url: string): Promise<FetchError> {
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    let text: string | undefined;
    let json: object | undefined;
    if (!response.bodyUsed && response.body !== null) {
      const body = await response.text();
      if (response.headers.get("content-type")?.includes("application/json")) {
        try {
          json = JSON.parse(body) as object;
        } catch {
          text = body;
        }
      } else {
        text = body;
      }
    }
    return new FetchError(response.status, text, json, headers, url);
  }
}

/** 429: the server asks the client to slow down (`retryAfterMs` when it said how long). */
export class RateLimitedError extends FetchError {
  /** How long the server asked the client to wait, in milliseconds. */
  get retryAfterMs(): number | undefined {
    return this.details.retryAfterMs;
  }
}

/** The stream is closed: nothing more can be appended (HTTP 409 with `Stream-Closed`). */
export class StreamClosedError extends FetchError {
  declare readonly code: "STREAM_CLOSED";
  declare readonly status: 409;
  /** Always true: the reference client's marker of this error. */
  readonly streamClosed = true as const;
  /** The stream's final offset, when the server reported it. */
  readonly finalOffset: string | undefined;

  constructor(
    url?: string,
    finalOffset?: string,
    message?: string,
    details?: DurableStreamErrorDetails,
  ) {
    super(409, undefined, undefined, {}, url ?? "", message ?? "Cannot append to closed stream", {
      code: "STREAM_CLOSED",
      details: details ?? {},
    });
    this.finalOffset = finalOffset;
  }
}

/** A newer producer epoch owns this producer id (HTTP 403 on an idempotent append). */
export class StaleEpochError extends DurableStreamError {
  /** The epoch the server holds. */
  readonly currentEpoch: number;
  /** The epoch this producer used, when known. */
  readonly epoch: number | undefined;
  /** The producer id, when known. */
  readonly producerId: string | undefined;

  constructor(currentEpoch: number, message?: string, epoch?: number, producerId?: string) {
    super(
      message ??
        `Producer epoch is stale: the server's current epoch is ${currentEpoch}. ` +
          "Call restart() or create a producer with a higher epoch.",
      "STALE_EPOCH",
      403,
      { retryable: false },
    );
    this.currentEpoch = currentEpoch;
    this.epoch = epoch;
    this.producerId = producerId;
  }
}

/** The server expected another producer sequence number (HTTP 409). */
export class SequenceGapError extends DurableStreamError {
  /** The sequence number the server expected. */
  readonly expectedSeq: number;
  /** The sequence number it received. */
  readonly receivedSeq: number;

  constructor(expectedSeq: number, receivedSeq: number, message?: string) {
    super(
      message ?? `Producer sequence gap: expected ${expectedSeq}, received ${receivedSeq}`,
      "SEQUENCE_GAP",
      409,
      { retryable: false },
    );
    this.expectedSeq = expectedSeq;
    this.receivedSeq = receivedSeq;
  }
}

/**
 * A response body was already consumed (`ALREADY_CONSUMED`) or a producer or handle was
 * closed (`ALREADY_CLOSED`); as {@link BufferFullError}, a producer's buffer is full.
 */
export class InvalidStateError extends DurableStreamError {
  constructor(
    message: string,
    code: "ALREADY_CONSUMED" | "ALREADY_CLOSED" | "BUFFER_FULL",
    details: DurableStreamErrorDetails = { retryable: false },
  ) {
    super(message, code, undefined, details);
  }
}

/** A producer's bounded buffer has no room for a message right now. */
export class BufferFullError extends InvalidStateError {
  /** The size of the refused message in bytes. */
  readonly requested: number;
  /** Bytes buffered when it was refused. */
  readonly buffered: number;
  /** The producer's buffer limit in bytes. */
  readonly limit: number;

  constructor(message: string, requested: number, buffered: number, limit: number) {
    super(message, "BUFFER_FULL", { retryable: false });
    this.requested = requested;
    this.buffered = buffered;
    this.limit = limit;
  }
}

/** An operation was aborted (its `signal` fired) or cancelled. */
export class FetchBackoffAbortError extends DurableStreamError {
  constructor(message = "Fetch with backoff aborted") {
    super(message, "CANCELLED", undefined, { retryable: false });
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

/**
 * A subscription request was refused with a protocol code. The HTTP-like codes
 * (`SUBSCRIPTION_NOT_FOUND`, `SUBSCRIPTION_ALREADY_EXISTS`, ...) stay {@link FetchError}s with
 * `code` `NOT_FOUND`, `CONFLICT_EXISTS`, ...; the lease protocol's own answers are the
 * subclasses {@link FencedError}, {@link AlreadyClaimedError} and {@link NoPendingWorkError}.
 */
export class SubscriptionError extends DurableStreamError {
  /** The protocol's code (`FENCED`, `ALREADY_CLAIMED`, `NO_PENDING_WORK`). */
  readonly subscriptionCode: string;

  constructor(
    message: string,
    code: DurableStreamErrorCode,
    subscriptionCode: string,
    status = 409,
    details: DurableStreamErrorDetails = {},
  ) {
    super(message, code, status, details);
    this.subscriptionCode = subscriptionCode;
  }
}

/** 409 `FENCED`: the wake is stale, the lease is lost; nothing was acked. */
export class FencedError extends SubscriptionError {
  constructor(message: string, status = 409, details: DurableStreamErrorDetails = {}) {
    super(message, "FENCED", "FENCED", status, details);
  }
}

/** 409 `ALREADY_CLAIMED`: another worker holds the subscription's lease. */
export class AlreadyClaimedError extends SubscriptionError {
  /** The worker holding it, when the server said. */
  readonly currentHolder: string | undefined;

  constructor(
    message: string,
    currentHolder?: string,
    status = 409,
    details: DurableStreamErrorDetails = {},
  ) {
    super(message, "ALREADY_CLAIMED", "ALREADY_CLAIMED", status, details);
    this.currentHolder = currentHolder;
  }
}

/** 409 `NO_PENDING_WORK`: a claim found nothing to do. */
export class NoPendingWorkError extends SubscriptionError {
  constructor(message: string, status = 409, details: DurableStreamErrorDetails = {}) {
    super(message, "NO_PENDING_WORK", "NO_PENDING_WORK", status, details);
  }
}

/**
 * A webhook delivery failed verification: answer 401 and do not process it. `check` says
 * which check failed: `missing_header`, `malformed_header`, `timestamp_out_of_window`,
 * `unknown_key`, `bad_signature` or `malformed_payload`.
 */
export class InvalidSignatureError extends DurableStreamError {
  /** The failed check. */
  readonly check: string;

  constructor(message: string, check: string) {
    super(message, "INVALID_SIGNATURE", undefined, { retryable: false });
    this.check = check;
  }
}

/**
 * The connection failed before a response arrived (`NETWORK_ERROR`); `cause` is the
 * {@link TransportError} (or, after retries, the last attempt's `NetworkError`).
 */
export class NetworkError extends DurableStreamError {
  declare readonly code: "NETWORK_ERROR";

  constructor(message: string, details: DurableStreamErrorDetails = { retryable: true }) {
    super(message, "NETWORK_ERROR", undefined, details);
  }
}

/** A request or an operation ran past its deadline (`TIMEOUT`). */
export class StreamTimeoutError extends DurableStreamError {
  declare readonly code: "TIMEOUT";

  constructor(message: string, details: DurableStreamErrorDetails = { retryable: true }) {
    super(message, "TIMEOUT", undefined, details);
  }
}

/** A server response could not be parsed (`PARSE_ERROR`); for JSON, `cause` is a `SyntaxError`. */
export class ParseError extends DurableStreamError {
  declare readonly code: "PARSE_ERROR";

  constructor(message: string, details: DurableStreamErrorDetails = { retryable: false }) {
    super(message, "PARSE_ERROR", undefined, details);
  }
}

/** A value was refused before anything was sent (`INVALID_ARGUMENT`). */
export class InvalidArgumentError extends DurableStreamError {
  declare readonly code: "INVALID_ARGUMENT";

  constructor(message: string, details: DurableStreamErrorDetails = { retryable: false }) {
    super(message, "INVALID_ARGUMENT", undefined, details);
  }
}

/** A handle or read was created without a URL. */
export class MissingStreamUrlError extends DurableStreamError {
  constructor() {
    super("Invalid stream options: missing required url parameter", "MISSING_URL");
  }
}

/** The `signal` option is not an `AbortSignal`. */
export class InvalidSignalError extends DurableStreamError {
  constructor() {
    super("Invalid signal option: it must be an AbortSignal", "INVALID_SIGNAL");
  }
}

const MARKER = "durable-streams-client:";

interface DescribedCause {
  transport: true;
  kind: TransportErrorKind | "json";
  message: string;
  errno: string | null;
}

interface Described {
  cause?: Described | DescribedCause | null;
  attempts?: number | null;
  message: string;
  code: DurableStreamErrorCode;
  status: number | null;
  url: string | null;
  serverMessage: string | null;
  retryable: boolean;
  retryAfterMs?: number;
  finalOffset?: string | null;
  epoch?: number;
  currentEpoch?: number;
  expectedSeq?: number;
  receivedSeq?: number;
  requested?: number;
  buffered?: number;
  limit?: number;
  producerId?: string;
  serverSeq?: number | null;
  currentHolder?: string | null;
  check?: string;
}

/** The codes of a refused HTTP request: a {@link FetchError} as in the reference client. */
const HTTP_CODES: ReadonlySet<string> = new Set([
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
export function fromDescription(text: string): DurableStreamError {
  return fromDescribed(JSON.parse(text.slice(MARKER.length)) as Described);
}

/** The error for a description, with its cause chain and attempts. */
function fromDescribed(d: Described): DurableStreamError {
  const err = classFor(d);
  if (err.url === undefined && typeof d.url === "string") {
    (err as { url: string | undefined }).url = d.url;
  }
  if (typeof d.attempts === "number") {
    (err as { attempts: number | undefined }).attempts = d.attempts;
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

function transportCause(c: DescribedCause): TransportError | SyntaxError {
  if (c.kind === "json") return new SyntaxError(c.message);
  return new TransportError(c.message, c.kind, c.errno ?? undefined);
}

function classFor(d: Described): DurableStreamError {
  const details: DurableStreamErrorDetails = {
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
      return new ProducerSessionConflictError(
        d.message,
        d.producerId ?? "",
        d.epoch ?? 0,
        d.serverSeq ?? undefined,
        details,
      );
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
      return new RateLimitedError(
        d.status ?? 429,
        d.serverMessage ?? undefined,
        undefined,
        retryAfterHeaders(d.retryAfterMs),
        url,
        d.message,
        { code: d.code, details },
      );
  }
  if (HTTP_CODES.has(d.code) && d.status !== null) {
    return new FetchError(
      d.status,
      d.serverMessage ?? undefined,
      undefined,
      retryAfterHeaders(d.retryAfterMs),
      url,
      d.message,
      { code: d.code, details },
    );
  }
  return new DurableStreamError(d.message, d.code, d.status ?? undefined, details);
}

function retryAfterHeaders(ms: number | undefined): Record<string, string> {
  return ms === undefined ? {} : { "retry-after": String(Math.ceil(ms / 1000)) };
}

/** The package's error for anything a native call threw; other values pass through. */
export function convert(e: unknown): unknown {
  if (e instanceof Error && !(e instanceof DurableStreamError) && e.message.startsWith(MARKER)) {
    return fromDescription(e.message);
  }
  return e;
}
