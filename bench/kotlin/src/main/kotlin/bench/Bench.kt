// Contenders "kotlin-binding", "kotlin-binding-many" and "kotlin-binding-field": our Kotlin package (the Rust core
// through uniffi, JNA and JNI), used the way its README shows, from a blocking caller. Protocol:
// bench/README.md (the job is the last argument; one JSON line on stdout).
//
// Scenarios: producer-json and catchup-read. The package has no JSON library among its
// dependencies: its reads hand on JSON messages as texts. The catch-up takes them as array texts
// (`jsonArrays()`) and parses each array with Jackson, as a JVM application would, so that it
// does the work the other languages' reads do (which parse array texts the same way inside).
package bench

import com.fasterxml.jackson.databind.ObjectMapper
import io.github.durablestreamsclient.DurableStream
import io.github.durablestreamsclient.LiveMode
import io.github.durablestreamsclient.ProducerOptions
import io.github.durablestreamsclient.ReadOptions
import io.github.durablestreamsclient.StreamOptions
import kotlinx.coroutines.runBlocking
import kotlin.system.exitProcess

/** JSON message `i`, padded with `x` to `size` bytes; the same bytes as bench/rust/src/msg.rs. */
fun jsonMessage(i: Long, size: Int): ByteArray {
    val head = "{\"i\":$i,\"type\":\"bench.event\",\"user\":\"u${i % 1000}\",\"p\":\""
    val pad = maxOf(0, size - head.length - 2)
    return (head + "x".repeat(pad) + "\"}").encodeToByteArray()
}

/** The few fields of the job this contender reads (flat JSON: numbers and strings only). */
fun field(job: String, name: String): String {
    val m = Regex("\"$name\"\\s*:\\s*(\"([^\"]*)\"|[-0-9.eE+]+)").find(job)
        ?: throw IllegalArgumentException("the job has no $name")
    return m.groups[2]?.value ?: m.groups[1]!!.value
}

fun producerJson(job: String, many: Boolean): String {
    val count = field(job, "count").toLong()
    val size = field(job, "msg_bytes").toInt()
    val msgs = List(count.toInt()) { jsonMessage(it.toLong(), size) }
    val options = ProducerOptions(
        lingerMs = field(job, "linger_ms").toDouble().toULong(),
        maxBatchBytes = field(job, "batch_bytes").toULong(),
        maxInFlight = field(job, "max_in_flight").toUInt(),
    )
    DurableStream(field(job, "stream_url"), StreamOptions(contentType = field(job, "content_type"))).use { s ->
        val start = System.nanoTime()
        val seconds = s.producer(field(job, "producer_id"), options).use { p ->
            if (many) {
                p.appendManyBlocking(msgs)
            } else {
                // appendBlocking waits for room only when the buffer is full; its receipt is
                // not needed (closing it releases the native handle at once).
                for (m in msgs) p.appendBlocking(m).close()
            }
            runBlocking { p.flush() }
            val seconds = (System.nanoTime() - start) / 1e9
            runBlocking { p.detach() }
            seconds
        }
        return "{\"ok\":true,\"messages\":$count,\"bytes\":${count * size},\"seconds\":$seconds}"
    }
}

/**
 * stream(offset -1, not live).jsonArrays(): the messages as array texts, each parsed by Jackson
 * for `i`; with [pick] (contender "kotlin-binding-field"), `jsonArrays(field = "i")`: only that
 * member of each message reaches Jackson.
 */
fun catchupRead(job: String, pick: Boolean): String {
    val size = field(job, "msg_bytes").toLong()
    val mapper = ObjectMapper()
    DurableStream(field(job, "stream_url"), StreamOptions(contentType = field(job, "content_type"))).use { s ->
        val start = System.nanoTime()
        // The messages as JSON array texts: one Jackson parse per array, not per message.
        val arrays = runBlocking {
            s.stream(ReadOptions(offset = "-1", live = LiveMode.OFF)).use {
                if (pick) it.jsonArrays(field = "i") else it.jsonArrays()
            }
        }
        var checksum = 0L
        var n = 0
        for (a in arrays) {
            for (m in mapper.readTree(a)) {
                checksum += if (pick) m.asLong() else m.get("i").asLong()
                n++
            }
        }
        val seconds = (System.nanoTime() - start) / 1e9
        return "{\"ok\":true,\"messages\":$n,\"bytes\":${n * size},\"seconds\":$seconds,\"checksum\":$checksum}"
    }
}

fun main(args: Array<String>) {
    val job = args.last()
    val many = "--many" in args.dropLast(1)
    val pick = "--field" in args.dropLast(1)
    try {
        val out = when (val scenario = field(job, "scenario")) {
            "producer-json" -> producerJson(job, many)
            "catchup-read" -> catchupRead(job, pick)
            else -> throw IllegalArgumentException("scenario $scenario is not implemented by this contender")
        }
        println(out)
        exitProcess(0)
    } catch (e: Throwable) {
        System.err.println(e.stackTraceToString())
        exitProcess(1)
    }
}
