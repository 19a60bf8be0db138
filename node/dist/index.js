"use strict";
/**
 * durable-streams-client: a fast, exactly-once client for the Durable Streams protocol, with
 * the API of `@durable-streams/client`.
 *
 * @packageDocumentation
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.stream = exports.DurableStream = exports.StreamResponse = exports.Receipt = exports.IdempotentProducer = exports.StreamClosedError = exports.StaleEpochError = exports.SequenceGapError = exports.ProducerSessionConflictError = exports.MissingStreamUrlError = exports.InvalidSignalError = exports.FetchError = exports.DurableStreamError = void 0;
var errors_js_1 = require("./errors.js");
Object.defineProperty(exports, "DurableStreamError", { enumerable: true, get: function () { return errors_js_1.DurableStreamError; } });
Object.defineProperty(exports, "FetchError", { enumerable: true, get: function () { return errors_js_1.FetchError; } });
Object.defineProperty(exports, "InvalidSignalError", { enumerable: true, get: function () { return errors_js_1.InvalidSignalError; } });
Object.defineProperty(exports, "MissingStreamUrlError", { enumerable: true, get: function () { return errors_js_1.MissingStreamUrlError; } });
Object.defineProperty(exports, "ProducerSessionConflictError", { enumerable: true, get: function () { return errors_js_1.ProducerSessionConflictError; } });
Object.defineProperty(exports, "SequenceGapError", { enumerable: true, get: function () { return errors_js_1.SequenceGapError; } });
Object.defineProperty(exports, "StaleEpochError", { enumerable: true, get: function () { return errors_js_1.StaleEpochError; } });
Object.defineProperty(exports, "StreamClosedError", { enumerable: true, get: function () { return errors_js_1.StreamClosedError; } });
var producer_js_1 = require("./producer.js");
Object.defineProperty(exports, "IdempotentProducer", { enumerable: true, get: function () { return producer_js_1.IdempotentProducer; } });
Object.defineProperty(exports, "Receipt", { enumerable: true, get: function () { return producer_js_1.Receipt; } });
var response_js_1 = require("./response.js");
Object.defineProperty(exports, "StreamResponse", { enumerable: true, get: function () { return response_js_1.StreamResponse; } });
var stream_js_1 = require("./stream.js");
Object.defineProperty(exports, "DurableStream", { enumerable: true, get: function () { return stream_js_1.DurableStream; } });
Object.defineProperty(exports, "stream", { enumerable: true, get: function () { return stream_js_1.stream; } });
