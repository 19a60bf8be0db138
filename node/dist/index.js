"use strict";
/**
 * durable-streams-client: a fast, exactly-once client for the Durable Streams protocol, with
 * the API of `@durable-streams/client`.
 *
 * @packageDocumentation
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.stream = exports.DurableStream = exports.StreamResponse = exports.asAsyncIterableReadableStream = exports.Receipt = exports.IdempotentProducer = exports.warnIfUsingHttpInBrowser = exports.createFetchWithConsumedBody = exports.createFetchWithBackoff = exports._resetHttpWarningForTesting = exports.StreamClosedError = exports.StaleEpochError = exports.SequenceGapError = exports.RateLimitedError = exports.ProducerSessionConflictError = exports.MissingStreamUrlError = exports.InvalidSignalError = exports.FetchError = exports.FetchBackoffAbortError = exports.DurableStreamError = exports.BufferFullError = exports.STREAM_UP_TO_DATE_HEADER = exports.STREAM_TTL_HEADER = exports.STREAM_SEQ_HEADER = exports.STREAM_OFFSET_HEADER = exports.STREAM_EXPIRES_AT_HEADER = exports.STREAM_CURSOR_HEADER = exports.STREAM_CLOSED_HEADER = exports.SSE_OFFSET_FIELD = exports.SSE_CURSOR_FIELD = exports.SSE_COMPATIBLE_CONTENT_TYPES = exports.SSE_CLOSED_FIELD = exports.PRODUCER_SEQ_HEADER = exports.PRODUCER_RECEIVED_SEQ_HEADER = exports.PRODUCER_ID_HEADER = exports.PRODUCER_EXPECTED_SEQ_HEADER = exports.PRODUCER_EPOCH_HEADER = exports.OFFSET_QUERY_PARAM = exports.LIVE_QUERY_PARAM = exports.DURABLE_STREAM_PROTOCOL_QUERY_PARAMS = exports.CURSOR_QUERY_PARAM = exports.BackoffDefaults = void 0;
var constants_js_1 = require("./constants.js");
Object.defineProperty(exports, "BackoffDefaults", { enumerable: true, get: function () { return constants_js_1.BackoffDefaults; } });
Object.defineProperty(exports, "CURSOR_QUERY_PARAM", { enumerable: true, get: function () { return constants_js_1.CURSOR_QUERY_PARAM; } });
Object.defineProperty(exports, "DURABLE_STREAM_PROTOCOL_QUERY_PARAMS", { enumerable: true, get: function () { return constants_js_1.DURABLE_STREAM_PROTOCOL_QUERY_PARAMS; } });
Object.defineProperty(exports, "LIVE_QUERY_PARAM", { enumerable: true, get: function () { return constants_js_1.LIVE_QUERY_PARAM; } });
Object.defineProperty(exports, "OFFSET_QUERY_PARAM", { enumerable: true, get: function () { return constants_js_1.OFFSET_QUERY_PARAM; } });
Object.defineProperty(exports, "PRODUCER_EPOCH_HEADER", { enumerable: true, get: function () { return constants_js_1.PRODUCER_EPOCH_HEADER; } });
Object.defineProperty(exports, "PRODUCER_EXPECTED_SEQ_HEADER", { enumerable: true, get: function () { return constants_js_1.PRODUCER_EXPECTED_SEQ_HEADER; } });
Object.defineProperty(exports, "PRODUCER_ID_HEADER", { enumerable: true, get: function () { return constants_js_1.PRODUCER_ID_HEADER; } });
Object.defineProperty(exports, "PRODUCER_RECEIVED_SEQ_HEADER", { enumerable: true, get: function () { return constants_js_1.PRODUCER_RECEIVED_SEQ_HEADER; } });
Object.defineProperty(exports, "PRODUCER_SEQ_HEADER", { enumerable: true, get: function () { return constants_js_1.PRODUCER_SEQ_HEADER; } });
Object.defineProperty(exports, "SSE_CLOSED_FIELD", { enumerable: true, get: function () { return constants_js_1.SSE_CLOSED_FIELD; } });
Object.defineProperty(exports, "SSE_COMPATIBLE_CONTENT_TYPES", { enumerable: true, get: function () { return constants_js_1.SSE_COMPATIBLE_CONTENT_TYPES; } });
Object.defineProperty(exports, "SSE_CURSOR_FIELD", { enumerable: true, get: function () { return constants_js_1.SSE_CURSOR_FIELD; } });
Object.defineProperty(exports, "SSE_OFFSET_FIELD", { enumerable: true, get: function () { return constants_js_1.SSE_OFFSET_FIELD; } });
Object.defineProperty(exports, "STREAM_CLOSED_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_CLOSED_HEADER; } });
Object.defineProperty(exports, "STREAM_CURSOR_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_CURSOR_HEADER; } });
Object.defineProperty(exports, "STREAM_EXPIRES_AT_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_EXPIRES_AT_HEADER; } });
Object.defineProperty(exports, "STREAM_OFFSET_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_OFFSET_HEADER; } });
Object.defineProperty(exports, "STREAM_SEQ_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_SEQ_HEADER; } });
Object.defineProperty(exports, "STREAM_TTL_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_TTL_HEADER; } });
Object.defineProperty(exports, "STREAM_UP_TO_DATE_HEADER", { enumerable: true, get: function () { return constants_js_1.STREAM_UP_TO_DATE_HEADER; } });
var errors_js_1 = require("./errors.js");
Object.defineProperty(exports, "BufferFullError", { enumerable: true, get: function () { return errors_js_1.BufferFullError; } });
Object.defineProperty(exports, "DurableStreamError", { enumerable: true, get: function () { return errors_js_1.DurableStreamError; } });
Object.defineProperty(exports, "FetchBackoffAbortError", { enumerable: true, get: function () { return errors_js_1.FetchBackoffAbortError; } });
Object.defineProperty(exports, "FetchError", { enumerable: true, get: function () { return errors_js_1.FetchError; } });
Object.defineProperty(exports, "InvalidSignalError", { enumerable: true, get: function () { return errors_js_1.InvalidSignalError; } });
Object.defineProperty(exports, "MissingStreamUrlError", { enumerable: true, get: function () { return errors_js_1.MissingStreamUrlError; } });
Object.defineProperty(exports, "ProducerSessionConflictError", { enumerable: true, get: function () { return errors_js_1.ProducerSessionConflictError; } });
Object.defineProperty(exports, "RateLimitedError", { enumerable: true, get: function () { return errors_js_1.RateLimitedError; } });
Object.defineProperty(exports, "SequenceGapError", { enumerable: true, get: function () { return errors_js_1.SequenceGapError; } });
Object.defineProperty(exports, "StaleEpochError", { enumerable: true, get: function () { return errors_js_1.StaleEpochError; } });
Object.defineProperty(exports, "StreamClosedError", { enumerable: true, get: function () { return errors_js_1.StreamClosedError; } });
var fetch_js_1 = require("./fetch.js");
Object.defineProperty(exports, "_resetHttpWarningForTesting", { enumerable: true, get: function () { return fetch_js_1._resetHttpWarningForTesting; } });
Object.defineProperty(exports, "createFetchWithBackoff", { enumerable: true, get: function () { return fetch_js_1.createFetchWithBackoff; } });
Object.defineProperty(exports, "createFetchWithConsumedBody", { enumerable: true, get: function () { return fetch_js_1.createFetchWithConsumedBody; } });
Object.defineProperty(exports, "warnIfUsingHttpInBrowser", { enumerable: true, get: function () { return fetch_js_1.warnIfUsingHttpInBrowser; } });
var producer_js_1 = require("./producer.js");
Object.defineProperty(exports, "IdempotentProducer", { enumerable: true, get: function () { return producer_js_1.IdempotentProducer; } });
Object.defineProperty(exports, "Receipt", { enumerable: true, get: function () { return producer_js_1.Receipt; } });
var response_js_1 = require("./response.js");
Object.defineProperty(exports, "asAsyncIterableReadableStream", { enumerable: true, get: function () { return response_js_1.asAsyncIterableReadableStream; } });
Object.defineProperty(exports, "StreamResponse", { enumerable: true, get: function () { return response_js_1.StreamResponse; } });
var stream_js_1 = require("./stream.js");
Object.defineProperty(exports, "DurableStream", { enumerable: true, get: function () { return stream_js_1.DurableStream; } });
Object.defineProperty(exports, "stream", { enumerable: true, get: function () { return stream_js_1.stream; } });
