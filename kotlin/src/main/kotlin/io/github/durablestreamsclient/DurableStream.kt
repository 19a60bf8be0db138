package io.github.durablestreamsclient

import io.github.durablestreamsclient.ffi.ChunkSource
import io.github.durablestreamsclient.ffi.DurableStream as FfiStream
import io.github.durablestreamsclient.ffi.connect as ffiConnect
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

/**
 * A handle to one stream URL. Building it does no I/O; every operation is a suspend function
 * that runs on the client's own threads, and cancelling the calling coroutine aborts the request.
 *
 * ```
 * DurableStream("http://127.0.0.1:4437/v1/stream/events").use { stream ->
 *     stream.create(CreateOptions(contentType = "application/json"))
 *     stream.append("""{"type":"started"}""")
 *     stream.stream(ReadOptions(live = LiveMode.OFF)).use { println(it.json()) }
 * }
 * ```
 *
 * [close] releases the native handle (it does not close the stream: that is [closeStream]).
 */
class DurableStream internal constructor(internal val ffi: FfiStream) : AutoCloseable {
    /** A handle to [url] with the given [options]. */
    constructor(url: String, options: StreamOptions = StreamOptions()) : this(ffiCall { FfiStream(url, options) })

    /** The stream URL. */
    val url: String get() = ffi.url()

    /** The content type, once known (given, or learned by create, head, connect or a read). */
    val contentType: String? get() = ffi.contentType()

    /** Creates the stream; an identical existing stream gives `created == false`. */
    suspend fun create(options: CreateOptions = CreateOptions()): CreateResult =
        native { ffi.create(options) }

    /** Creates the stream with this content type. */
    suspend fun create(contentType: String): CreateResult = create(CreateOptions(contentType = contentType))

    /** The stream's metadata; throws [StreamNotFoundException] if it does not exist. */
    suspend fun head(): HeadResult = native { ffi.head() }

    /** Whether the stream exists. */
    suspend fun exists(): Boolean = native { ffi.exists() }

    /** Deletes the stream. */
    suspend fun delete() = native { ffi.delete() }

    /** Appends one message (one JSON value on a JSON stream). */
    suspend fun append(data: ByteArray, options: AppendOptions = AppendOptions()): AppendResult =
        native { ffi.append(data, options) }

    /** Appends one message given as UTF-8 text (one JSON value on a JSON stream). */
    suspend fun append(text: String, options: AppendOptions = AppendOptions()): AppendResult =
        native { ffi.append(text.encodeToByteArray(), options) }

    /** Appends several messages in one request. */
    suspend fun appendBatch(messages: List<ByteArray>, options: AppendOptions = AppendOptions()): AppendResult =
        native { ffi.appendBatch(messages, options) }

    /**
     * Appends a body of unknown length as one streamed request (the reference's `appendStream`):
     * the chunks [source] emits, sent as they come, as raw bytes. On a JSON stream they must
     * together make one JSON value or one array of messages.
     *
     * The flow is collected in the calling coroutine's context, at most one chunk ahead of the
     * connection, so memory stays bounded whatever its length. The request is never retried (a
     * flow cannot be replayed). If [source] throws, the request is aborted before its end, so
     * nothing of it is stored, and that exception is thrown here as it was.
     */
    suspend fun appendStream(source: Flow<ByteArray>, options: AppendOptions = AppendOptions()): AppendResult =
        coroutineScope {
            val channel = Channel<ByteArray>(Channel.RENDEZVOUS)
            val collector = launch {
                try {
                    source.collect { channel.send(it) }
                    channel.close()
                } catch (e: Throwable) {
                    channel.close(e)
                    if (e is CancellationException) throw e
                }
            }
            // A collector cancelled before it started must still end the pulls.
            collector.invokeOnCompletion { channel.close(it) }
            val chunks = FlowChunks(channel)
            try {
                native { ffi.appendStream(chunks, options) }
            } catch (e: DurableStreamException) {
                throw chunks.failure ?: e
            } finally {
                collector.cancel()
            }
        }

    /**
     * [appendStream] of text chunks, each sent as UTF-8. (A name of its own: an overload on the
     * flow's element type would make `appendStream(flow { ... })` ambiguous.)
     */
    suspend fun appendTextStream(source: Flow<String>, options: AppendOptions = AppendOptions()): AppendResult =
        appendStream(source.map { it.encodeToByteArray() }, options)

    /**
     * Closes the stream for writing, optionally with a last message, and returns its final
     * offset. Closing a closed stream again succeeds.
     */
    suspend fun closeStream(finalMessage: ByteArray? = null, contentType: String? = null): String? =
        native { ffi.closeStream(finalMessage, contentType) }

    /**
     * Starts a read; the first request is sent before this returns (a missing stream fails
     * here). Consume the [StreamResponse] once: as a [kotlinx.coroutines.flow.Flow] of batches
     * or all at once.
     */
    suspend fun stream(options: ReadOptions = ReadOptions()): StreamResponse =
        native { StreamResponse(ffi.stream(options)) }

    /** An idempotent producer writing to this stream under [producerId]. Sends nothing yet. */
    fun producer(producerId: String, options: ProducerOptions = ProducerOptions()): IdempotentProducer =
        IdempotentProducer(ffiCall { ffi.producer(producerId, options) })

    /** Releases the native handle. */
    override fun close() = ffiCall { ffi.close() }

    override fun toString(): String = "DurableStream($url)"

    /** The chunks of a streamed append, pulled by the native side on one of its blocking threads. */
    private class FlowChunks(private val channel: ReceiveChannel<ByteArray>) : ChunkSource {
        /** What the flow threw, once it has. */
        @Volatile
        var failure: Throwable? = null

        override fun nextChunk(): ByteArray? {
            val next = runBlocking { channel.receiveCatching() }
            if (next.isSuccess) return next.getOrThrow()
            val cause = next.exceptionOrNull() ?: return null
            failure = cause
            throw IllegalStateException("the flow of appendStream() threw ${cause.javaClass.name}: ${cause.message}")
        }
    }

    companion object {
        /** A handle to [url] after checking that the stream exists (learning its content type). */
        suspend fun connect(url: String, options: StreamOptions = StreamOptions()): DurableStream =
            native { DurableStream(ffiConnect(url, options)) }
    }
}
