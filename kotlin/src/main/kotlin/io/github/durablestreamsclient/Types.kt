package io.github.durablestreamsclient

import io.github.durablestreamsclient.ffi.DurableStreamException as FfiException

// The records, enums and errors of the generated bindings are the public types as they are:
// these aliases give them a home in this package so users never import the `ffi` package.

/** How a handle is built: content type, headers and parameters for every request, retries. */
typealias StreamOptions = io.github.durablestreamsclient.ffi.StreamOptions

/** How a stream is created. */
typealias CreateOptions = io.github.durablestreamsclient.ffi.CreateOptions

/** What [DurableStream.create] found or made. */
typealias CreateResult = io.github.durablestreamsclient.ffi.CreateResult

/** Options of one append. */
typealias AppendOptions = io.github.durablestreamsclient.ffi.AppendOptions

/** What an append returned. */
typealias AppendResult = io.github.durablestreamsclient.ffi.AppendResult

/** A stream's metadata. */
typealias HeadResult = io.github.durablestreamsclient.ffi.HeadResult

/** Where and how to read. */
typealias ReadOptions = io.github.durablestreamsclient.ffi.ReadOptions

/** How a read continues at the tail: `OFF`, `LONG_POLL`, `SSE` or `AUTO`. */
typealias LiveMode = io.github.durablestreamsclient.ffi.LiveMode

/** Retry backoff: full jitter, honouring `Retry-After`. */
typealias RetryOptions = io.github.durablestreamsclient.ffi.RetryOptions

/** Throws [DurableStreamException.InvalidArgument] if these options are not usable. */
fun RetryOptions.validate() = io.github.durablestreamsclient.ffi.validateRetryOptions(this)

/**
 * A header value computed for every request (a token that expires, say); build one with
 * [headerValue]. It runs on a background thread; an exception fails that request.
 */
typealias HeaderValue = io.github.durablestreamsclient.ffi.HeaderValue

/** A header value computed by [block] for every request (`StreamOptions.computedHeaders`, ...). */
fun headerValue(block: () -> String): HeaderValue = object : HeaderValue {
    override fun compute(): String = block()
}

/** What a read error handler asks for: the failed request again, with these headers and parameters. */
typealias RetryWith = io.github.durablestreamsclient.ffi.RetryWith

/** Decides what happens after a failed read attempt; build one with [readErrorHandler]. */
typealias ReadErrorHandler = io.github.durablestreamsclient.ffi.ReadErrorHandler

/**
 * A read error hook (`ReadOptions.onError`): [block] gets the error of every failed attempt of a
 * read request, live ones included, and returns a [RetryWith] to send it again (with a refreshed
 * token, say) or null to leave it to the retry policy, which ends the read with that error once
 * it gives up. It runs on a background thread.
 */
fun readErrorHandler(block: (DurableStreamException) -> RetryWith?): ReadErrorHandler =
    object : ReadErrorHandler {
        override fun onError(error: DurableStreamException): RetryWith? = block(error)
    }

/** Told about every producer batch that failed for good; build one with [producerErrorHandler]. */
typealias ProducerErrorHandler = io.github.durablestreamsclient.ffi.ProducerErrorHandler

/**
 * A producer error callback (`ProducerOptions.onError`): [block] gets the error of every batch
 * that failed for good, on a background thread; the producer does not wait for it.
 */
fun producerErrorHandler(block: (DurableStreamException) -> Unit): ProducerErrorHandler =
    object : ProducerErrorHandler {
        override fun onError(error: DurableStreamException) = block(error)
    }

/** Where a batch leaves the reader. */
typealias BatchPosition = io.github.durablestreamsclient.ffi.BatchPosition

/** The bytes one response delivered. */
typealias ByteBatch = io.github.durablestreamsclient.ffi.ByteBatch

/** The text one response delivered. */
typealias TextBatch = io.github.durablestreamsclient.ffi.TextBatch

/** The JSON messages one response delivered, each as its own JSON text. */
typealias JsonBatch = io.github.durablestreamsclient.ffi.JsonBatch

/**
 * Every failure: a sealed class whose subclasses (aliased below) say what went wrong.
 * [code], [status] and [reason] are on every one of them.
 */
typealias DurableStreamException = FfiException

/** 404: the stream does not exist. */
typealias StreamNotFoundException = FfiException.NotFound

/** 409 on create: a stream exists at the URL with another configuration. */
typealias StreamExistsException = FfiException.StreamExists

/** 409 on append: a `Stream-Seq` that did not increase (`CONFLICT_SEQ`) or another conflict. */
typealias ConflictException = FfiException.Conflict

/** The stream is closed; `finalOffset` is its last offset when the server said it. */
typealias StreamClosedException = FfiException.StreamClosed

/** 403 on an idempotent append: a newer epoch (`currentEpoch`) owns the producer id. */
typealias StaleEpochException = FfiException.StaleEpoch

/** 409 on an idempotent append: the server expected `expectedSeq`, got `receivedSeq`. */
typealias SequenceGapException = FfiException.SequenceGap

/**
 * Another session of this producer id wrote in this producer's epoch (a restarted writer at
 * the same epoch, or two writers sharing one id): the batch was not stored. Use a new epoch
 * (`autoClaim`, or `restart()`). Carries `producerId`, `epoch` and `serverSeq`.
 */
typealias ProducerSessionConflictException = FfiException.ProducerSessionConflict

/** 429 or 5xx; `retryAfterMs` is the server's `Retry-After` when it sent one. */
typealias UnavailableException = FfiException.Unavailable

/** Another refused request (400, 401, 403, 410, 413 or an unexpected status); see `code`. */
typealias HttpStatusException = FfiException.Http

/** The connection failed before a response arrived. */
typealias NetworkException = FfiException.Network

/** A request or an operation ran past its deadline. */
typealias RequestTimeoutException = FfiException.Timeout

/** A server response could not be parsed. */
typealias ParseException = FfiException.Parse

/** A value the client refuses before sending anything. */
typealias InvalidArgumentException = FfiException.InvalidArgument

/** A consumed response, a closed producer or handle, or a full producer buffer; see `code`. */
typealias InvalidStateException = FfiException.InvalidState

/** The operation was cancelled. */
typealias CancelledException = FfiException.Cancelled

/** A failure inside the bindings themselves. */
typealias InternalException = FfiException.Internal

/** The stable error code, e.g. `"STREAM_CLOSED"` or `"NOT_FOUND"`. */
val FfiException.code: String
    get() = when (this) {
        is FfiException.NotFound -> code
        is FfiException.StreamExists -> code
        is FfiException.Conflict -> code
        is FfiException.StreamClosed -> code
        is FfiException.StaleEpoch -> code
        is FfiException.SequenceGap -> code
        is FfiException.ProducerSessionConflict -> code
        is FfiException.Unavailable -> code
        is FfiException.Http -> code
        is FfiException.Network -> code
        is FfiException.Timeout -> code
        is FfiException.Parse -> code
        is FfiException.InvalidArgument -> code
        is FfiException.InvalidState -> code
        is FfiException.Cancelled -> code
        is FfiException.Internal -> code
    }

/** The HTTP status behind the error, when a response was received. */
val FfiException.status: Int?
    get() = when (this) {
        is FfiException.NotFound -> status
        is FfiException.StreamExists -> status
        is FfiException.Conflict -> status
        is FfiException.StreamClosed -> status
        is FfiException.StaleEpoch -> status
        is FfiException.SequenceGap -> status
        is FfiException.ProducerSessionConflict -> status
        is FfiException.Unavailable -> status
        is FfiException.Http -> status
        is FfiException.Network -> status
        is FfiException.Timeout -> status
        is FfiException.Parse -> status
        is FfiException.InvalidArgument -> status
        is FfiException.InvalidState -> status
        is FfiException.Cancelled -> status
        is FfiException.Internal -> status
    }

/** The human-readable description (what `message` would say without the field list). */
val FfiException.reason: String
    get() = when (this) {
        is FfiException.NotFound -> reason
        is FfiException.StreamExists -> reason
        is FfiException.Conflict -> reason
        is FfiException.StreamClosed -> reason
        is FfiException.StaleEpoch -> reason
        is FfiException.SequenceGap -> reason
        is FfiException.ProducerSessionConflict -> reason
        is FfiException.Unavailable -> reason
        is FfiException.Http -> reason
        is FfiException.Network -> reason
        is FfiException.Timeout -> reason
        is FfiException.Parse -> reason
        is FfiException.InvalidArgument -> reason
        is FfiException.InvalidState -> reason
        is FfiException.Cancelled -> reason
        is FfiException.Internal -> reason
    }
