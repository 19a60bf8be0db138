// The Kotlin quick start, run by scripts/test-dist.sh in a fresh Maven project that depends on
// the installed jar. Usage: Quickstart BASE_URL. Exits non-zero when the data read back differs.
import io.github.durablestreamsclient.*
import java.util.UUID
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking

fun main(args: Array<String>) = runBlocking {
    val url = "${args[0]}/v1/stream/dist-kt-${UUID.randomUUID()}"
    val got = DurableStream(url).use { stream ->
        stream.create(CreateOptions(contentType = "application/json"))
        stream.append("""{"id":1}""")
        stream.producer("dist-check", ProducerOptions(autoClaim = true)).use { producer ->
            producer.append("""{"id":2}""")
            producer.flush()
            producer.detach()
        }
        stream.stream(ReadOptions(live = LiveMode.OFF)).use { it.json() }
    }
    val want = listOf("""{"id":1}""", """{"id":2}""")
    if (got.map { it.replace(" ", "") } != want) {
        System.err.println("kotlin quick start: expected $want, got $got")
        exitProcess(1)
    }
    println("kotlin quick start: ok $got")
}
