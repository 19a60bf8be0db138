package io.github.durablestreamsclient

import kotlinx.coroutines.runBlocking
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/**
 * Computed headers, the read error hook, the failed-attempt observer, the producer's error
 * callback and appendBlocking.
 */
class CallbacksTest {
    @Test
    fun `computed headers are computed for every request, and a failure fails that request`() = runBlocking {
        val calls = AtomicInteger()
        val options = StreamOptions(
            computedHeaders = mapOf("Authorization" to headerValue { "Bearer token-${calls.incrementAndGet()}" }),
        )
        DurableStream(TestServer.streamUrl("computed"), options).use { s ->
            s.create("application/json")
            s.append("""{"n":1}""")
            s.head()
            assertEquals(3, calls.get())
            s.producer("p", ProducerOptions(computedHeaders = mapOf("X-Trace" to headerValue { "t${calls.incrementAndGet()}" })))
                .use { p ->
                    p.append("""{"n":2}""")
                    p.flush()
                    p.detach()
                }
            // The producer's request computed the handle's header and its own.
            assertTrue(calls.get() >= 5, "calls: ${calls.get()}")
            s.stream(ReadOptions(live = LiveMode.OFF)).use { assertEquals(listOf("""{"n":1}""", """{"n":2}"""), it.json()) }
        }
        val failing = StreamOptions(computedHeaders = mapOf("Authorization" to headerValue { error("no token today") }))
        DurableStream(TestServer.streamUrl("computed"), failing).use { s ->
            val e = assertFailsWith<DurableStreamException> { s.create("text/plain") }
            assertTrue(e.reason.contains("Authorization") && e.reason.contains("no token today"), e.reason)
        }
    }

    @Test
    fun `the read error hook can retry with new headers or end the read`() = runBlocking {
        val url = TestServer.streamUrl("hook")
        DurableStream(url).use { s ->
            s.create("text/plain")
            s.append("hello")
            val seen = Collections.synchronizedList(mutableListOf<DurableStreamException>())
            TestServer.injectFault(url, """"status":401,"method":"GET"""")
            val retrying = ReadOptions(
                live = LiveMode.OFF,
                onError = readErrorHandler { e ->
                    seen.add(e)
                    RetryWith(headers = mapOf("Authorization" to "Bearer fresh"))
                },
            )
            s.stream(retrying).use { assertEquals("hello", it.text()) }
            assertEquals(1, seen.size)
            assertEquals(401, seen[0].status)

            TestServer.injectFault(url, """"status":401,"method":"GET"""")
            val stopping = ReadOptions(live = LiveMode.OFF, onError = readErrorHandler { e -> seen.add(e); null })
            val e = assertFailsWith<DurableStreamException> { s.stream(stopping).use { it.text() } }
            assertEquals(401, e.status)
            assertEquals(2, seen.size)
        }
    }

    @Test
    fun `the failed-attempt observer hears every failed attempt, retried or not`() = runBlocking {
        val url = TestServer.streamUrl("attempts")
        val seen = Collections.synchronizedList(mutableListOf<FailedAttempt>())
        val fast = RetryOptions(initialDelayMs = 10.0, maxDelayMs = 20.0, maxRetries = 5)
        val options = StreamOptions(retry = fast, appendRetry = fast, onFailedAttempt = failedAttemptHandler { seen.add(it) })
        DurableStream(url, options).use { s ->
            s.create("text/plain")
            assertEquals(0, seen.size)
            // Two 503s, then the append goes through: both attempts reported as retried.
            TestServer.injectFault(url, """"status":503,"count":2,"method":"POST"""")
            s.append("after two failures")
            assertEquals(listOf("append" to 1, "append" to 2), seen.map { it.operation to it.attempt })
            assertTrue(seen.all { it.willRetry && it.error.status == 503 }, seen.toString())
        }
        seen.clear()
        DurableStream("$url-missing", options).use { s ->
            assertFailsWith<StreamNotFoundException> { s.delete() }
        }
        assertEquals(listOf(Triple("delete", 1, false)), seen.map { Triple(it.operation, it.attempt, it.willRetry) })
        assertTrue(seen.single().error is StreamNotFoundException)
        // An observer that throws changes nothing.
        val throwing = StreamOptions(appendRetry = fast, onFailedAttempt = failedAttemptHandler { error("observer broke") })
        DurableStream(url, throwing).use { s ->
            TestServer.injectFault(url, """"status":503,"method":"POST"""")
            s.append("!")
            s.stream(ReadOptions(live = LiveMode.OFF)).use { assertEquals("after two failures!", it.text()) }
        }
    }

    @Test
    fun `the producer's error callback hears about a batch that failed for good`() = runBlocking {
        val url = TestServer.streamUrl("onerror")
        DurableStream(url).use { s ->
            s.create("text/plain")
            val heard = CountDownLatch(1)
            val errors = Collections.synchronizedList(mutableListOf<DurableStreamException>())
            val options = ProducerOptions(onError = producerErrorHandler { e -> errors.add(e); heard.countDown() })
            s.producer("p", options).use { p ->
                TestServer.injectFault(url, """"status":400,"method":"POST"""")
                val receipt = p.append("refused")
                assertFailsWith<DurableStreamException> { p.flush() }
                assertTrue(heard.await(10, TimeUnit.SECONDS), "on_error was not called")
                assertEquals(400, errors.single().status)
                assertFailsWith<DurableStreamException> { receipt.await() }
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { assertEquals("", it.text()) }
        }
    }

    @Test
    fun `appendBlocking waits for room on a plain thread and delivers everything in order`() = runBlocking {
        DurableStream(TestServer.streamUrl("blocking")).use { s ->
            s.create("application/json")
            // Room for about three messages: most appends below wait for earlier batches.
            s.producer("p", ProducerOptions(maxBufferedBytes = 32uL, lingerMs = 0uL)).use { p ->
                val numbers = mutableListOf<Long>()
                val writer = thread {
                    for (i in 0 until 40) numbers.add(p.appendBlocking("""{"i":$i}""").messageNumber)
                }
                writer.join(30_000)
                assertEquals((0L until 40L).toList(), numbers)
                p.flush()
                assertEquals(40uL, p.metrics().messages)
                p.detach()
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals((0 until 40).map { """{"i":$it}""" }, r.json())
            }
        }
    }
}
