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
    /** This producer's number for [FastCalls.dsc_producer_try_append], taken on the first append. */
    private val slot: Long by lazy { ffiCall { ffi.fastSlot() }.toLong() }

    /**
     * One append through the JNI function, or the plain C function where it is not bound (no
     * uniffi call status, no receipt object): the message number, or a negative code (see
     * bindings/ffi/src/fast.rs), after which the caller repeats the append through uniffi for
     * the full outcome (nothing was appended).
     */
    private fun fastAppend(data: ByteArray): Long =
        when {
            closed -> NO_PRODUCER
            JniCalls.available -> JniCalls.tryAppend(slot, data)
            else -> FastCalls.dsc_producer_try_append(slot, data, data.size.toLong())
        }

    /**
     * Set by [close]. The native producer leaves the direct calls' table only when its last
     * reference goes, and a suspended call still running holds one; from [close] on, the direct
     * calls refuse, so an append throws as every uniffi call on a closed handle does.
     */
    @Volatile
    private var closed = false

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

    /**
     * Queues a message, waiting (up to the buffer timeout) only when the buffer is full.
     *
     * Cancelling the call never leaves the message queued behind the caller's back: the message
     * goes in here, in the calling coroutine, at once or right after a wait for room, and a
     * cancellation can only land in that wait, before it went in. Each wait is bounded by the
     * buffer timeout; room another append takes first means one more wait.
     */
    suspend fun append(data: ByteArray): Receipt {
        while (true) {
            val n = fastAppend(data)
            if (n >= 0) return Receipt(ffi, n)
            if (n != FAST_BUFFER_FULL) {
                // Failed for another reason: uniffi says why (or appends it, if that has passed).
                try {
                    return ffiCall { Receipt(ffi.tryAppend(data)) }
                } catch (e: BufferFullException) {
                    // Full by now after all: wait as below.
                }
            }
            waitForRoom(data.size)
        }
    }

    /** Waits for room for [size] bytes without taking it, so cancelling the wait changes nothing. */
    private suspend fun waitForRoom(size: Int) = native { ffi.waitForRoom(size.toULong()) }

    /** Queues a message given as UTF-8 text (one JSON value on a JSON stream). */
    suspend fun append(text: String): Receipt = append(text.encodeToByteArray())

    /**
     * Queues a message for callers outside coroutines: blocks the calling thread while the
     * buffer is full (up to the buffer timeout), and never waits on the network otherwise.
     */
    fun appendBlocking(data: ByteArray): Receipt {
        val n = fastAppend(data)
        return if (n >= 0) Receipt(ffi, n) else ffiCall { Receipt(ffi.appendBlocking(data)) }
    }

    /** [appendBlocking] for a message given as UTF-8 text (one JSON value on a JSON stream). */
    fun appendBlocking(text: String): Receipt = appendBlocking(text.encodeToByteArray())

    /** Queues a message if there is room now; throws [BufferFullException] otherwise. */
    fun tryAppend(data: ByteArray): Receipt {
        val n = fastAppend(data)
        return if (n >= 0) Receipt(ffi, n) else ffiCall { Receipt(ffi.tryAppend(data)) }
    }

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
        while (i < messages.size) {
            // A run packed into one array for one direct native call (no uniffi lowering of the
            // list): up to MANY_CHUNK messages or about MANY_BYTES bytes.
            var end = i
            var bytes = 0L
            while (end < messages.size && end - i < MANY_CHUNK && (end == i || bytes < MANY_BYTES)) {
                bytes += messages[end].size
                end++
            }
            if (bytes > Int.MAX_VALUE) {
                // One message too large to pack: alone through the per-message call.
                end = i + 1
            }
            val took = if (end - i == 1) fastAppendOne(messages[i]) else fastAppendRun(messages, i, end, bytes.toInt())
            if (took < 0) {
                // The run's first message failed (not for room). Not the call's first: stop
                // there. The call's first: uniffi says why (or appends it, if the failure has
                // passed meanwhile); the failed direct call appended nothing.
                if (i > from) return i
                ffiCall { ffi.tryAppend(messages[i]) }.close()
                i++
                continue
            }
            i += took
            if (i < end) break
        }
        return i
    }

    /** [fastAppend] as a run's answer: 1, 0 (no room), or negative (failed). */
    private fun fastAppendOne(data: ByteArray): Int {
        val n = fastAppend(data)
        return if (n >= 0) 1 else if (n == FAST_BUFFER_FULL) 0 else -1
    }

    /** `messages[from, end)` appended with one direct call (packed for JNA): how many, or -1. */
    private fun fastAppendRun(messages: List<ByteArray>, from: Int, end: Int, bytes: Int): Int {
        if (closed) return -1
        if (JniCalls.available) {
            val n = JniCalls.tryAppendRun(slot, messages.subList(from, end).toTypedArray(), bytes)
            return if (n >= 0) n.toInt() else -1
        }
        val packed = ByteArray(bytes)
        val ends = IntArray(end - from)
        var at = 0
        for (k in from until end) {
            val m = messages[k]
            System.arraycopy(m, 0, packed, at, m.size)
            at += m.size
            ends[k - from] = at
        }
        val n = FastCalls.dsc_producer_try_append_many(slot, packed, packed.size.toLong(), ends, ends.size.toLong())
        return if (n >= 0) n.toInt() else -1
    }

    /**
     * Queues every message in order, waiting (up to the buffer timeout) for room whenever the
     * buffer is full: the batch form of [append]. A failing message is thrown; the ones before
     * it stay queued. Cancelled, it has queued the messages before the one that waited for room,
     * and none from there on (as [append], a cancellation lands only in a wait for room).
     */
    suspend fun appendMany(messages: List<ByteArray>) {
        var i = tryAppendMany(messages)
        while (i < messages.size) {
            // The message that did not fit waits for room; then the rest go on in runs from it.
            waitForRoom(messages[i].size)
            i = tryAppendMany(messages, i)
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
    override fun close() {
        closed = true
        ffiCall { ffi.close() }
    }
}

/** `dsc_producer_try_append`'s answer for a full buffer (bindings/ffi/src/fast.rs). */
private const val FAST_BUFFER_FULL = -1L

/** The fast calls' answer for a slot that holds no producer (bindings/ffi/src/fast.rs). */
internal const val NO_PRODUCER = -3L

/** The most messages [IdempotentProducer.tryAppendMany] packs into one native call. */
private const val MANY_CHUNK = 4096

/** About the most bytes [IdempotentProducer.tryAppendMany] packs into one native call. */
private const val MANY_BYTES = 1L shl 20

/**
 * The outcome of one appended message, to await or to poll. An append hands out the message's
 * number; the native receipt is made only when [await] or [poll] first needs it.
 */
class Receipt private constructor(
    private val producer: FfiProducer?,
    /** The message's number in its producer (0, 1, 2, ... in append order). */
    val messageNumber: Long,
    private var made: FfiReceipt?,
) : AutoCloseable {
    internal constructor(ffi: FfiReceipt) : this(null, ffi.messageNumber().toLong(), ffi)
    internal constructor(producer: FfiProducer, messageNumber: Long) : this(producer, messageNumber, null)

    private var closed = false

    /** The native receipt, made on first use. */
    @Synchronized
    private fun nativeReceipt(): FfiReceipt {
        check(!closed) { "the receipt of message $messageNumber is closed" }
        made?.let { return it }
        val p = producer ?: error("a receipt without its producer")
        return ffiCall { p.receipt(messageNumber.toULong()) }.also { made = it }
    }

    /** Waits until the message's batch is delivered (or throws its failure). */
    suspend fun await(): Delivery {
        val r = nativeReceipt()
        return native { r.wait() }
    }

    /** The outcome if already known, without waiting (throws the failure if it failed). */
    fun poll(): Delivery? {
        val r = nativeReceipt()
        return ffiCall { r.tryResult() }
    }

    /** Releases the native object, if one was made. */
    @Synchronized
    override fun close() {
        closed = true
        made?.let { ffiCall { it.close() } }
        made = null
    }
}
