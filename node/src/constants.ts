/**
 * Protocol header, query-parameter and SSE field names, and the default backoff, under the
 * names `@durable-streams/client` exports them.
 */

import * as native from "../native/index.js";
import type { BackoffOptions } from "./internal.js";

/** Response header: the offset after the returned data. */
export const STREAM_OFFSET_HEADER = "Stream-Next-Offset";
/** Response header: the cursor to echo on the next live request. */
export const STREAM_CURSOR_HEADER = "Stream-Cursor";
/** Response header: present when the response reaches the tail of the stream. */
export const STREAM_UP_TO_DATE_HEADER = "Stream-Up-To-Date";
/** Request and response header: `true` when the stream is (to be) closed. */
export const STREAM_CLOSED_HEADER = "Stream-Closed";
/** Request header: a writer's sequence value (must increase). */
export const STREAM_SEQ_HEADER = "Stream-Seq";
/** Request header on create: time to live in seconds. */
export const STREAM_TTL_HEADER = "Stream-TTL";
/** Request header on create: absolute expiry time. */
export const STREAM_EXPIRES_AT_HEADER = "Stream-Expires-At";
/** Idempotent producer: the producer id. */
export const PRODUCER_ID_HEADER = "Producer-Id";
/** Idempotent producer: the epoch (the server's current one on a 403). */
export const PRODUCER_EPOCH_HEADER = "Producer-Epoch";
/** Idempotent producer: the sequence number of a batch. */
export const PRODUCER_SEQ_HEADER = "Producer-Seq";
/** Idempotent producer, on a 409: the sequence number the server expected. */
export const PRODUCER_EXPECTED_SEQ_HEADER = "Producer-Expected-Seq";
/** Idempotent producer, on a 409: the sequence number the server received. */
export const PRODUCER_RECEIVED_SEQ_HEADER = "Producer-Received-Seq";
/** Query parameter: where a read starts. */
export const OFFSET_QUERY_PARAM = "offset";
/** Query parameter: the live mode of a read (`long-poll`, `sse`). */
export const LIVE_QUERY_PARAM = "live";
/** Query parameter: the echoed cursor. */
export const CURSOR_QUERY_PARAM = "cursor";
/** SSE control event field: the next offset. */
export const SSE_OFFSET_FIELD = "streamNextOffset";
/** SSE control event field: the cursor. */
export const SSE_CURSOR_FIELD = "streamCursor";
/** SSE control event field: the stream is closed. */
export const SSE_CLOSED_FIELD = "streamClosed";
/** Content-type prefixes a server may serve over SSE without base64. */
export const SSE_COMPATIBLE_CONTENT_TYPES: ReadonlyArray<string> = ["text/", "application/json"];
/** The query parameters the client sets itself on reads. */
export const DURABLE_STREAM_PROTOCOL_QUERY_PARAMS: string[] = [
  OFFSET_QUERY_PARAM,
  LIVE_QUERY_PARAM,
  CURSOR_QUERY_PARAM,
];

/** The default retry policy (the core's): 100 ms, growing by 1.3 up to 60 s, no retry limit. */
export const BackoffDefaults: Required<Omit<BackoffOptions, "onFailedAttempt" | "debug">> =
  (() => {
    const d = native.backoffDefaults();
    return Object.freeze({
      initialDelay: d.initialDelay,
      maxDelay: d.maxDelay,
      multiplier: d.multiplier,
      maxRetries: d.maxRetries ?? Infinity,
    });
  })();
