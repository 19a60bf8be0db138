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
    fun `a picked read hands on only the members asked for, whole or batch by batch`(): Unit = runBlocking {
        json().use { s ->
            s.create("application/json")
            val sent = listOf(
                """{"id":1,"text":"a \"q\"","meta":{"id":9}}""",
                """{"text":"é"}""",
                "7",
                """{"id":[1,{"id":0}],"x":null}""",
                """{"id":1,"id2":2,"id":"last"}""",
            )
            s.appendBatch(sent.map { it.encodeToByteArray() })
            // A duplicate key keeps its last value, as JSON parsers do.
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals(listOf("""[1,null,null,[1,{"id":0}],"last"]"""), r.jsonArrays(field = "id"))
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals(
                    listOf("""[{"text":"a \"q\""},{"text":"é"},null,{"x":null},{}]"""),
                    r.jsonArrays(fields = listOf("text", "x")),
                )
            }
            // Batch by batch over a live read that ends when the stream is closed.
            val response = s.stream(ReadOptions(live = LiveMode.LONG_POLL))
            val batches = async { response.use { it.jsonArrayBatches(field = "text").toList() } }
            delay(200)
            s.appendBatch(listOf("""{"text":"late"}""".encodeToByteArray()))
            s.closeStream()
            val got = withTimeout(10_000) { batches.await() }
            val values = got.flatMap { it.texts }.joinToString(",") { it.substring(1, it.length - 1) }
            assertEquals(""""a \"q\"","é",null,null,null,"late"""", values)
            assertTrue(got.last().position.streamClosed)
            // A pick naming nothing is refused; one style per response.
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertFailsWith<InvalidArgumentException> { r.jsonArrays(fields = emptyList()) }
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertNotNull(r.nextJsonArrayBatch(field = "id"))
                assertFailsWith<DurableStreamException> { r.nextJsonArrayBatch() }
            }
        }
    }

    @Test
    fun `jsonArrays hands the messages on unchanged as array texts, whole or batch by batch`(): Unit = runBlocking {
        json().use { s ->
            s.create("application/json")
            val first = listOf("""{"n":1,"s":"caf\u00e9 \"q\" [x],"}""", "[1,[2,{}]]", "\"é\"", "null", "-0.5e3")
            s.appendBatch(first.map { it.encodeToByteArray() })
            val second = (0 until 300).map { """{"k":$it}""" }
            s.appendBatch(second.map { it.encodeToByteArray() })
            // The messages as the server keeps them (it may normalize a JSON text: `-0.5e3` to
            // `-500`), one text each.
            val all = s.stream(ReadOptions(live = LiveMode.OFF)).use { it.json() }
            assertEquals(first.size + second.size, all.size)
            // A text is `[` + its messages joined by commas + `]`; the texts in order are all of them.
            fun messagesOf(texts: List<String>): String = texts.joinToString(",") {
                assertTrue(it.startsWith("[") && it.endsWith("]"), "not an array text: $it")
                it.substring(1, it.length - 1)
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals(all.joinToString(","), messagesOf(r.jsonArrays()))
                assertTrue(r.upToDate)
            }
            // Batch by batch over a live read that ends when the stream is closed.
            val response = s.stream(ReadOptions(live = LiveMode.LONG_POLL))
            val batches = async { response.use { it.jsonArrayBatches().toList() } }
            delay(200)
            s.appendBatch(listOf("""{"late":true}""".encodeToByteArray()))
            s.closeStream()
            val got = withTimeout(10_000) { batches.await() }
            assertEquals((all + """{"late":true}""").joinToString(","), messagesOf(got.flatMap { it.texts }))
            assertTrue(got.last().position.streamClosed)
            // One style per response: a read taken as array texts cannot switch to messages.
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertNotNull(r.nextJsonArrayBatch())
                assertFailsWith<DurableStreamException> { r.nextJsonBatch() }
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
