"use strict";
/** Helpers shared by the classes: option conversion, cancellation and error mapping. */
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
exports.extras = extras;
exports.backoff = backoff;
exports.checkSignal = checkSignal;
exports.abortReason = abortReason;
exports.run = run;
exports.backoffAborted = backoffAborted;
exports.sync = sync;
exports.messageOf = messageOf;
exports.bodyOf = bodyOf;
exports.warnFetchIgnored = warnFetchIgnored;
const native = __importStar(require("../native/index.js"));
const errors_js_1 = require("./errors.js");
/** The native description of headers and parameters. */
function extras(headers, params) {
    if (!headers && !params)
        return undefined;
    const fns = [];
    const entries = (rec) => Object.entries(rec ?? {}).flatMap(([name, v]) => {
        if (v === undefined)
            return [];
        if (typeof v === "string")
            return [{ name, value: v }];
        if (typeof v === "function") {
            fns.push(v);
            return [{ name, computed: fns.length - 1 }];
        }
        throw new errors_js_1.DurableStreamError(`the value of ${JSON.stringify(name)} must be a string or a function`, "INVALID_ARGUMENT");
    });
    const out = { headers: entries(headers), params: entries(params) };
    if (fns.length > 0) {
        out.resolve = (n) => Promise.resolve().then(() => fns[n]());
    }
    return out;
}
/** Native backoff options. */
function backoff(o) {
    if (!o)
        return undefined;
    return {
        initialDelay: o.initialDelay,
        maxDelay: o.maxDelay,
        multiplier: o.multiplier,
        maxRetries: o.maxRetries,
    };
}
/** Checks a `signal` option. */
function checkSignal(signal) {
    if (signal === undefined || signal === null)
        return undefined;
    if (!(signal instanceof AbortSignal))
        throw new errors_js_1.InvalidSignalError();
    return signal;
}
/** The rejection of an aborted operation: the signal's reason. */
function abortReason(signal) {
    return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}
/**
 * Runs a native call; `signal` cancels it (dropping the Rust future and its request) and the
 * call then rejects with `aborted(signal)` (default: the signal's reason). Native errors become
 * the package's classes.
 */
async function run(signal, call, aborted = abortReason) {
    if (!signal) {
        try {
            return await call(undefined);
        }
        catch (e) {
            throw (0, errors_js_1.convert)(e);
        }
    }
    if (signal.aborted)
        throw aborted(signal);
    const token = new native.CancelToken();
    const onAbort = () => token.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
        return await call(token);
    }
    catch (e) {
        if (token.cancelled)
            throw aborted(signal);
        throw (0, errors_js_1.convert)(e);
    }
    finally {
        signal.removeEventListener("abort", onAbort);
    }
}
/**
 * The rejection of an aborted request that the reference client sends through its backoff
 * wrapper (create, append, appendStream, close, delete, a read's first request): a
 * `FetchBackoffAbortError`, with the signal's reason as its `cause`.
 */
function backoffAborted(signal) {
    const e = new errors_js_1.FetchBackoffAbortError();
    Object.defineProperty(e, "cause", { value: abortReason(signal), writable: true, configurable: true });
    return e;
}
/** Runs a synchronous native call, converting its errors. */
function sync(call) {
    try {
        return call();
    }
    catch (e) {
        throw (0, errors_js_1.convert)(e);
    }
}
/** A message body as the native layer takes it. */
/**
 * A message for `append` or `close`: a string or bytes, as in `@durable-streams/client`, which
 * refuses other values too (on a JSON stream pass `JSON.stringify(value)`).
 */
function messageOf(body, what) {
    if (typeof body === "string" || body instanceof Uint8Array)
        return bodyOf(body);
    throw new errors_js_1.DurableStreamError(`${what} takes a string or a Uint8Array; for a JSON value pass JSON.stringify(value)`, "BAD_REQUEST");
}
/** A request body: a string, bytes, or a value serialized as JSON (`create`'s `body`). */
function bodyOf(body) {
    if (typeof body === "string")
        return body;
    if (Buffer.isBuffer(body))
        return body;
    if (body instanceof Uint8Array)
        return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return JSON.stringify(body);
}
let fetchWarned = false;
/**
 * Warns once per process that a `fetch` option is not used: requests go through the native
 * HTTP client, so a custom `fetch` (a proxy, a mock, instrumentation) has no effect.
 */
function warnFetchIgnored() {
    if (fetchWarned)
        return;
    fetchWarned = true;
    process.emitWarning("the fetch option is ignored: durable-streams-client sends its requests through its native " +
        "HTTP client. Pass headers (values may be functions, called per request), params and " +
        "backoffOptions instead.", { code: "DSC_FETCH_IGNORED", type: "DurableStreamsWarning" });
}
