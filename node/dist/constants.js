"use strict";
/**
 * Protocol header, query-parameter and SSE field names, and the default backoff, under the
 * names `@durable-streams/client` exports them.
 */
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.BackoffDefaults = exports.DURABLE_STREAM_PROTOCOL_QUERY_PARAMS = exports.SSE_COMPATIBLE_CONTENT_TYPES = exports.SSE_CLOSED_FIELD = exports.SSE_CURSOR_FIELD = exports.SSE_OFFSET_FIELD = exports.CURSOR_QUERY_PARAM = exports.LIVE_QUERY_PARAM = exports.OFFSET_QUERY_PARAM = exports.PRODUCER_RECEIVED_SEQ_HEADER = exports.PRODUCER_EXPECTED_SEQ_HEADER = exports.PRODUCER_SEQ_HEADER = exports.PRODUCER_EPOCH_HEADER = exports.PRODUCER_ID_HEADER = exports.STREAM_EXPIRES_AT_HEADER = exports.STREAM_TTL_HEADER = exports.STREAM_SEQ_HEADER = exports.STREAM_CLOSED_HEADER = exports.STREAM_UP_TO_DATE_HEADER = exports.STREAM_CURSOR_HEADER = exports.STREAM_OFFSET_HEADER = void 0;
const native = __importStar(require("../native/index.js"));
/** Response header: the offset after the returned data. */
exports.STREAM_OFFSET_HEADER = "Stream-Next-Offset";
/** Response header: the cursor to echo on the next live request. */
exports.STREAM_CURSOR_HEADER = "Stream-Cursor";
/** Response header: present when the response reaches the tail of the stream. */
exports.STREAM_UP_TO_DATE_HEADER = "Stream-Up-To-Date";
/** Request and response header: `true` when the stream is (to be) closed. */
exports.STREAM_CLOSED_HEADER = "Stream-Closed";
/** Request header: a writer's sequence value (must increase). */
exports.STREAM_SEQ_HEADER = "Stream-Seq";
/** Request header on create: time to live in seconds. */
exports.STREAM_TTL_HEADER = "Stream-TTL";
/** Request header on create: absolute expiry time. */
exports.STREAM_EXPIRES_AT_HEADER = "Stream-Expires-At";
/** Idempotent producer: the producer id. */
exports.PRODUCER_ID_HEADER = "Producer-Id";
/** Idempotent producer: the epoch (the server's current one on a 403). */
exports.PRODUCER_EPOCH_HEADER = "Producer-Epoch";
/** Idempotent producer: the sequence number of a batch. */
exports.PRODUCER_SEQ_HEADER = "Producer-Seq";
/** Idempotent producer, on a 409: the sequence number the server expected. */
exports.PRODUCER_EXPECTED_SEQ_HEADER = "Producer-Expected-Seq";
/** Idempotent producer, on a 409: the sequence number the server received. */
exports.PRODUCER_RECEIVED_SEQ_HEADER = "Producer-Received-Seq";
/** Query parameter: where a read starts. */
exports.OFFSET_QUERY_PARAM = "offset";
/** Query parameter: the live mode of a read (`long-poll`, `sse`). */
exports.LIVE_QUERY_PARAM = "live";
/** Query parameter: the echoed cursor. */
exports.CURSOR_QUERY_PARAM = "cursor";
/** SSE control event field: the next offset. */
exports.SSE_OFFSET_FIELD = "streamNextOffset";
/** SSE control event field: the cursor. */
exports.SSE_CURSOR_FIELD = "streamCursor";
/** SSE control event field: the stream is closed. */
exports.SSE_CLOSED_FIELD = "streamClosed";
/** Content-type prefixes a server may serve over SSE without base64. */
exports.SSE_COMPATIBLE_CONTENT_TYPES = ["text/", "application/json"];
/** The query parameters the client sets itself on reads. */
exports.DURABLE_STREAM_PROTOCOL_QUERY_PARAMS = [
    exports.OFFSET_QUERY_PARAM,
    exports.LIVE_QUERY_PARAM,
    exports.CURSOR_QUERY_PARAM,
];
/** The default retry policy (the core's): 100 ms, growing by 1.3 up to 60 s, no retry limit. */
exports.BackoffDefaults = (() => {
    const d = native.backoffDefaults();
    return Object.freeze({
        initialDelay: d.initialDelay,
        maxDelay: d.maxDelay,
        multiplier: d.multiplier,
        maxRetries: d.maxRetries ?? Infinity,
    });
})();
