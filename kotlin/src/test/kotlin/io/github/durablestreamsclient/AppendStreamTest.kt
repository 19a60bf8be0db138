package io.github.durablestreamsclient

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.asFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.measureTime

/** `appendStream`: a flow's chunks sent as one streamed request. */
class AppendStreamTest {
    private suspend fun readBytes(s: DurableStream): ByteArray =
        s.stream(ReadOptions(live = LiveMode.OFF)).use { it.bytes() }

    @Test
    fun `a JSON array given in pieces is stored as its messages`() = runBlocking {
        DurableStream(TestServer.streamUrl("as")).use { s ->
            s.create("application/json")
            val pieces = listOf("[", """{"n":1}""", ",", """{"n":""", "2}", ",\"caf\u00e9\"]")
            val r = s.appendTextStream(pieces.asFlow())
            assertNotNull(r.nextOffset)
            s.stream(ReadOptions(live = LiveMode.OFF)).use { res ->
                assertEquals(listOf("""{"n":1}""", """{"n":2}""", "\"caf\u00e9\""), res.json())
            }
        }
    }

    @Test
    fun `bytes from many chunks arrive whole and in order, pulled as the connection takes them`() = runBlocking {
        DurableStream(TestServer.streamUrl("as")).use { s ->
            s.create("application/octet-stream")
            val chunks = (0 until 2000).map { i -> ByteArray(512) { j -> ((i * 7 + j) % 251).toByte() } }
            var emitted = 0
            s.appendStream(flow { for (c in chunks) { emit(c); emitted++ } })
            assertEquals(2000, emitted)
            val expected = chunks.fold(ByteArray(0)) { acc, c -> acc + c }
            assertContentEquals(expected, readBytes(s))
        }
    }

    @Test
    fun `a flow that throws aborts the request, stores nothing and rethrows its exception`() = runBlocking {
        DurableStream(TestServer.streamUrl("as")).use { s ->
            s.create("text/plain")
            s.append("before|")
            val boom = IllegalArgumentException("source broke")
            val thrown = assertFailsWith<IllegalArgumentException> {
                s.appendTextStream(
                    flow {
                        emit("one|")
                        emit("two|")
                        delay(50)
                        throw boom
                    },
                )
            }
            // The same exception; coroutines' stack-trace recovery (on under -ea) may hand on a
            // copy of it whose cause is the original.
            assertTrue(thrown === boom || thrown.cause === boom, "not the source's exception: $thrown")
            s.append("after")
            assertEquals("before|after", readBytes(s).decodeToString())
        }
    }

    @Test
    fun `an empty flow sends an empty body, which the server refuses without storing anything`() = runBlocking {
        DurableStream(TestServer.streamUrl("as")).use { s ->
            s.create("text/plain")
            assertFailsWith<DurableStreamException> { s.appendTextStream(emptyList<String>().asFlow()) }
            s.append("x")
            assertEquals("x", readBytes(s).decodeToString())
        }
    }

    @Test
    fun `cancelling the caller while the flow waits returns promptly and stores nothing`() = runBlocking {
        DurableStream(TestServer.streamUrl("as")).use { s ->
            s.create("text/plain")
            val started = CompletableDeferred<Unit>()
            val took = measureTime {
                assertFailsWith<TimeoutCancellationException> {
                    withTimeout(500) {
                        s.appendTextStream(
                            flow {
                                emit("partial|")
                                started.complete(Unit)
                                awaitCancellation()
                            },
                        )
                    }
                }
            }
            assertTrue(started.isCompleted, "the flow never ran")
            assertTrue(took < 2000.milliseconds, "cancellation took $took")
            s.append("next")
            assertEquals("next", readBytes(s).decodeToString())
        }
    }
}
