// Conformance adapter for the Kotlin package: one JSON command per line on stdin, one JSON
// result per line on stdout (logs on stderr). It only translates: every rule (validation,
// retries, parsing, batching) comes from the library.

import io.github.durablestreamsclient.AppendOptions
import io.github.durablestreamsclient.CreateOptions
import io.github.durablestreamsclient.DurableStream
import io.github.durablestreamsclient.DurableStreamException
import io.github.durablestreamsclient.ProducerSessionConflictException
import io.github.durablestreamsclient.SequenceGapException
import io.github.durablestreamsclient.StaleEpochException
import io.github.durablestreamsclient.RequestTimeoutException
import io.github.durablestreamsclient.NetworkException
import io.github.durablestreamsclient.InvalidArgumentException
import io.github.durablestreamsclient.ParseException
import io.github.durablestreamsclient.HttpStatusException
import io.github.durablestreamsclient.StreamClosedException
import io.github.durablestreamsclient.ConflictException
import io.github.durablestreamsclient.StreamExistsException
import io.github.durablestreamsclient.StreamNotFoundException
import io.github.durablestreamsclient.LiveMode
import io.github.durablestreamsclient.ReadOptions
import io.github.durablestreamsclient.RetryOptions
import io.github.durablestreamsclient.StreamOptions
import io.github.durablestreamsclient.StreamResponse
import io.github.durablestreamsclient.validate
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.booleanOrNull
import kotlinx.serialization.json.buildJsonObject
import kotlinx.serialization.json.contentOrNull
import kotlinx.serialization.json.doubleOrNull
import kotlinx.serialization.json.longOrNull
import kotlinx.serialization.json.put
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.util.Base64

/** A command the adapter refuses before calling the library. */
class Refused(val code: String, message: String) : Exception(message)

/** A header or parameter registered with set-dynamic-header / set-dynamic-param. */
class Dynamic(private val kind: String, private val token: String?) {
    private var counter = 0L
    fun next(): String = when (kind) {
        "counter" -> (++counter).toString()
        "timestamp" -> System.currentTimeMillis().toString()
        else -> token ?: ""
    }
}

fun JsonObject.str(key: String): String? = (this[key] as? JsonPrimitive)?.contentOrNull
fun JsonObject.bool(key: String): Boolean? = (this[key] as? JsonPrimitive)?.booleanOrNull
fun JsonObject.long(key: String): Long? = (this[key] as? JsonPrimitive)?.longOrNull
fun JsonObject.double(key: String): Double? = (this[key] as? JsonPrimitive)?.doubleOrNull
fun JsonObject.map(key: String): Map<String, String> =
    (this[key] as? JsonObject)?.mapValues { (_, v) -> (v as? JsonPrimitive)?.contentOrNull ?: v.toString() } ?: emptyMap()

class Adapter {
    private var serverUrl = ""
    private val contentTypes = HashMap<String, String>()
    private val dynHeaders = LinkedHashMap<String, Dynamic>()
    private val dynParams = LinkedHashMap<String, Dynamic>()
    private val producers = Producers()

    private fun path(cmd: JsonObject) = cmd.str("path") ?: throw Refused("INVALID_ARGUMENT", "missing path")
    private fun url(path: String) = serverUrl + path

    /** A handle for [path] with its known content type and the given headers and parameters. */
    private fun handle(
        path: String,
        headers: Map<String, String> = emptyMap(),
        params: Map<String, String> = emptyMap(),
        appendRetry: RetryOptions? = null,
    ) = DurableStream(
        url(path),
        StreamOptions(contentType = contentTypes[path], headers = headers, params = params, appendRetry = appendRetry),
    )

    /** The dynamic values for one command (each evaluated once), then the command's own headers. */
    private fun dynamic(cmd: JsonObject): Pair<Map<String, String>, Map<String, String>> {
        val headers = dynHeaders.mapValues { it.value.next() } + cmd.map("headers")
        val params = dynParams.mapValues { it.value.next() }
        return headers to params
    }

    private fun sent(out: MutableMap<String, JsonElement>, headers: Map<String, String>, params: Map<String, String>) {
        if (headers.isNotEmpty()) out["headersSent"] = JsonObject(headers.mapValues { JsonPrimitive(it.value) })
        if (params.isNotEmpty()) out["paramsSent"] = JsonObject(params.mapValues { JsonPrimitive(it.value) })
    }

    suspend fun dispatch(type: String, cmd: JsonObject): MutableMap<String, JsonElement> = when (type) {
        "init" -> init(cmd)
        "create" -> create(cmd)
        "connect" -> connect(cmd)
        "append" -> append(cmd)
        "head" -> head(cmd)
        "delete" -> delete(cmd)
        "close" -> close(cmd)
        "read" -> read(cmd)
        "set-dynamic-header", "set-dynamic-param" -> {
            val name = cmd.str("name") ?: throw Refused("INVALID_ARGUMENT", "missing name")
            val kind = cmd.str("valueType")
            if (kind !in setOf("counter", "timestamp", "token")) throw Refused("INVALID_ARGUMENT", "unknown valueType $kind")
            (if (type == "set-dynamic-header") dynHeaders else dynParams)[name] = Dynamic(kind!!, cmd.str("initialValue"))
            mutableMapOf()
        }
        "clear-dynamic" -> {
            dynHeaders.clear(); dynParams.clear(); mutableMapOf()
        }
        "validate" -> validate(cmd)
        "idempotent-append" -> producers.append(cmd, url(path(cmd)))
        "idempotent-append-batch" -> producers.appendBatch(cmd, url(path(cmd)))
        "idempotent-close" -> producers.close(cmd, url(path(cmd)))
        "idempotent-detach" -> producers.detach(cmd, url(path(cmd)))
        else -> throw Refused("NOT_SUPPORTED", "unsupported command $type")
    }

    private suspend fun init(cmd: JsonObject): MutableMap<String, JsonElement> {
        serverUrl = (cmd.str("serverUrl") ?: throw Refused("INVALID_ARGUMENT", "missing serverUrl")).trimEnd('/')
        contentTypes.clear(); dynHeaders.clear(); dynParams.clear()
        producers.reset()
        return buildJsonObject {
            put("clientName", "durable-streams-client (kotlin)")
            put("clientVersion", "0.1.0")
            put("features", buildJsonObject {
                for (f in listOf("batching", "sse", "longPoll", "auto", "streaming", "dynamicHeaders", "retryOptions")) put(f, true)
                for (f in producers.features) put(f, true)
            })
        }.toMutableMap()
    }

    private suspend fun create(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        val ct = cmd.str("contentType") ?: "application/octet-stream"
        val r = handle(path).use {
            it.create(
                CreateOptions(
                    contentType = ct,
                    ttlSeconds = cmd.long("ttlSeconds")?.toULong(),
                    expiresAt = cmd.str("expiresAt"),
                    closed = cmd.bool("closed") ?: false,
                    body = cmd.str("data")?.encodeToByteArray(),
                    headers = cmd.map("headers"),
                ),
            )
        }
        contentTypes[path] = r.contentType ?: ct
        val out = mutableMapOf<String, JsonElement>("status" to JsonPrimitive(if (r.created) 201 else 200))
        r.nextOffset?.let { out["offset"] = JsonPrimitive(it) }
        return out
    }

    private suspend fun connect(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        val h = DurableStream(url(path), StreamOptions(headers = cmd.map("headers"))).use { it.head() }
        h.contentType?.let { contentTypes[path] = it }
        val out = mutableMapOf<String, JsonElement>("status" to JsonPrimitive(200))
        h.nextOffset?.let { out["offset"] = JsonPrimitive(it) }
        return out
    }

    private suspend fun append(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        val data = cmd.str("data") ?: ""
        val body = if (cmd.bool("binary") == true) {
            try {
                Base64.getDecoder().decode(data)
            } catch (e: IllegalArgumentException) {
                throw Refused("INVALID_ARGUMENT", "binary data is not base64: ${e.message}")
            }
        } else {
            data.encodeToByteArray()
        }
        val (headers, params) = dynamic(cmd)
        val seq = cmd["seq"]?.let { (it as? JsonPrimitive)?.contentOrNull ?: it.toString() }
        // The reference client retries appends on 5xx/429/network errors; the library leaves
        // that to an explicit opt-in (a retried plain append can be stored twice).
        val r = handle(path, headers, params, RetryOptions(maxRetries = 10)).use { s ->
            val r = s.append(body, AppendOptions(seq = seq))
            s.contentType?.let { contentTypes[path] = it }
            r
        }
        val out = mutableMapOf<String, JsonElement>("status" to JsonPrimitive(200))
        r.nextOffset?.let { out["offset"] = JsonPrimitive(it) }
        sent(out, headers, params)
        return out
    }

    private suspend fun head(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        val h = DurableStream(url(path), StreamOptions(headers = cmd.map("headers"))).use { it.head() }
        h.contentType?.let { contentTypes[path] = it }
        val out = mutableMapOf<String, JsonElement>("status" to JsonPrimitive(200), "streamClosed" to JsonPrimitive(h.closed))
        h.nextOffset?.let { out["offset"] = JsonPrimitive(it) }
        h.contentType?.let { out["contentType"] = JsonPrimitive(it) }
        h.ttlSeconds?.let { out["ttlSeconds"] = JsonPrimitive(it.toLong()) }
        h.expiresAt?.let { out["expiresAt"] = JsonPrimitive(it) }
        return out
    }

    private suspend fun delete(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        DurableStream(url(path), StreamOptions(headers = cmd.map("headers"))).use { it.delete() }
        contentTypes.remove(path)
        return mutableMapOf("status" to JsonPrimitive(200))
    }

    private suspend fun close(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        val final = handle(path).use { it.closeStream(cmd.str("data")?.encodeToByteArray(), cmd.str("contentType")) }
        val out = mutableMapOf<String, JsonElement>("status" to JsonPrimitive(200))
        final?.let { out["finalOffset"] = JsonPrimitive(it) }
        return out
    }

    private suspend fun read(cmd: JsonObject): MutableMap<String, JsonElement> {
        val path = path(cmd)
        val live = when (val l = cmd["live"]) {
            null, JsonPrimitive(false) -> LiveMode.OFF
            JsonPrimitive(true) -> LiveMode.AUTO
            JsonPrimitive("long-poll") -> LiveMode.LONG_POLL
            JsonPrimitive("sse") -> LiveMode.SSE
            else -> if (l.toString() == "null") LiveMode.OFF else throw Refused("INVALID_ARGUMENT", "unknown live mode $l")
        }
        val timeoutMs = cmd.long("timeoutMs") ?: 5000
        val maxChunks = cmd.long("maxChunks") ?: 100
        val waitUpToDate = cmd.bool("waitForUpToDate") ?: false
        val (headers, params) = dynamic(cmd)
        val deadline = System.nanoTime() + timeoutMs * 1_000_000
        // The library retries reads without limit by default; the suite expects a read to give
        // up once transient errors persist.
        val options = ReadOptions(
            offset = cmd.str("offset") ?: "-1",
            live = live,
            retry = RetryOptions(maxRetries = 10),
        )
        val chunks = ArrayList<JsonElement>()
        var timedOut = false
        handle(path, headers, params).use { s ->
            s.stream(options).use { resp ->
                resp.contentType?.let { contentTypes[path] = it }
                val next = puller(resp)
                while (true) {
                    val left = (deadline - System.nanoTime()) / 1_000_000
                    // Wrapped in a list so that "timed out" (null) differs from "read over" (empty).
                    val step = if (left <= 0) null else withTimeoutOrNull(left) { listOfNotNull(next()) }
                    if (step == null) {
                        timedOut = true
                        break
                    }
                    val batch = step.firstOrNull() ?: break
                    batch.chunk?.let { chunks += it.toJson(batch.offset) }
                    if (batch.closed || chunks.size >= maxChunks || (waitUpToDate && batch.upToDate)) break
                }
                resp.cancel()
                val out = mutableMapOf<String, JsonElement>(
                    "status" to JsonPrimitive(if (timedOut && chunks.isEmpty() && live != LiveMode.OFF) 204 else 200),
                    "chunks" to JsonArray(chunks),
                    "offset" to JsonPrimitive(resp.offset),
                    "upToDate" to JsonPrimitive(resp.upToDate || timedOut),
                    "streamClosed" to JsonPrimitive(resp.streamClosed),
                )
                resp.cursor?.let { out["cursor"] = JsonPrimitive(it) }
                sent(out, headers, params)
                return out
            }
        }
    }

    private fun validate(cmd: JsonObject): MutableMap<String, JsonElement> {
        val target = cmd["target"] as? JsonObject ?: throw Refused("INVALID_ARGUMENT", "missing target")
        when (target.str("target")) {
            "retry-options" -> {
                val d = RetryOptions()
                RetryOptions(
                    initialDelayMs = target.double("initialDelayMs") ?: d.initialDelayMs,
                    maxDelayMs = target.double("maxDelayMs") ?: d.maxDelayMs,
                    multiplier = target.double("multiplier") ?: d.multiplier,
                    maxRetries = target.long("maxRetries"),
                ).validate()
            }
            "idempotent-producer" -> producers.validate(target)
            else -> throw Refused("NOT_SUPPORTED", "unsupported validation target ${target.str("target")}")
        }
        return mutableMapOf()
    }
}

/** A chunk of a read result: text, or bytes that are not UTF-8. */
class Chunk(private val text: String?, private val bytes: ByteArray?) {
    fun toJson(offset: String): JsonElement = buildJsonObject {
        put("offset", offset)
        if (text != null) {
            put("data", text)
        } else {
            put("data", Base64.getEncoder().encodeToString(bytes))
            put("binary", true)
        }
    }
}

class Batch(val chunk: Chunk?, val offset: String, val upToDate: Boolean, val closed: Boolean)

/** Pulls batches: JSON items re-serialized as one array per batch for JSON streams, bytes otherwise. */
fun puller(resp: StreamResponse): suspend () -> Batch? = if (resp.isJson) {
    {
        resp.nextJsonBatch()?.let { b ->
            val chunk = if (b.items.isEmpty()) null else Chunk(JsonArray(b.items.map { Json.parseToJsonElement(it) }).toString(), null)
            Batch(chunk, b.position.offset, b.position.upToDate, b.position.streamClosed)
        }
    }
} else {
    {
        resp.nextBatch()?.let { b ->
            val chunk = if (b.data.isEmpty()) null else utf8(b.data)?.let { Chunk(it, null) } ?: Chunk(null, b.data)
            Batch(chunk, b.position.offset, b.position.upToDate, b.position.streamClosed)
        }
    }
}

fun utf8(bytes: ByteArray): String? = try {
    Charsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT)
        .decode(ByteBuffer.wrap(bytes)).toString()
} catch (_: CharacterCodingException) {
    null
}

/** The adapter protocol's error code for a library error. */
fun errorCode(type: String, e: DurableStreamException): String = when (e) {
    is StreamNotFoundException -> "NOT_FOUND"
    is StreamExistsException -> "CONFLICT"
    is ConflictException -> if (e.code == "CONFLICT_SEQ") "SEQUENCE_CONFLICT" else "CONFLICT"
    is StreamClosedException -> "STREAM_CLOSED"
    is HttpStatusException -> if (e.code == "BAD_REQUEST" && type == "read") "INVALID_OFFSET" else "UNEXPECTED_STATUS"
    is ParseException -> "PARSE_ERROR"
    is InvalidArgumentException -> "INVALID_ARGUMENT"
    is NetworkException -> "NETWORK_ERROR"
    is RequestTimeoutException -> "TIMEOUT"
    is StaleEpochException -> "STALE_EPOCH"
    is SequenceGapException -> "SEQUENCE_GAP"
    is ProducerSessionConflictException -> "PRODUCER_SESSION_CONFLICT"
    else -> "UNEXPECTED_STATUS"
}

fun errorResult(type: String, e: Throwable): JsonObject = buildJsonObject {
    put("type", "error")
    put("success", false)
    put("commandType", type)
    when (e) {
        is DurableStreamException -> {
            put("errorCode", errorCode(type, e))
            put("message", e.reason)
            e.status?.let { put("status", it) }
            val details = buildJsonObject {
                when (e) {
                    is StaleEpochException -> put("currentEpoch", e.currentEpoch.toLong())
                    is SequenceGapException -> {
                        put("expectedSeq", e.expectedSeq.toLong()); put("receivedSeq", e.receivedSeq.toLong())
                    }
                    is StreamClosedException -> e.finalOffset?.let { put("finalOffset", it) }
                    else -> {}
                }
            }
            if (details.isNotEmpty()) put("details", details)
        }
        is Refused -> {
            put("errorCode", e.code); put("message", e.message ?: "")
        }
        else -> {
            put("errorCode", "INTERNAL_ERROR"); put("message", e.toString())
        }
    }
}

fun main() {
    runBlocking { serve() }
    // The runtime's worker threads are not daemons of the JVM's making: exit explicitly.
    kotlin.system.exitProcess(0)
}

suspend fun serve() {
    val adapter = Adapter()
    val out = System.out.bufferedWriter()
    while (true) {
        val line = readlnOrNull() ?: break
        if (line.isBlank()) continue
        val cmd = try {
            Json.parseToJsonElement(line) as? JsonObject
        } catch (_: Exception) {
            null
        }
        val type = cmd?.str("type") ?: "unknown"
        if (type == "shutdown") {
            out.write("""{"type":"shutdown","success":true}"""); out.newLine(); out.flush()
            break
        }
        val result = try {
            if (cmd == null) throw Refused("INVALID_ARGUMENT", "not a JSON object: $line")
            val r = adapter.dispatch(type, cmd)
            r["type"] = JsonPrimitive(type)
            r["success"] = JsonPrimitive(true)
            JsonObject(r)
        } catch (e: Exception) {
            System.err.println("[adapter] $type failed: $e")
            errorResult(type, e)
        }
        out.write(result.toString()); out.newLine(); out.flush()
    }
}
