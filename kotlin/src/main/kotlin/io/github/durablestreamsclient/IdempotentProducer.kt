package io.github.durablestreamsclient

import io.github.durablestreamsclient.ffi.IdempotentProducer as FfiProducer
import io.github.durablestreamsclient.ffi.Receipt as FfiReceipt

/** How a producer batches, pipelines and retries (the core's defaults). */
typealias ProducerOptions = io.github.durablestreamsclient.ffi.ProducerOptions

/** The outcome of one message: its batch's offset, epoch and sequence, and whether it was a duplicate. */
typealias Delivery = io.github.durablestreamsclient.ffi.Delivery

/** A snapshot of a producer's counters. */
typealias ProducerMetrics = io.github.durablestreamsclient.ffi.ProducerMetrics

/** Throws [InvalidArgumentException] if these options are not usable with [producerId]. */
fun ProducerOptions.validate(producerId: String) =
    ffiCall { io.github.durablestreamsclient.ffi.validateProducerOptions(producerId, this) }

/**
 * Exactly-once appends to one stream under a producer id. `append` only queues the message
 * (it waits only when the buffer is full); the producer batches, pipelines and retries on its own
 * threads. Await a [Receipt] for one message's outcome, or [flush] for everything so far.
 *
 * ```
 * stream.producer("orders-1", ProducerOptions(autoClaim = true)).use { producer ->
 *     repeat(1000) { producer.append("""{"n":$it}""") }
 *     producer.flush()
 * }
 * ```
 *
 * [close] releases the native handle without flushing: call [flush], [detach] or [closeStream]
 * first.
 */
class IdempotentProducer internal constructor(private val ffi: FfiProducer) : AutoCloseable {
    /** The producer id. */
    val producerId: String get() = ffi.producerId()

    /** The current epoch. */
    val epoch: Long get() = ffi.epoch().toLong()

    /** The sequence number the next batch will get. */
    val nextSeq: Long get() = ffi.nextSeq().toLong()

    /** Messages accepted and not yet delivered or failed. */
    val pendingCount: Long get() = ffi.pendingCount().toLong()

    /** The greatest offset the server acknowledged to this producer. */
    val lastOffset: String? get() = ffi.lastOffset()

    /** A snapshot of the counters. */
    fun metrics(): ProducerMetrics = ffiCall { ffi.metrics() }

    /** Queues a message, waiting (up to the buffer timeout) only when the buffer is full. */
    suspend fun append(data: ByteArray): Receipt = native { Receipt(ffi.append(data)) }

    /** Queues a message given as UTF-8 text (one JSON value on a JSON stream). */
    suspend fun append(text: String): Receipt = append(text.encodeToByteArray())

    /**
     * Queues a message for callers outside coroutines: blocks the calling thread while the
     * buffer is full (up to the buffer timeout), and never waits on the network otherwise.
     */
    fun appendBlocking(data: ByteArray): Receipt = ffiCall { Receipt(ffi.appendBlocking(data)) }

    /** [appendBlocking] for a message given as UTF-8 text (one JSON value on a JSON stream). */
    fun appendBlocking(text: String): Receipt = appendBlocking(text.encodeToByteArray())

    /** Queues a message if there is room now; throws [BufferFullException] otherwise. */
    fun tryAppend(data: ByteArray): Receipt = ffiCall { Receipt(ffi.tryAppend(data)) }

    /**
     * Queues `messages[from..]` in order while there is room now, with one native call (cheaper
     * per message than [tryAppend], and no receipts); returns the index of the first message not
     * queued: `messages.size` when all were. Stops without an exception at a message that does
     * not fit; any other failure of a message is thrown when it is `messages[from]`, otherwise
     * the call returns its index and a call from there throws it.
     */
    fun tryAppendMany(messages: List<ByteArray>, from: Int = 0): Int {
        require(from in 0..messages.size) { "from must be in 0..${messages.size}, got $from" }
        var i = from
        // Chunks bound the copy into the native call.
        while (i < messages.size) {
            val end = minOf(messages.size, i + MANY_CHUNK)
            val took = ffiCall { ffi.tryAppendMany(messages.subList(i, end)) }.toInt()
            i += took
            if (i < end) break
        }
        return i
    }

    /**
     * Queues every message in order, waiting (up to the buffer timeout) for room whenever the
     * buffer is full: the batch form of [append]. A failing message is thrown; the ones before
     * it stay queued.
     */
    suspend fun appendMany(messages: List<ByteArray>) {
        var i = tryAppendMany(messages)
        while (i < messages.size) {
            // The message that did not fit waits for room; the rest go on in runs.
            append(messages[i]).close()
            i = tryAppendMany(messages, i + 1)
        }
    }

    /** [appendMany] for messages given as UTF-8 text (each one JSON value on a JSON stream). */
    @JvmName("appendManyText")
    suspend fun appendMany(messages: List<String>) = appendMany(messages.map { it.encodeToByteArray() })

    /** [appendMany] for callers outside coroutines: blocks the calling thread while the buffer is full. */
    fun appendManyBlocking(messages: List<ByteArray>) {
        var i = tryAppendMany(messages)
        while (i < messages.size) {
            appendBlocking(messages[i]).close()
            i = tryAppendMany(messages, i + 1)
        }
    }

    /** Sends what is batched and waits for everything appended before; throws the first failure since the last flush. */
    suspend fun flush() = native { ffi.flush() }

    /** Flushes, then starts a new session (epoch + 1, sequence 0). */
    suspend fun restart() = native { ffi.restart() }

    /** Flushes, then closes the stream, optionally with a final message; returns the final offset. */
    suspend fun closeStream(finalMessage: ByteArray? = null): String? =
        native { ffi.closeStream(finalMessage) }

    /** Flushes and stops the producer without closing the stream. */
    suspend fun detach() = native { ffi.detach() }

    /** Releases the native handle. */
    override fun close() = ffiCall { ffi.close() }
}

/** The most messages [IdempotentProducer.tryAppendMany] hands to the native layer at once. */
private const val MANY_CHUNK = 4096

/** The outcome of one appended message, to await or to poll. */
class Receipt internal constructor(private val ffi: FfiReceipt) : AutoCloseable {
    /** The message's number in its producer (0, 1, 2, ... in append order). */
    val messageNumber: Long get() = ffi.messageNumber().toLong()

    /** Waits until the message's batch is delivered (or throws its failure). */
    suspend fun await(): Delivery = native { ffi.wait() }

    /** The outcome if already known, without waiting (throws the failure if it failed). */
    fun poll(): Delivery? = ffiCall { ffi.tryResult() }

    /** Releases the native object. */
    override fun close() = ffiCall { ffi.close() }
}
