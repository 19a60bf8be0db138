// Type-checked (tsc --strict --noEmit, `npm run typecheck`), not run: our exports assigned to
// the types @durable-streams/client 0.2.7 declares. A shape that code written for the
// reference could not use fails to compile here.
import * as Ref from "@durable-streams/client";
import * as Ours from "durable-streams-client";

// Error classes: constructors with the reference's parameters, and instances with its fields.
// `code` is left out of the instance comparison on purpose: ours may hold a finer code than
// the reference's union has (e.g. CONFLICT_EXISTS vs CONFLICT); every reference code is one
// of ours (below).
type Like<T> = Omit<T, "code">;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ctor<C extends abstract new (...args: any) => any> = new (
  ...args: ConstructorParameters<C>
) => Like<InstanceType<C>>;

export const errorClasses: {
  FetchError: Ctor<typeof Ref.FetchError>;
  DurableStreamError: Ctor<typeof Ref.DurableStreamError>;
  StreamClosedError: Ctor<typeof Ref.StreamClosedError>;
  StaleEpochError: Ctor<typeof Ref.StaleEpochError>;
  SequenceGapError: Ctor<typeof Ref.SequenceGapError>;
  FetchBackoffAbortError: Ctor<typeof Ref.FetchBackoffAbortError>;
  MissingStreamUrlError: Ctor<typeof Ref.MissingStreamUrlError>;
  InvalidSignalError: Ctor<typeof Ref.InvalidSignalError>;
} = Ours;

export const fetchFromResponse: (r: Response, url: string) => Promise<Like<Ref.FetchError>> =
  Ours.FetchError.fromResponse;
export const fetchError: Like<Ref.FetchError> = new Ours.FetchError(404, "no", undefined, {}, "u");
export const closedError: Like<Ref.StreamClosedError> = new Ours.StreamClosedError("u", "12");
export const closedCode: Ref.StreamClosedError["code"] = closedError.streamClosed
  ? new Ours.StreamClosedError().code
  : "STREAM_CLOSED";
export const staleError: Like<Ref.StaleEpochError> = new Ours.StaleEpochError(3);
export const gapError: Like<Ref.SequenceGapError> = new Ours.SequenceGapError(1, 2);
export const dsError: Like<Ref.DurableStreamError> = new Ours.DurableStreamError("m", "BUSY", 503);

// Every reference code is one of ours.
export function code(c: Ref.DurableStreamErrorCode): Ours.DurableStreamErrorCode {
  return c;
}

// Constants and defaults.
export const constants: Pick<
  typeof Ref,
  | "STREAM_OFFSET_HEADER"
  | "STREAM_CURSOR_HEADER"
  | "STREAM_UP_TO_DATE_HEADER"
  | "STREAM_CLOSED_HEADER"
  | "STREAM_SEQ_HEADER"
  | "STREAM_TTL_HEADER"
  | "STREAM_EXPIRES_AT_HEADER"
  | "PRODUCER_ID_HEADER"
  | "PRODUCER_EPOCH_HEADER"
  | "PRODUCER_SEQ_HEADER"
  | "PRODUCER_EXPECTED_SEQ_HEADER"
  | "PRODUCER_RECEIVED_SEQ_HEADER"
  | "OFFSET_QUERY_PARAM"
  | "LIVE_QUERY_PARAM"
  | "CURSOR_QUERY_PARAM"
  | "SSE_OFFSET_FIELD"
  | "SSE_CURSOR_FIELD"
  | "SSE_CLOSED_FIELD"
  | "SSE_COMPATIBLE_CONTENT_TYPES"
  | "DURABLE_STREAM_PROTOCOL_QUERY_PARAMS"
  | "BackoffDefaults"
> = Ours;

// Types the reference exports.
export const meta: Ref.JsonBatchMeta = { offset: "1", cursor: undefined, upToDate: true, streamClosed: false } satisfies Ours.JsonBatchMeta;
export const legacy: Ref.LegacyLiveMode = "sse" satisfies Ours.LegacyLiveMode;
export const appendResult: Ref.IdempotentAppendResult = { offset: "1", duplicate: false } satisfies Ours.IdempotentAppendResult;
export const iterable: typeof Ref.asAsyncIterableReadableStream = Ours.asAsyncIterableReadableStream;

// Handle methods with the reference's results.
export async function handle(h: Ours.DurableStream): Promise<void> {
  const created: Ours.DurableStream = await h.create();
  const closed: Ref.CloseResult = await created.close();
  const headers: Record<string, string> = await h.resolveHeaders();
  void closed;
  void headers;
}

// Functions.
export const fetchHelpers: Pick<
  typeof Ref,
  | "createFetchWithBackoff"
  | "createFetchWithConsumedBody"
  | "warnIfUsingHttpInBrowser"
  | "_resetHttpWarningForTesting"
> = Ours;
export const backoff: Ref.BackoffOptions = { ...Ours.BackoffDefaults, onFailedAttempt: () => {} };

// Response state right after `await stream()`: the reference's metadata getters.
export function responseState(
  r: Ours.StreamResponse,
): Pick<Ref.StreamResponse, "headers" | "status" | "statusText" | "ok" | "isLoading" | "offset" | "cursor" | "upToDate" | "streamClosed"> {
  return r;
}

// writable(): the reference's options, a WritableStream of strings or bytes.
export function writable(h: Ours.DurableStream): WritableStream<Uint8Array | string> {
  const opts: Parameters<Ref.DurableStream["writable"]>[0] = { producerId: "p", lingerMs: 5, maxBatchBytes: 1024 };
  return h.writable(opts);
}

// appendStream(): the reference's sources.
export async function appendStream(h: Ours.DurableStream, r: ReadableStream<string>): Promise<void> {
  const call: (s: Parameters<Ref.DurableStream["appendStream"]>[0]) => Promise<unknown> = (s) => h.appendStream(s);
  await call(r);
}

// Read options written for the reference, `cursor` included, are accepted by ours.
export async function readWithReferenceOptions(h: Ours.DurableStream, opts: Ref.ReadOptions): Promise<void> {
  await h.stream(opts);
  await h.stream({ offset: "-1", live: false, cursor: "c1" });
  await Ours.stream({ url: "http://127.0.0.1:1/s", cursor: "c1", backoffOptions: { onFailedAttempt: () => {} } });
}

// Every type the reference exports exists here: the reference's option values are accepted as
// ours, and our results are the reference's.
export function referenceOptionsAreOurs(
  append: Ref.AppendOptions,
  close: Ref.CloseOptions,
  create: Ref.CreateOptions,
  handle: Ref.DurableStreamOptions,
  handleOpts: Ref.StreamHandleOptions,
  streamOpts: Ref.StreamOptions,
  read: Ref.ReadOptions,
  sse: Ref.SSEResilienceOptions,
  producer: Ref.IdempotentProducerOptions,
  backoffOpts: Ref.BackoffOptions,
  headers: Ref.HeadersRecord,
  params: Ref.ParamsRecord,
  retry: Ref.RetryOpts,
  onError: Ref.StreamErrorHandler,
  live: Ref.LiveMode,
  offset: Ref.Offset,
  maybe: Ref.MaybePromise<string>,
): void {
  const ours: [
    Ours.AppendOptions,
    Ours.CloseOptions,
    Ours.CreateOptions,
    Ours.DurableStreamOptions,
    Ours.StreamHandleOptions,
    Ours.StreamOptions,
    Ours.ReadOptions,
    Ours.SSEResilienceOptions,
    Ours.IdempotentProducerOptions,
    Ours.BackoffOptions,
    Ours.HeadersRecord,
    Ours.ParamsRecord,
    Ours.RetryOpts,
    Ours.StreamErrorHandler,
    Ours.LiveMode,
    Ours.Offset,
    Ours.MaybePromise<string>,
  ] = [append, close, create, handle, handleOpts, streamOpts, read, sse, producer, backoffOpts, headers, params, retry, onError, live, offset, maybe];
  void ours;
}

export function ourResultsAreTheReferences(
  head: Ours.HeadResult,
  closed: Ours.CloseResult,
  text: Ours.TextChunk,
  bytes: Ours.ByteChunk,
  batch: Ours.JsonBatch<number>,
  iterable: Ours.ReadableStreamAsyncIterable<number>,
  idem: Ours.IdempotentAppendResult,
): [
  Ref.HeadResult,
  Ref.CloseResult,
  Ref.TextChunk,
  Ref.ByteChunk,
  Ref.JsonBatch<number>,
  Ref.ReadableStreamAsyncIterable<number>,
  Ref.IdempotentAppendResult,
] {
  return [head, closed, text, bytes, batch, iterable, idem];
}
