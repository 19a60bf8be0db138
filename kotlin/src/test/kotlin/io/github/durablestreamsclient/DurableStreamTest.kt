package io.github.durablestreamsclient

import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

class DurableStreamTest {
    private fun json(url: String = TestServer.streamUrl()) =
        DurableStream(url, StreamOptions(contentType = "application/json"))

    @Test
    fun `create, append and read to the tail`() = runBlocking {
        json().use { s ->
            val created = s.create(CreateOptions(contentType = "application/json"))
            assertTrue(created.created)
            assertFalse(s.create(CreateOptions(contentType = "application/json")).created)
            val first = s.append("""{"n":1}""")
            assertNotNull(first.nextOffset)
            s.appendBatch(listOf("""{"n":2}""".encodeToByteArray(), """{"n":3}""".encodeToByteArray()))
            val head = s.head()
            assertEquals("application/json", head.contentType)
            assertTrue(s.exists())
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals(listOf("""{"n":1}""", """{"n":2}""", """{"n":3}"""), r.json())
                assertEquals(head.nextOffset, r.offset)
                assertTrue(r.upToDate)
            }
            // Resume from an offset: only what came after it.
            s.stream(ReadOptions(offset = first.nextOffset!!, live = LiveMode.OFF)).use { r ->
                assertEquals(listOf("""{"n":2}""", """{"n":3}"""), r.jsonItems().toList())
            }
        }
    }

    @Test
    fun `bytes round trip and connect learns the content type`() = runBlocking {
        val url = TestServer.streamUrl()
        DurableStream(url).use { s ->
            s.create("application/octet-stream")
            s.append(byteArrayOf(0, 1, 2, 0xff.toByte()))
            s.append("text")
        }
        DurableStream.connect(url).use { s ->
            assertEquals("application/octet-stream", s.contentType)
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertContentEquals(byteArrayOf(0, 1, 2, 0xff.toByte()) + "text".encodeToByteArray(), r.bytes())
            }
        }
    }

    @Test
    fun `live long-poll read sees new data and ends at close`() = runBlocking {
        liveRead(LiveMode.LONG_POLL)
    }

    @Test
    fun `live SSE read sees new data and ends at close`() = runBlocking {
        liveRead(LiveMode.SSE)
    }

    private suspend fun liveRead(mode: LiveMode) = kotlinx.coroutines.coroutineScope {
        json().use { s ->
            s.create("application/json")
            s.append("""{"n":1}""")
            val response = s.stream(ReadOptions(live = mode))
            val batches = async { response.use { it.jsonBatches().toList() } }
            delay(300)
            s.append("""{"n":2}""")
            delay(300)
            val final = s.closeStream("""{"n":3}""".encodeToByteArray())
            val all = withTimeout(10_000) { batches.await() }
            assertEquals(listOf("""{"n":1}""", """{"n":2}""", """{"n":3}"""), all.flatMap { it.items })
            val last = all.last().position
            assertTrue(last.streamClosed)
            assertEquals(final, last.offset)
        }
    }

    @Test
    fun `text batches and an early stop of the flow`() = runBlocking {
        DurableStream(TestServer.streamUrl()).use { s ->
            s.create("text/plain")
            s.append("héllo ")
            s.append("wörld")
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals("héllo wörld", r.textBatches().toList().joinToString("") { it.text })
            }
            // A live read stopped by first(): the flow cancels the read and returns.
            s.stream(ReadOptions(live = LiveMode.LONG_POLL)).use { r ->
                assertEquals("héllo wörld", r.textBatches().first { it.text.isNotEmpty() }.text)
            }
        }
    }

    @Test
    fun `errors are typed exceptions with code, status and fields`() = runBlocking {
        val missing = DurableStream(TestServer.streamUrl())
        val notFound = assertFailsWith<StreamNotFoundException> { missing.head() }
        assertEquals(404, notFound.status)
        assertEquals("NOT_FOUND", notFound.code)
        assertFalse(notFound.retryable)
        // Printed under the public class name, never the generated bindings' one.
        assertTrue(
            notFound.toString().startsWith("io.github.durablestreamsclient.StreamNotFoundException: stream not found: "),
            notFound.toString(),
        )
        assertFalse(missing.exists())
        assertFailsWith<StreamNotFoundException> { missing.stream() }

        json().use { s ->
            s.create("application/json")
            assertFailsWith<StreamExistsException> { s.create("text/plain") }
            val final = s.closeStream()
            val closed = assertFailsWith<StreamClosedException> { s.append("""{"late":true}""") }
            assertEquals(409, closed.status)
            assertEquals(final, closed.finalOffset)
            // The base type carries the common fields too.
            val base: DurableStreamException = closed
            assertEquals("STREAM_CLOSED", base.code)
            assertTrue(base.reason.contains("closed"))
        }

        val bad = assertFailsWith<InvalidArgumentException> { DurableStream("ftp://example/x") }
        assertEquals("INVALID_ARGUMENT", bad.code)
        assertFailsWith<InvalidArgumentException> {
            DurableStream(TestServer.streamUrl(), StreamOptions(retry = RetryOptions(multiplier = 0.5)))
        }
        Unit
    }

    @Test
    fun `a consumed response refuses a second consumer`() = runBlocking {
        json().use { s ->
            s.create("application/json")
            s.append("1")
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals(listOf("1"), r.json())
                val again = assertFailsWith<InvalidStateException> { r.json() }
                assertEquals("ALREADY_CONSUMED", again.code)
            }
        }
    }
}
