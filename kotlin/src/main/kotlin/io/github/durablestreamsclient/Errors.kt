package io.github.durablestreamsclient

import io.github.durablestreamsclient.ffi.DurableStreamException as FfiException

/**
 * Every failure of the client: a sealed class whose subclasses say what went wrong.
 *
 * [code] is the core's stable code (e.g. `"STREAM_CLOSED"`, the same codes as the Python and
 * Node packages), [status] the HTTP status when a response was received, [reason] the
 * description (also the [message]) and [retryable] whether repeating the request may succeed
 * (network errors, timeouts, 429, 5xx; it does not say whether repeating is safe: a plain
 * append is not idempotent). [cause] is the exception behind this one, when there is one: for
 * a request that gave up after its retries ([attempts] set), the last attempt's failure (the
 * same class and code); under a [NetworkException], [RequestTimeoutException] or
 * [ParseException], the transport's or parser's own error as the `java` exception it is
 * (`java.net.ConnectException` for a refused connection, `java.net.SocketTimeoutException`,
 * `java.net.SocketException`, `java.io.IOException`, or `IllegalArgumentException` for JSON
 * that does not parse); an exception thrown by your own error handler; `null` otherwise.
 *
 * ```
 * try {
 *     stream.append("late")
 * } catch (e: StreamClosedException) {
 *     println("closed at ${e.finalOffset}")
 * } catch (e: DurableStreamException) {
 *     if (!e.retryable) throw e
 * }
 * ```
 */
sealed class DurableStreamException(
    /** The human-readable description. */
    val reason: String,
    /** The stable error code. */
    val code: String,
    /** The HTTP status behind the error, when a response was received. */
    val status: Int?,
    cause: Throwable? = null,
) : Exception(reason, cause) {
    /** Whether repeating the request may succeed (by the core's rule for [code]). */
    val retryable: Boolean get() = code in retryableCodes

    /** The stream (or subscription) URL the failed request went to, credentials and query removed. */
    var url: String? = null
        internal set

    /**
     * How many attempts the request made before it gave up, when it was retried (at least 2;
     * [cause] is then the last attempt's failure); `null` when it was not retried.
     */
    var attempts: Int? = null
        internal set

    /** The server's own message (escaped and bounded), when it sent one. */
    var serverMessage: String? = null
        internal set

    /**
     * For subscription refusals: the server's subscription error code (`FENCED`,
     * `SUBSCRIPTION_ALREADY_EXISTS`, `SUBSCRIPTION_NOT_FOUND`, ...), also when [code] is a
     * stream code such as `CONFLICT_EXISTS`.
     */
    var subscriptionCode: String? = null
        internal set
}

/** The core's retryable codes, asked once. */
private val retryableCodes: Set<String> by lazy {
    io.github.durablestreamsclient.ffi.retryableErrorCodes().toSet()
}

/** 404 (`NOT_FOUND`): the stream does not exist. */
class StreamNotFoundException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** 409 on create (`CONFLICT_EXISTS`): a stream exists at the URL with another configuration. */
class StreamExistsException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/**
 * 409 on append: a `Stream-Seq` that did not increase (`CONFLICT_SEQ`) or another conflict,
 * such as a content type that does not match the stream's (`CONFLICT`).
 */
class ConflictException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** The stream is closed (`STREAM_CLOSED`): nothing more can be appended. */
class StreamClosedException(
    reason: String,
    code: String,
    status: Int?,
    /** The stream's final offset, when the server reported it. */
    val finalOffset: String?,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/** 403 on an idempotent append (`STALE_EPOCH`): a newer producer epoch owns this producer id. */
class StaleEpochException(
    reason: String,
    code: String,
    status: Int?,
    /** The epoch this producer used. */
    val epoch: ULong,
    /** The epoch the server holds. */
    val currentEpoch: ULong,
    /** The producer id. */
    val producerId: String,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/** 409 on an idempotent append (`SEQUENCE_GAP`): the server expected another sequence number. */
class SequenceGapException(
    reason: String,
    code: String,
    status: Int?,
    /** `Producer-Expected-Seq`. */
    val expectedSeq: ULong,
    /** `Producer-Received-Seq`. */
    val receivedSeq: ULong,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/**
 * Another session of this producer id wrote in this producer's epoch (a restarted writer at the
 * same epoch, or two writers sharing one id): the batch was not stored
 * (`PRODUCER_SESSION_CONFLICT`). Use a new epoch (`autoClaim`, or `restart()`).
 */
class ProducerSessionConflictException(
    reason: String,
    code: String,
    status: Int?,
    /** The producer id. */
    val producerId: String,
    /** The epoch both sessions wrote in. */
    val epoch: ULong,
    /** The highest sequence the server holds for that epoch, if it said. */
    val serverSeq: ULong?,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/**
 * 503 (`BUSY`) or another 5xx (`SERVER_ERROR`), and, as [RateLimitedException], 429: worth
 * retrying later.
 */
open class UnavailableException(
    reason: String,
    code: String,
    status: Int?,
    /** How long the server asked to wait (`Retry-After`), in milliseconds. */
    val retryAfterMs: Long?,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/** 429 (`RATE_LIMITED`): the server asks the client to slow down. */
class RateLimitedException(reason: String, code: String, status: Int?, retryAfterMs: Long?, cause: Throwable? = null) :
    UnavailableException(reason, code, status, retryAfterMs, cause)

/**
 * Any other refused request: `BAD_REQUEST` (400), `UNAUTHORIZED` (401), `FORBIDDEN` (403),
 * `GONE` (410), `PAYLOAD_TOO_LARGE` (413) or `UNEXPECTED_STATUS`.
 */
class HttpStatusException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** The connection failed before a response arrived (`NETWORK_ERROR`). */
class NetworkException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** A request or an operation ran past its deadline (`TIMEOUT`). */
class RequestTimeoutException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** A server response could not be parsed (`PARSE_ERROR`). */
class ParseException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** A value was refused before anything was sent (`INVALID_ARGUMENT`). */
class InvalidArgumentException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/**
 * A response was already consumed (`ALREADY_CONSUMED`) or a producer or handle was closed
 * (`ALREADY_CLOSED`); as [BufferFullException], a producer's buffer is full.
 */
open class InvalidStateException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** A producer's buffer has no room for the message now (`BUFFER_FULL`, from `tryAppend`). */
class BufferFullException(
    reason: String,
    code: String,
    status: Int?,
    /** The size of the refused message, in bytes. */
    val requested: Long,
    /** Bytes buffered when it was refused. */
    val buffered: Long,
    /** The producer's `maxBufferedBytes`. */
    val limit: Long,
    cause: Throwable? = null,
) : InvalidStateException(reason, code, status, cause)

/** The operation was cancelled (`CANCELLED`). */
class CancelledException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** 409 `FENCED` from a subscription: the wake is stale and the lease is lost. */
class FencedException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** 409 `ALREADY_CLAIMED` from a subscription: another worker holds the lease. */
class AlreadyClaimedException(
    reason: String,
    code: String,
    status: Int?,
    /** The worker holding the lease, when the server said. */
    val currentHolder: String?,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/** 409 `NO_PENDING_WORK` from a subscription: a claim found nothing to do. */
class NoPendingWorkException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/** A webhook request failed verification (`INVALID_SIGNATURE`). */
class InvalidSignatureException(
    reason: String,
    code: String,
    status: Int?,
    /** Which check failed. */
    val check: String,
    cause: Throwable? = null,
) : DurableStreamException(reason, code, status, cause)

/** A failure inside the bindings themselves (`INTERNAL`), such as a runtime that could not start. */
class InternalException(reason: String, code: String, status: Int?, cause: Throwable? = null) :
    DurableStreamException(reason, code, status, cause)

/**
 * The one place that maps the generated bindings' errors to the public classes. The generated
 * exception is not kept as the cause: it says nothing more, and it would print the internal
 * `ffi` names in stack traces. The cause chain comes from the details: the transport's error
 * at the root, and for a request that gave up after its retries, the last attempt's failure
 * (the same variant with its own description) between them.
 */
internal fun FfiException.toPublic(): DurableStreamException {
    val d = details()
    val root = d.cause?.toThrowable()
    val last = d.lastAttemptReason?.let { mapped(it, root).withDetails(d, attempts = null) }
    return mapped(reasonText(), last ?: root).withDetails(d, d.attempts?.toInt())
}

private fun DurableStreamException.withDetails(
    d: io.github.durablestreamsclient.ffi.ErrorDetails,
    attempts: Int?,
): DurableStreamException = also {
    it.url = d.url
    it.serverMessage = d.serverMessage
    it.subscriptionCode = d.subscriptionCode
    it.attempts = attempts
}

/** The `java` exception for the transport's or parser's error under a core error. */
private fun io.github.durablestreamsclient.ffi.ErrorCause.toThrowable(): Throwable = when (kind) {
    "connection_refused" -> java.net.ConnectException(message)
    "connection_reset", "connection_aborted", "broken_pipe" -> java.net.SocketException(message)
    "timeout" -> java.net.SocketTimeoutException(message)
    "json" -> IllegalArgumentException(message)
    else -> java.io.IOException(message)
}

private fun FfiException.details(): io.github.durablestreamsclient.ffi.ErrorDetails = when (this) {
    is FfiException.NotFound -> details
    is FfiException.StreamExists -> details
    is FfiException.Conflict -> details
    is FfiException.StreamClosed -> details
    is FfiException.StaleEpoch -> details
    is FfiException.SequenceGap -> details
    is FfiException.ProducerSessionConflict -> details
    is FfiException.Unavailable -> details
    is FfiException.Http -> details
    is FfiException.Network -> details
    is FfiException.Timeout -> details
    is FfiException.Parse -> details
    is FfiException.InvalidArgument -> details
    is FfiException.InvalidState -> details
    is FfiException.BufferFull -> details
    is FfiException.Cancelled -> details
    is FfiException.Subscription -> details
    is FfiException.InvalidSignature -> details
    is FfiException.Internal -> details
}

private fun FfiException.reasonText(): String = when (this) {
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
    is FfiException.BufferFull -> reason
    is FfiException.Cancelled -> reason
    is FfiException.Subscription -> reason
    is FfiException.InvalidSignature -> reason
    is FfiException.Internal -> reason
}

private fun FfiException.mapped(reason: String, cause: Throwable?): DurableStreamException = when (this) {
    is FfiException.NotFound -> StreamNotFoundException(reason, code, status, cause = cause)
    is FfiException.StreamExists -> StreamExistsException(reason, code, status, cause = cause)
    is FfiException.Conflict -> ConflictException(reason, code, status, cause = cause)
    is FfiException.StreamClosed -> StreamClosedException(reason, code, status, finalOffset, cause = cause)
    is FfiException.StaleEpoch -> StaleEpochException(reason, code, status, epoch, currentEpoch, producerId, cause = cause)
    is FfiException.SequenceGap -> SequenceGapException(reason, code, status, expectedSeq, receivedSeq, cause = cause)
    is FfiException.ProducerSessionConflict ->
        ProducerSessionConflictException(reason, code, status, producerId, epoch, serverSeq, cause = cause)
    is FfiException.Unavailable -> {
        val wait = retryAfterMs?.let { if (it > Long.MAX_VALUE.toULong()) Long.MAX_VALUE else it.toLong() }
        if (code == "RATE_LIMITED") {
            RateLimitedException(reason, code, status, wait, cause = cause)
        } else {
            UnavailableException(reason, code, status, wait, cause = cause)
        }
    }
    is FfiException.Http -> HttpStatusException(reason, code, status, cause = cause)
    is FfiException.Network -> NetworkException(reason, code, status, cause = cause)
    is FfiException.Timeout -> RequestTimeoutException(reason, code, status, cause = cause)
    is FfiException.Parse -> ParseException(reason, code, status, cause = cause)
    is FfiException.InvalidArgument -> InvalidArgumentException(reason, code, status, cause = cause)
    is FfiException.InvalidState -> InvalidStateException(reason, code, status, cause = cause)
    is FfiException.BufferFull ->
        BufferFullException(reason, code, status, requested.toLongClamped(), buffered.toLongClamped(), limit.toLongClamped(), cause = cause)
    is FfiException.Cancelled -> CancelledException(reason, code, status, cause = cause)
    is FfiException.Subscription -> when (code) {
        "FENCED" -> FencedException(reason, code, status, cause = cause)
        "ALREADY_CLAIMED" -> AlreadyClaimedException(reason, code, status, currentHolder, cause = cause)
        "NO_PENDING_WORK" -> NoPendingWorkException(reason, code, status, cause = cause)
        else -> HttpStatusException(reason, code, status, cause = cause)
    }
    is FfiException.InvalidSignature -> InvalidSignatureException(reason, code, status, check, cause = cause)
    is FfiException.Internal -> InternalException(reason, code, status, cause = cause)
}

private fun ULong.toLongClamped(): Long = if (this > Long.MAX_VALUE.toULong()) Long.MAX_VALUE else toLong()

/** Runs a (non-suspending) call into the generated bindings, turning its errors into the public classes. */
internal inline fun <T> ffiCall(block: () -> T): T =
    try {
        block()
    } catch (e: FfiException) {
        throw e.toPublic()
    }

/**
 * The public exception for the core's representative error with [code] (error-contract tests);
 * with [retried], as the last attempt of a request that gave up after 3.
 */
internal fun exceptionForCode(code: String, retried: Boolean = false): DurableStreamException =
    try {
        io.github.durablestreamsclient.ffi.raiseErrorForCode(code, retried)
        throw IllegalStateException("raiseErrorForCode returned for $code")
    } catch (e: FfiException) {
        e.toPublic()
    }

/** Every error code of the core. */
internal fun errorCodes(): List<String> = io.github.durablestreamsclient.ffi.errorCodes()
