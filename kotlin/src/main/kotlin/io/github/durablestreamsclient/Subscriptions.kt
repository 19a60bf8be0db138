package io.github.durablestreamsclient

import io.github.durablestreamsclient.ffi.Subscriptions as FfiSubscriptions
import io.github.durablestreamsclient.ffi.Wake as FfiWake
import io.github.durablestreamsclient.ffi.WebhookVerifier as FfiVerifier
import io.github.durablestreamsclient.ffi.WorkJob as FfiJob
import io.github.durablestreamsclient.ffi.WorkQueue as FfiQueue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** How a [Subscriptions] handle is built: headers and parameters for every request, retries. */
typealias SubscriptionsOptions = io.github.durablestreamsclient.ffi.SubscriptionsOptions

/**
 * A subscription's configuration: exactly one of `wakeStream` (pull-wake) and `webhookUrl`
 * (webhook), at least one of `pattern` and `streams`, `leaseMs` from 1 000 to 600 000. Checked
 * before any request ([InvalidArgumentException]).
 */
typealias SubscriptionConfig = io.github.durablestreamsclient.ffi.SubscriptionConfig

/** A subscription as the server reports it, with its linked streams and their acked offsets. */
typealias Subscription = io.github.durablestreamsclient.ffi.Subscription

/** One linked stream of a [Subscription] and its cursor. */
typealias StreamLink = io.github.durablestreamsclient.ffi.StreamLink

/** Webhook signing metadata of a [Subscription]. */
typealias SigningInfo = io.github.durablestreamsclient.ffi.SigningInfo

/** What [Subscriptions.create] did: `created` is false when an identical one existed. */
typealias CreateSubscriptionResult = io.github.durablestreamsclient.ffi.CreateSubscriptionResult

/** The state of one stream in a [Wake]: acked offset, tail offset, whether work is pending. */
typealias WakeStream = io.github.durablestreamsclient.ffi.WakeStream

/** Progress to ack: a stream and the offset processed up to (inclusive). */
typealias StreamAck = io.github.durablestreamsclient.ffi.StreamAck

/** What an ack answered. */
typealias AckResult = io.github.durablestreamsclient.ffi.AckResult

/**
 * One delivery of a pull-wake worker: what one answer of the server held for one stream,
 * gathered whole. For a JSON stream
 * [messages][io.github.durablestreamsclient.ffi.WorkItem.messages] holds each message as its
 * own JSON text, otherwise `data` the bytes. For idempotent handling store `(stream, offset)`
 * with the handler's effects and skip a delivery whose `offset` is not past the stored one.
 * Every item ends at an offset to resume from and starts at its stream's acked offset; an item
 * read again after a crash may hold more than before (the same `startOffset`, the messages
 * handled before first): to skip exactly those, store its `startOffset` and number of messages
 * too.
 */
typealias WorkItem = io.github.durablestreamsclient.ffi.WorkItem

/** The `Subscription` acked offset of [path], or null when it is not linked. */
fun Subscription.ackedOffset(path: String): String? = streams.firstOrNull { it.path == path }?.ackedOffset

/** The body that finishes a webhook wake synchronously: answer 200 with it as `application/json`. */
val WEBHOOK_DONE: String = io.github.durablestreamsclient.ffi.webhookDone()

/**
 * A held wake: what [Subscriptions.claim] or [WebhookVerifier.verify] hands you. Its token
 * stays in the native layer and never appears in [toString]. Pass it to [Subscriptions.ack],
 * [Subscriptions.release] or [Subscriptions.callback].
 */
class Wake internal constructor(internal val ffi: FfiWake) {
    /** The subscription id. */
    val subscriptionId: String get() = ffi.subscriptionId()

    /** The wake id. */
    val wakeId: String get() = ffi.wakeId()

    /** The fencing generation (a newer claim has a higher one). */
    val generation: ULong get() = ffi.generation()

    /** The lease in milliseconds (claims only). */
    val leaseTtlMs: ULong? get() = ffi.leaseTtlMs()

    /** Where to call back (webhook deliveries only). */
    val callbackUrl: String? get() = ffi.callbackUrl()

    /** The streams of the wake, with their acked and tail offsets. */
    val streams: List<WakeStream> get() = ffi.streams()

    override fun toString(): String =
        "Wake(subscriptionId=$subscriptionId, wakeId=$wakeId, generation=$generation, token=<redacted>)"
}

/**
 * Subscriptions (PROTOCOL §6–7) under one stream root, the prefix under which the server's
 * streams live (e.g. `http://127.0.0.1:4437/v1/stream/`): durable cursors over many streams (a
 * glob `pattern` plus explicit `streams`) that wake workers through a wake stream (pull-wake) or
 * a webhook. Every operation is a suspend function; cancelling the caller aborts the request.
 *
 * Paths (streams, wake stream, pattern) are relative to the root. Refusals are typed:
 * [FencedException] (the lease is lost), [AlreadyClaimedException], [NoPendingWorkException],
 * [StreamExistsException] (409: another configuration under this id), [StreamNotFoundException].
 */
class Subscriptions internal constructor(internal val ffi: FfiSubscriptions) : AutoCloseable {
    /** A handle for the stream root [root]. */
    constructor(root: String, options: SubscriptionsOptions = SubscriptionsOptions()) :
        this(ffiCall { FfiSubscriptions(root, options) })

    /** The stream root URL (ends with `/`). */
    val root: String get() = ffi.root()

    /** The URL of the server's webhook signing JWK Set (for [WebhookVerifier]). */
    val jwksUrl: String get() = ffi.jwksUrl()

    /** A handle to the stream at [path] under the root. */
    fun stream(path: String, options: StreamOptions = StreamOptions()): DurableStream =
        DurableStream(root + path, options)

    /** Creates the subscription [id], or confirms an identical one (`created == false`). */
    suspend fun create(id: String, config: SubscriptionConfig): CreateSubscriptionResult =
        native { ffi.create(id, config) }

    /** The subscription [id] with its links and acked offsets. */
    suspend fun get(id: String): Subscription = native { ffi.get(id) }

    /** Deletes the subscription [id] (idempotent). */
    suspend fun delete(id: String) = native { ffi.delete(id) }

    /** Links explicit [streams] to [id] (at their current tails; idempotent). */
    suspend fun addStreams(id: String, streams: List<String>) = native { ffi.addStreams(id, streams) }

    /** Removes the explicit link of [path] (a matching glob link stays; idempotent). */
    suspend fun removeStream(id: String, path: String) = native { ffi.removeStream(id, path) }

    /** Claims the lease of pull-wake subscription [id] for [worker]. */
    suspend fun claim(id: String, worker: String): Wake = native { Wake(ffi.claim(id, worker)) }

    /**
     * Acks progress on a claimed wake; without [done] it only extends the lease (a heartbeat when
     * [acks] is empty). A stale wake fails with [FencedException] and advances nothing, unless
     * the request was retried after an attempt whose answer was lost (the message then says
     * so): that attempt may have landed.
     */
    suspend fun ack(wake: Wake, acks: List<StreamAck> = emptyList(), done: Boolean = false): AckResult =
        native { ffi.ack(wake.ffi, acks, done) }

    /** Answers a webhook wake asynchronously through its callback URL (same origin as the root). */
    suspend fun callback(wake: Wake, acks: List<StreamAck> = emptyList(), done: Boolean = false): AckResult =
        native { ffi.callback(wake.ffi, acks, done) }

    /** Gives a claimed wake back without acking; its work is woken again. */
    suspend fun release(wake: Wake) = native { ffi.release(wake.ffi) }

    /** A pull-wake worker named [worker] for subscription [id] (see [PullWakeWorker]). */
    fun worker(
        id: String,
        worker: String,
        wakeStream: String,
        fromOffset: String? = null,
        heartbeats: Boolean = true,
    ): PullWakeWorker = PullWakeWorker(this, id, worker, wakeStream, fromOffset, heartbeats)

    /** Releases the native handle. */
    override fun close() = ffi.close()

    override fun toString(): String = "Subscriptions($root)"
}

/**
 * A pull-wake worker: follows the wake stream live (from [fromOffset], or its tail), claims the
 * lease on every wake for its subscription (and once at start), reads each pending stream from
 * its acked offset, hands the messages over one answer of the server at a time, acks each one
 * once it is handled, heartbeats before the lease runs out, and finishes with `done`.
 *
 * Two forms: [run] with a suspend handler, and [jobs], a [Flow] of [WorkJob]s. A handler that
 * throws releases the wake without acking (the work is woken again after a pause of at least
 * 100 ms, longer while failures go on); a lost lease (`FENCED`)
 * drops the wake at once and acks nothing stale. Cancelling the collecting or running coroutine
 * is a graceful stop: no new delivery is handed over, an ack in flight lands, and a held lease
 * is released.
 *
 * Each message is processed exactly once in the normal case (one lease holder, fencing); it is
 * *at least once* when a worker handles a delivery and dies (or loses its lease) before the ack
 * lands: the next holder reads again from the last acked offset. Make handlers idempotent with
 * `WorkItem.stream` and `WorkItem.offset`.
 */
class PullWakeWorker internal constructor(
    private val subs: Subscriptions,
    /** The subscription id. */
    val id: String,
    /** This worker's name (the lease holder the server records). */
    val name: String,
    /** The wake stream, relative to the stream root. */
    val wakeStream: String,
    /** The wake-stream offset to follow from (a value [run] returned); its tail when null. */
    val fromOffset: String? = null,
    private val heartbeats: Boolean = true,
) {
    private fun start(): FfiQueue = ffiCall { subs.ffi.jobs(id, name, wakeStream, fromOffset, heartbeats) }

    /**
     * Works the subscription until [until] returns (by default: until the calling coroutine is
     * cancelled), calling [handler] with each delivery; returns the wake-stream offset to resume
     * from (pass it as `fromOffset` next time). A handler exception releases the wake without
     * acking it and the worker goes on; cancellation stops gracefully and is rethrown.
     */
    suspend fun run(
        until: suspend () -> Unit = { awaitCancellation() },
        handler: suspend (WorkItem) -> Unit,
    ): String? {
        val queue = start()
        var offset: String? = null
        try {
            coroutineScope {
                val stopper = launch {
                    until()
                    queue.requestStop()
                }
                try {
                    while (true) {
                        val job = native { queue.next() } ?: break
                        answer(job, swallow = true) { handler(job.item()) }
                        job.close()
                    }
                } finally {
                    stopper.cancel()
                }
            }
        } finally {
            offset = withContext(NonCancellable) { native { queue.stop() } }
            queue.close()
        }
        return offset
    }

    /**
     * The deliveries as a [Flow] of [WorkJob]s (cold: each collection starts a worker). When the
     * collector's block returns, a job it did not answer is acked; when it throws, the job fails
     * (the wake is released) and the flow ends with the exception. Call [WorkJob.fail] to let one
     * delivery be woken again and go on. Ending the collection (cancellation, `take`, `first`)
     * stops the worker gracefully and releases what it holds: a job not answered by then is not
     * acked (answer it with [WorkJob.ack] inside the block when you use `take` or `first`).
     */
    fun jobs(): Flow<WorkJob> = flow {
        val queue = start()
        try {
            while (true) {
                val job = native { queue.next() } ?: break
                answer(job, swallow = false) { emit(WorkJob(job)) }
            }
        } finally {
            withContext(NonCancellable) { native { queue.stop() } }
            queue.close()
        }
    }

    /**
     * Runs [block] for [job], then acks it (unless it was answered already). An exception fails
     * it (released, woken again); [swallow] keeps the worker going after an ordinary exception.
     */
    private suspend inline fun answer(job: FfiJob, swallow: Boolean, block: () -> Unit) {
        try {
            block()
            job.ack()
        } catch (e: CancellationException) {
            job.fail("cancelled")
            throw e
        } catch (e: Exception) {
            job.fail(e.toString())
            if (!swallow) throw e
        } catch (e: Throwable) {
            job.fail(e.toString())
            throw e
        }
    }
}

/** One delivery of [PullWakeWorker.jobs]: handled ([ack]) or not ([fail]); the first answer counts. */
class WorkJob internal constructor(private val ffi: FfiJob) {
    /** The messages. */
    val item: WorkItem = ffi.item()

    /** Handled: the worker acks it. */
    fun ack() = ffi.ack()

    /** Not handled: the worker releases the wake without acking; it is woken again. */
    fun fail(reason: String) = ffi.fail(reason)

    override fun toString(): String = "WorkJob(stream=${item.stream}, offset=${item.offset})"
}

/**
 * Verifies signed webhook deliveries, framework-agnostic: give it the request headers (or the
 * `Webhook-Signature` value) and the raw body bytes, get a verified [Wake]. Keys come from the
 * server's JWK Set ([Subscriptions.jwksUrl]; fetched on first use, cached, fetched again once
 * for an unknown `kid`); timestamps outside [replayWindowMs] (5 minutes by default) are refused.
 * A failed check throws [InvalidSignatureException] whose `check` names it (`missing_header`,
 * `malformed_header`, `timestamp_out_of_window`, `unknown_key`, `bad_signature`, ...).
 */
class WebhookVerifier internal constructor(private val ffi: FfiVerifier) : AutoCloseable {
    /** A verifier for the JWK Set at [jwksUrl]. */
    constructor(jwksUrl: String, replayWindowMs: Long? = null) :
        this(ffiCall { FfiVerifier(jwksUrl, replayWindowMs?.let { require(it >= 0) { "replayWindowMs must not be negative" }; it.toULong() }) })

    /** Verifies a delivery given its `Webhook-Signature` header value (null when absent). */
    suspend fun verify(signature: String?, body: ByteArray, nowMs: Long? = null): Wake =
        native { Wake(ffi.verify(signature, body, nowMs?.coerceAtLeast(0)?.toULong())) }

    /** Verifies a delivery given its headers (names compared case-insensitively). */
    suspend fun verify(headers: Map<String, List<String>>, body: ByteArray, nowMs: Long? = null): Wake =
        verify(
            headers.entries.firstOrNull { it.key.equals("Webhook-Signature", ignoreCase = true) }?.value?.firstOrNull(),
            body,
            nowMs,
        )

    /** Releases the native verifier. */
    override fun close() = ffi.close()
}
