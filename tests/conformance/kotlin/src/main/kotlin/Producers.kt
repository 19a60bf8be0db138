// The idempotent-* commands: producers cached per (path, producer id, epoch) as the reference
// adapters do, and validation of producer options.

import io.github.durablestreamsclient.DurableStream
import io.github.durablestreamsclient.InvalidArgumentException
import io.github.durablestreamsclient.IdempotentProducer
import io.github.durablestreamsclient.ProducerOptions
import io.github.durablestreamsclient.StreamOptions
import io.github.durablestreamsclient.validate
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.contentOrNull

class Producers {
    /** The features the producer side adds to `init`. */
    val features = listOf("batchItems", "strictZeroValidation")

    private class Entry(val stream: DurableStream, val producer: IdempotentProducer)

    private val cache = HashMap<Triple<String, String, Long>, Entry>()

    fun reset() {
        cache.values.forEach { it.producer.close(); it.stream.close() }
        cache.clear()
    }

    private fun key(cmd: JsonObject, url: String) =
        Triple(url, cmd.str("producerId") ?: throw Refused("INVALID_ARGUMENT", "missing producerId"), cmd.long("epoch") ?: 0)

    private fun epoch(cmd: JsonObject): ULong {
        val e = cmd.long("epoch") ?: 0
        if (e < 0) throw Refused("INVALID_ARGUMENT", "epoch must not be negative, got $e")
        return e.toULong()
    }

    private fun build(cmd: JsonObject, url: String, options: ProducerOptions): Entry {
        val stream = DurableStream(url, StreamOptions(headers = cmd.map("headers")))
        val producer = try {
            stream.producer(cmd.str("producerId")!!, options)
        } catch (e: Exception) {
            stream.close()
            throw e
        }
        return Entry(stream, producer)
    }

    private fun cached(cmd: JsonObject, url: String): Entry = cache.getOrPut(key(cmd, url)) {
        build(cmd, url, ProducerOptions(epoch = epoch(cmd), autoClaim = cmd.bool("autoClaim") ?: false, lingerMs = 0uL, maxInFlight = 1u))
    }

    suspend fun append(cmd: JsonObject, url: String): MutableMap<String, JsonElement> {
        val p = cached(cmd, url).producer
        val receipt = p.append(cmd.str("data") ?: "")
        p.flush()
        val d = receipt.await()
        val out = mutableMapOf<String, JsonElement>(
            "status" to JsonPrimitive(200),
            "duplicate" to JsonPrimitive(d.duplicate),
            "producerSeq" to JsonPrimitive(d.seq.toLong()),
        )
        d.offset?.let { out["offset"] = JsonPrimitive(it) }
        return out
    }

    suspend fun appendBatch(cmd: JsonObject, url: String): MutableMap<String, JsonElement> {
        val items = (cmd["items"] as? JsonArray)?.map { (it as? JsonPrimitive)?.contentOrNull ?: it.toString() }
            ?: throw Refused("INVALID_ARGUMENT", "missing items")
        val inFlight = cmd.long("maxInFlight") ?: 1
        val base = ProducerOptions(epoch = epoch(cmd), autoClaim = cmd.bool("autoClaim") ?: false)
        // Several in flight: many one-message batches that must pass each other's 409s.
        val options = if (inFlight > 1) {
            base.copy(maxBatchBytes = 1uL, lingerMs = 0uL, maxInFlight = inFlight.toUInt())
        } else {
            base.copy(lingerMs = 1000uL)
        }
        val e = build(cmd, url, options)
        try {
            val receipts = items.map { e.producer.append(it) }
            e.producer.flush()
            receipts.forEach { it.await() }
            e.producer.detach()
        } finally {
            e.producer.close(); e.stream.close()
        }
        return mutableMapOf("status" to JsonPrimitive(200))
    }

    suspend fun close(cmd: JsonObject, url: String): MutableMap<String, JsonElement> {
        val final = cached(cmd, url).producer.closeStream(cmd.str("data")?.encodeToByteArray())
        val out = mutableMapOf<String, JsonElement>("status" to JsonPrimitive(200))
        final?.let { out["finalOffset"] = JsonPrimitive(it) }
        return out
    }

    suspend fun detach(cmd: JsonObject, url: String): MutableMap<String, JsonElement> {
        cache.remove(key(cmd, url))?.let {
            try {
                it.producer.detach()
            } finally {
                it.producer.close(); it.stream.close()
            }
        }
        return mutableMapOf("status" to JsonPrimitive(200))
    }

    /** Validates producer options; messages name the options as the suite spells them. */
    fun validate(target: JsonObject) {
        val bytes = target.long("maxBatchBytes")
        val items = target.long("maxBatchItems")
        if (bytes != null && bytes < 0) throw Refused("INVALID_ARGUMENT", "maxBatchBytes must be greater than 0, got $bytes")
        if (items != null && items < 0) throw Refused("INVALID_ARGUMENT", "maxBatchItems must be greater than 0, got $items")
        val options = ProducerOptions(
            epoch = epoch(target),
            maxBatchBytes = bytes?.toULong() ?: ProducerOptions().maxBatchBytes,
            maxBatchMessages = items?.toULong(),
        )
        try {
            options.validate(target.str("producerId") ?: "validate")
        } catch (e: InvalidArgumentException) {
            // The core's message already names each option in both spellings.
            throw Refused("INVALID_ARGUMENT", e.reason)
        }
    }
}
