package io.github.durablestreamsclient

import io.github.durablestreamsclient.ffi.JsonPick
import io.github.durablestreamsclient.ffi.StreamResponse as FfiResponse
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/**
 * An open read of a stream. Consume it one way, once: batch by batch ([nextBatch] and its text
 * and JSON twins, or the flows [batches], [textBatches], [jsonBatches], [jsonArrayBatches]; each
 * batch carries the offset to resume from) or everything up to the tail ([bytes], [text],
 * [json], [jsonArrays]).
 *
 * A live read's flow ends when the stream is closed and fully read, or when [cancel] is called;
 * cancelling the collecting coroutine cancels the read. [close] cancels and releases it.
 *
 * [offset] moves past a batch or a whole read's data only once that data is back in the calling
 * coroutine, so a coroutine cancelled (or a whole read failing) after the native read got data it
 * never returned leaves [offset] before that data: a read resumed from [offset] gets it again.
 */
class StreamResponse internal constructor(private val ffi: FfiResponse) : AutoCloseable {
    init {
        // Before any read: from here the native position moves only through [got].
        ffi.holdPosition()
    }

    /** The stream's content type. */
    val contentType: String? get() = ffi.contentType()

    /** Whether the body is read as JSON. */
    val isJson: Boolean get() = ffi.isJson()

    /**
     * The offset after the last batch delivered (the start offset before any): where a later
     * read resumes. Data a cancelled or failed call read but never returned is not counted.
     */
    val offset: String get() = ffi.offset()

    /** The last cursor the server sent. */
    val cursor: String? get() = ffi.cursor()

    /** Whether the last batch delivered reached the tail. */
    val upToDate: Boolean get() = ffi.upToDate()

    /** Whether the stream is closed and everything was delivered. */
    val streamClosed: Boolean get() = ffi.streamClosed()

    /**
     * The next batch of bytes, or null once the read is over (at the tail when not live, at the
     * end of a closed stream, or after [cancel]). Cancelling the call ends the read.
     */
    suspend fun nextBatch(): ByteBatch? = got(native { ffi.nextBatch() })

    /** The next batch as text (UTF-8 decoded across batch boundaries), or null at the end. */
    suspend fun nextTextBatch(): TextBatch? = got(native { ffi.nextTextBatch() })

    /** The next batch of JSON messages, each message as its own JSON text, or null at the end. */
    suspend fun nextJsonBatch(): JsonBatch? = got(native { ffi.nextJsonBatch() })

    /** The batches of bytes, one per response (or SSE event group), possibly empty. */
    fun batches(): Flow<ByteBatch> = pull { ffi.nextBatch() }

    /** The batches as text. */
    fun textBatches(): Flow<TextBatch> = pull { ffi.nextTextBatch() }

    /** The batches of JSON messages. */
    fun jsonBatches(): Flow<JsonBatch> = pull { ffi.nextJsonBatch() }

    /**
     * The next batch of JSON messages as array texts (`[m1,m2,...]`, every message checked), or
     * null at the end: parse each text once with your JSON library (Jackson's `readTree`,
     * kotlinx.serialization's `parseToJsonElement`), far cheaper than a parse per message.
     */
    suspend fun nextJsonArrayBatch(): JsonArrayBatch? = got(native { ffi.nextJsonArrayBatch() })

    /** The batches of JSON messages as array texts (see [nextJsonArrayBatch]). */
    fun jsonArrayBatches(): Flow<JsonArrayBatch> = pull { ffi.nextJsonArrayBatch() }

    /**
     * The next batch of the value of the top-level member [field] of each JSON message, as array
     * texts (`[v1,v2,...]`, `null` where a message has no such member or is not an object), or
     * null at the end. Every message is still checked whole; only that value reaches your JSON
     * library. The member of the first call holds for the whole read.
     */
    suspend fun nextJsonArrayBatch(field: String): JsonArrayBatch? =
        got(native { ffi.nextJsonPickedArrayBatch(JsonPick.Value(field)) })

    /**
     * The next batch of objects of the top-level members [fields] of each JSON message, as array
     * texts (`null` for a message that is not an object), or null at the end; as
     * [nextJsonArrayBatch] of one field otherwise.
     */
    suspend fun nextJsonArrayBatch(fields: List<String>): JsonArrayBatch? =
        got(native { ffi.nextJsonPickedArrayBatch(JsonPick.Members(fields)) })

    /** The batches of the value of [field] in each JSON message (see [nextJsonArrayBatch]). */
    fun jsonArrayBatches(field: String): Flow<JsonArrayBatch> =
        pull { ffi.nextJsonPickedArrayBatch(JsonPick.Value(field)) }

    /** The batches of objects of [fields] of each JSON message (see [nextJsonArrayBatch]). */
    fun jsonArrayBatches(fields: List<String>): Flow<JsonArrayBatch> =
        pull { ffi.nextJsonPickedArrayBatch(JsonPick.Members(fields)) }

    /**
     * The JSON messages one by one. [offset] moves past a batch as its last message is emitted,
     * so a collector that stops within a batch resumes from before it.
     */
    fun jsonItems(): Flow<String> = flow {
        try {
            while (true) {
                val b = native { ffi.nextJsonBatch() } ?: break
                if (b.items.isEmpty()) got(b)
                b.items.forEachIndexed { i, item -> emit(if (i == b.items.lastIndex) got(item) else item) }
            }
        } finally {
            ffi.cancel()
        }
    }

    /** Everything up to the tail (or the end of a closed stream). */
    suspend fun bytes(): ByteArray = got(native { ffi.bytes() })

    /** Everything up to the tail, as text. */
    suspend fun text(): String = got(native { ffi.text() })

    /** Every JSON message up to the tail, each as its own JSON text. */
    suspend fun json(): List<String> = got(native { ffi.json() })

    /**
     * Every JSON message up to the tail, as the texts of JSON arrays (`[m1,m2,...]`, each at most
     * 16 MiB unless one message is larger; every message checked): parse each with your JSON
     * library at once. With Jackson, one `readTree` per array instead of one per message text
     * read a catch-up of 1,000,000 small messages about a third faster (BENCHMARKS.md, round 9).
     */
    suspend fun jsonArrays(): List<String> = got(native { ffi.jsonArrays() })

    /**
     * The value of the top-level member [field] of every JSON message up to the tail, as array
     * texts (`[v1,v2,...]`, as few as fit in 16 MiB each; `null` where a message has no such
     * member or is not an object): only that value of each message reaches your JSON library,
     * and every message is still checked whole.
     */
    suspend fun jsonArrays(field: String): List<String> = got(native { ffi.jsonPickedArrays(JsonPick.Value(field)) })

    /**
     * Objects of the top-level members [fields] of every JSON message up to the tail, as array
     * texts (`null` for a message that is not an object); as [jsonArrays] of one field otherwise.
     */
    suspend fun jsonArrays(fields: List<String>): List<String> =
        got(native { ffi.jsonPickedArrays(JsonPick.Members(fields)) })

    /** Stops the read: a flow in progress ends. */
    fun cancel() = ffiCall { ffi.cancel() }

    /** Cancels the read and releases the native object. */
    override fun close() {
        ffi.cancel()
        ffi.close()
    }

    /**
     * [data] of this read is back in the calling coroutine: the native position (held since the
     * response was made) moves past it. A result the generated code dropped for a cancelled
     * coroutine, or a whole read that failed midway, never gets here, so [offset] stays before
     * it.
     */
    private fun <T> got(data: T): T {
        ffiCall { ffi.releasePosition() }
        return data
    }

    private fun <T : Any> pull(next: suspend () -> T?): Flow<T> = flow {
        try {
            // Released just before the collector gets the batch.
            while (true) emit(got(native { next() } ?: break))
        } finally {
            // A collector that stops early (take, first, an exception) also stops the read.
            ffi.cancel()
        }
    }
}
