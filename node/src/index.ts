/**
 * durable-streams-client: a fast, exactly-once client for the Durable Streams protocol, with
 * the API of `@durable-streams/client`.
 *
 * @packageDocumentation
 */

export {
  DurableStreamError,
  FetchError,
  InvalidSignalError,
  MissingStreamUrlError,
  ProducerSessionConflictError,
  SequenceGapError,
  StaleEpochError,
  StreamClosedError,
} from "./errors.js";
export type { DurableStreamErrorCode, DurableStreamErrorDetails } from "./errors.js";
export type { BackoffOptions, HeadersRecord, MaybePromise, ParamsRecord } from "./internal.js";
export { IdempotentProducer, Receipt } from "./producer.js";
export type { Delivery, IdempotentProducerOptions, ProducerMetrics } from "./producer.js";
export { StreamResponse } from "./response.js";
export type {
  BatchMeta,
  ByteChunk,
  JsonBatch,
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
