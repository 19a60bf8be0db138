/**
 * durable-streams-client: a fast, exactly-once client for the Durable Streams protocol, with
 * the API of `@durable-streams/client`.
 *
 * @packageDocumentation
 */

export {
  BackoffDefaults,
  CURSOR_QUERY_PARAM,
  DURABLE_STREAM_PROTOCOL_QUERY_PARAMS,
  LIVE_QUERY_PARAM,
  OFFSET_QUERY_PARAM,
  PRODUCER_EPOCH_HEADER,
  PRODUCER_EXPECTED_SEQ_HEADER,
  PRODUCER_ID_HEADER,
  PRODUCER_RECEIVED_SEQ_HEADER,
  PRODUCER_SEQ_HEADER,
  SSE_CLOSED_FIELD,
  SSE_COMPATIBLE_CONTENT_TYPES,
  SSE_CURSOR_FIELD,
  SSE_OFFSET_FIELD,
  STREAM_CLOSED_HEADER,
  STREAM_CURSOR_HEADER,
  STREAM_EXPIRES_AT_HEADER,
  STREAM_OFFSET_HEADER,
  STREAM_SEQ_HEADER,
  STREAM_TTL_HEADER,
  STREAM_UP_TO_DATE_HEADER,
} from "./constants.js";
export {
  AlreadyClaimedError,
  BufferFullError,
  DurableStreamError,
  FetchBackoffAbortError,
  FencedError,
  FetchError,
  InvalidArgumentError,
  InvalidSignalError,
  InvalidSignatureError,
  InvalidStateError,
  MissingStreamUrlError,
  NetworkError,
  NoPendingWorkError,
  ParseError,
  ProducerSessionConflictError,
  RateLimitedError,
  SequenceGapError,
  StaleEpochError,
  StreamClosedError,
  StreamTimeoutError,
  SubscriptionError,
  TransportError,
} from "./errors.js";
export type {
  DurableStreamErrorCause,
  DurableStreamErrorCode,
  DurableStreamErrorDetails,
  TransportErrorKind,
} from "./errors.js";
export type { BackoffOptions, HeadersRecord, MaybePromise, ParamsRecord } from "./internal.js";
export {
  _resetHttpWarningForTesting,
  createFetchWithBackoff,
  createFetchWithConsumedBody,
  warnIfUsingHttpInBrowser,
} from "./fetch.js";
export type { FetchBackoffOptions } from "./fetch.js";
export { IdempotentProducer, Receipt } from "./producer.js";
export type {
  Delivery,
  IdempotentAppendResult,
  IdempotentProducerOptions,
  ProducerMetrics,
} from "./producer.js";
export { asAsyncIterableReadableStream, StreamResponse } from "./response.js";
export type {
  BatchMeta,
  ByteChunk,
  JsonBatch,
  JsonBatchMeta,
  JsonPickOptions,
  LegacyLiveMode,
  LiveMode,
  Offset,
  ReadableStreamAsyncIterable,
  TextChunk,
} from "./response.js";
export { DurableStream, stream } from "./stream.js";
export type {
  AppendOptions,
  AppendResult,
  CloseOptions,
  CloseResult,
  CreateOptions,
  DurableStreamOptions,
  HeadResult,
  ReadOptions,
  RetryOpts,
  SSEResilienceOptions,
  StreamErrorHandler,
  StreamHandleOptions,
  StreamOptions,
} from "./stream.js";
export {
  Job,
  JobQueue,
  PullWakeWorker,
  Subscriptions,
  Wake,
  WEBHOOK_DONE,
  WebhookVerifier,
} from "./subscriptions.js";
export type {
  AckOptions,
  AckResult,
  Acks,
  CallOptions,
  CreatedSubscription,
  IncomingHeaders,
  RunOptions,
  StreamLink,
  Subscription,
  SubscriptionConfig,
  SubscriptionsOptions,
  WakeStream,
  WebhookVerifierOptions,
  WorkerOptions,
  WorkItem,
} from "./subscriptions.js";
