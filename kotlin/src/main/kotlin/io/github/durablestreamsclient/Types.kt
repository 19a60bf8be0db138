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

/** Throws [InvalidArgumentException] if these options are not usable. */
fun RetryOptions.validate() = ffiCall { io.github.durablestreamsclient.ffi.validateRetryOptions(this) }

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
        override fun onError(error: FfiException): RetryWith? = block(error.toPublic())
    }

/** Told about every producer batch that failed for good; build one with [producerErrorHandler]. */
typealias ProducerErrorHandler = io.github.durablestreamsclient.ffi.ProducerErrorHandler

/**
 * A producer error callback (`ProducerOptions.onError`): [block] gets the error of every batch
 * that failed for good, on a background thread; the producer does not wait for it.
 */
fun producerErrorHandler(block: (DurableStreamException) -> Unit): ProducerErrorHandler =
    object : ProducerErrorHandler {
        override fun onError(error: FfiException) = block(error.toPublic())
    }

/** Told about every failed attempt of a handle's requests; build one with [failedAttemptHandler]. */
typealias FailedAttemptHandler = io.github.durablestreamsclient.ffi.FailedAttemptHandler

/**
 * A failed attempt of a handle's request: why it failed, the request's failed attempts so far
 * (1 for the first), whether the retry policy tries again, and the request (`create`, `head`,
 * `append`, `close` or `delete`).
 */
data class FailedAttempt(
    val error: DurableStreamException,
    val attempt: Int,
    val willRetry: Boolean,
    val operation: String,
)

/**
 * A failed-attempt observer (`StreamOptions.onFailedAttempt`): [block] gets every failed attempt
 * of create, head, append, close and delete, retried or not (for metrics or a "reconnecting"
 * notice), on a background thread before the retry pause. It cannot change what happens next;
 * an exception it throws is ignored.
 */
fun failedAttemptHandler(block: (FailedAttempt) -> Unit): FailedAttemptHandler =
    object : FailedAttemptHandler {
        override fun onFailedAttempt(error: FfiException, attempt: UInt, willRetry: Boolean, operation: String) =
            block(FailedAttempt(error.toPublic(), attempt.toInt(), willRetry, operation))
    }

/** Where a batch leaves the reader. */
typealias BatchPosition = io.github.durablestreamsclient.ffi.BatchPosition

/** The bytes one response delivered. */
typealias ByteBatch = io.github.durablestreamsclient.ffi.ByteBatch

/** The text one response delivered. */
typealias TextBatch = io.github.durablestreamsclient.ffi.TextBatch

/** The JSON messages one response delivered, each as its own JSON text. */
typealias JsonBatch = io.github.durablestreamsclient.ffi.JsonBatch

/** The JSON messages one response delivered, as the texts of JSON arrays. */
typealias JsonArrayBatch = io.github.durablestreamsclient.ffi.JsonArrayBatch
