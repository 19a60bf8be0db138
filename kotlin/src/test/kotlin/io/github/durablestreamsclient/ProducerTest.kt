package io.github.durablestreamsclient

import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.io.IOException
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

class ProducerTest {
    @Test
    fun `a producer delivers every message once, in order, with receipts`() = runBlocking {
        DurableStream(TestServer.streamUrl("producer")).use { s ->
            s.create("application/json")
            s.producer("p1", ProducerOptions(lingerMs = 2uL)).use { p ->
                val receipts = (0 until 50).map { p.append("""{"n":$it}""") }
                p.flush()
                val last = receipts.last().await()
                assertFalse(last.duplicate)
                assertEquals(0L, last.epoch.toLong())
                assertNotNull(receipts.first().poll())
                assertEquals(49L, receipts.last().messageNumber)
                val m = p.metrics()
                assertEquals(50uL, m.messages)
                assertEquals(0uL, m.failedMessages)
                assertEquals(last.offset, p.lastOffset)
                p.detach()
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals((0 until 50).map { """{"n":$it}""" }, r.json())
            }
        }
    }

    @Test
    fun `per-message appends go through the JNI method (or JNA when it is off), whatever their size`() = runBlocking {
        // pom.xml runs this class twice: as applications do, and with the JNI methods off.
        if (System.getProperty("io.github.durablestreamsclient.jni") == "false") {
            assertFalse(JniCalls.available, "the JNI methods are bound although turned off")
        } else {
            assertTrue(JniCalls.available, "the JNI methods are not bound: appends fall back to JNA")
        }
        DurableStream(TestServer.streamUrl("producer-jni")).use { s ->
            s.create("application/octet-stream")
            // One byte, short, around 1 KiB, and larger.
            val sizes = listOf(1, 100, 1024, 1025, 70_000)
            val messages = sizes.mapIndexed { k, n -> ByteArray(n) { j -> ((k * 31 + j) % 256).toByte() } }
            s.producer("jni", ProducerOptions(lingerMs = 1uL)).use { p ->
                val numbers = messages.map { p.append(it).messageNumber }
                assertEquals(messages.indices.map { it.toLong() }, numbers)
                // An empty message is refused (through the uniffi call, which names the error).
                assertFailsWith<InvalidArgumentException> { p.append(ByteArray(0)) }
                p.flush()
                p.detach()
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals(messages.fold(ByteArray(0)) { acc, m -> acc + m }.toList(), r.bytes().toList())
            }
            // A slot that holds no producer (a negative one, or one never handed out) finds nothing.
            if (JniCalls.available) {
                assertEquals(NO_PRODUCER, JniCalls.tryAppend(-5L, byteArrayOf(1)))
                assertEquals(NO_PRODUCER, JniCalls.tryAppend(Long.MAX_VALUE, byteArrayOf(1)))
                assertEquals(NO_PRODUCER, JniCalls.tryAppendRun(-5L, arrayOf(byteArrayOf(1)), 1))
            }
        }
    }

    @Test
    fun `appendMany queues runs through a full buffer, in order, and stops at a bad message`() = runBlocking {
        DurableStream(TestServer.streamUrl("producer-many")).use { s ->
            s.create("application/json")
            s.producer("many", ProducerOptions(lingerMs = 1uL, maxBufferedBytes = 2048uL)).use { p ->
                // 6,000 messages (more than one native chunk) through a 2 KiB buffer: it waits for room.
                p.appendMany((0 until 6000).map { """{"n":$it}""" })
                p.flush()
                // With room: tryAppendMany stops before a bad message and throws it when it comes first.
                val bad = listOf("""{"n":6000}""", "{nope", """{"n":6001}""").map { it.encodeToByteArray() }
                assertEquals(1, p.tryAppendMany(bad))
                assertFailsWith<InvalidArgumentException> { p.tryAppendMany(bad, 1) }
                assertEquals(3, p.tryAppendMany(bad, 2))
                assertFailsWith<IllegalArgumentException> { p.tryAppendMany(bad, 4) }
                p.appendManyBlocking((6002 until 6100).map { """{"n":$it}""".encodeToByteArray() })
                p.flush()
                assertEquals(6100uL, p.metrics().messages)
                p.detach()
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals((0 until 6100).map { """{"n":$it}""" }, r.json())
            }
        }
    }

    @Test
    fun `auto-claim takes over from a newer epoch, without it the producer is fenced`() = runBlocking {
        DurableStream(TestServer.streamUrl("producer")).use { s ->
            s.create("text/plain")
            s.producer("shared", ProducerOptions(epoch = 3uL)).use { p ->
                p.append("a").await()
                p.detach()
            }
            // Epoch 0 is stale now: without auto-claim the append fails with StaleEpoch.
            s.producer("shared").use { p ->
                val fenced = assertFailsWith<StaleEpochException> { p.append("b").await() }
                assertEquals(403, fenced.status)
                assertEquals(3uL, fenced.currentEpoch)
            }
            s.producer("shared", ProducerOptions(autoClaim = true)).use { p ->
                val d = p.append("c").await()
                assertEquals(4uL, d.epoch)
                assertEquals(4L, p.epoch)
                val final = p.closeStream("d".encodeToByteArray())
                assertEquals(final, s.head().nextOffset)
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                assertEquals("acd", r.text())
                assertTrue(r.streamClosed)
            }
        }
    }

    @Test
    fun `a reused producer id fails with ProducerSessionConflict, auto-claim takes a new epoch`() = runBlocking {
        DurableStream(TestServer.streamUrl("producer")).use { s ->
            s.create("text/plain")
            s.producer("job").use { p ->
                p.append("a").await()
                p.detach()
            }
            // The same id and epoch again, as a restarted process would start it.
            s.producer("job").use { p ->
                val conflict = assertFailsWith<ProducerSessionConflictException> { p.append("b").await() }
                assertEquals("PRODUCER_SESSION_CONFLICT", conflict.code)
                assertEquals("job", conflict.producerId)
                assertEquals(0uL, conflict.epoch)
            }
            s.producer("job", ProducerOptions(autoClaim = true)).use { p ->
                val d = p.append("c").await()
                assertEquals(1uL, d.epoch)
                assertEquals(false, d.duplicate)
                p.detach()
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r -> assertEquals("ac", r.text()) }
        }
    }

    @Test
    fun `per-message appends take the direct native call and fall back for every failure`() = runBlocking {
        DurableStream(TestServer.streamUrl("producer-fast")).use { s ->
            s.create("application/json")
            s.producer("fast", ProducerOptions(lingerMs = 1uL, maxBufferedBytes = 64uL)).use { p ->
                // Numbers in append order across the three per-message forms.
                assertEquals(0L, p.tryAppend("""{"n":0}""".encodeToByteArray()).messageNumber)
                assertEquals(1L, p.appendBlocking("""{"n":1}""").messageNumber)
                val r2 = p.append("""{"n":2}""")
                assertEquals(2L, r2.messageNumber)
                // A bad message is refused with the full error, and nothing is appended.
                val bad = assertFailsWith<InvalidArgumentException> { p.tryAppend("{nope".encodeToByteArray()) }
                assertTrue(bad.reason.contains("not valid JSON"), bad.reason)
                // A full buffer: tryAppend throws BufferFullException; appendBlocking waits for room.
                val big = """{"pad":"${"x".repeat(40)}"}""".encodeToByteArray()
                var full: BufferFullException? = null
                var taken = 3L
                while (full == null) {
                    try {
                        assertEquals(taken, p.tryAppend(big).messageNumber)
                        taken++
                    } catch (e: BufferFullException) {
                        full = e
                    }
                }
                assertEquals(64L, full.limit)
                assertEquals(taken, p.appendBlocking(big).messageNumber)
                // Receipts made from the number: await and poll give the batch's outcome.
                assertEquals(false, r2.await().duplicate)
                p.flush()
                assertNotNull(r2.poll())
                r2.close()
                assertFailsWith<IllegalStateException> { r2.poll() }
                assertEquals(taken + 1, p.metrics().appendedMessages.toLong())
                p.detach()
            }
            // A producer used after close() finds nothing (and never a producer made after it).
            val closed = s.producer("closed")
            closed.tryAppend("""{"c":1}""".encodeToByteArray()).close()
            closed.flush()
            closed.close()
            s.producer("after").use { other ->
                assertFailsWith<Exception> { closed.tryAppend("""{"n":-1}""".encodeToByteArray()) }
                other.detach()
            }
            s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                val items = r.json()
                assertEquals(listOf("""{"n":0}""", """{"n":1}""", """{"n":2}"""), items.take(3))
                assertTrue(items.drop(3).dropLast(1).all { it.startsWith("""{"pad":""") })
                assertEquals("""{"c":1}""", items.last())
                assertFalse(items.any { it.contains("-1") })
            }
        }
    }

    @Test
    fun `a closed producer refuses appends while a suspended call still holds the native one`() = runBlocking<Unit> {
        // A loopback server that takes the batch's request and never answers: the flush below
        // stays suspended and its native future keeps the native producer alive after close().
        val server = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
        val sockets = mutableListOf<Socket>()
        val requested = CountDownLatch(1)
        val serving = thread(isDaemon = true) {
            try {
                while (true) {
                    val sock = server.accept()
                    synchronized(sockets) { sockets += sock }
                    requested.countDown()
                }
            } catch (_: IOException) {
                // server.close() below
            }
        }
        try {
            val url = "http://127.0.0.1:${server.localPort}/s"
            DurableStream(url, StreamOptions(contentType = "application/json")).use { s ->
                val p = s.producer("held", ProducerOptions(lingerMs = 1uL))
                assertEquals(0L, p.tryAppend("""{"n":0}""".encodeToByteArray()).messageNumber)
                assertTrue(requested.await(10, TimeUnit.SECONDS), "the batch was never sent")
                // Undispatched: flush() has made its native call (holding the native producer)
                // and is suspended in it when async returns.
                val flushing = async(start = CoroutineStart.UNDISPATCHED) { runCatching { p.flush() } }
                assertTrue(flushing.isActive)
                p.close()
                // Every append form throws now; none reaches the still living native producer.
                assertFailsWith<IllegalStateException> { p.tryAppend("""{"n":1}""".encodeToByteArray()) }
                assertFailsWith<IllegalStateException> { p.appendBlocking("""{"n":2}""") }
                assertFailsWith<IllegalStateException> {
                    p.tryAppendMany(listOf("""{"n":3}""".encodeToByteArray(), """{"n":4}""".encodeToByteArray()))
                }
                assertFailsWith<IllegalStateException> { p.append("""{"n":5}""") }
                flushing.cancel()
                withTimeout(10_000) { flushing.join() }
            }
        } finally {
            server.close()
            synchronized(sockets) { sockets.forEach { it.close() } }
            serving.join(5000)
        }
    }

    @Test
    fun `bad options are refused before anything is sent`() {
        val bad = assertFailsWith<InvalidArgumentException> {
            ProducerOptions(maxBatchBytes = 0uL).validate("p")
        }
        assertTrue(bad.reason.contains("max_batch_bytes"))
        ProducerOptions().validate("p")
        DurableStream(TestServer.streamUrl("producer")).use { s ->
            assertFailsWith<InvalidArgumentException> { s.producer("") }
        }
    }

    /**
     * An append waiting for room, cancelled just as the room comes back (the [Gate] holds the
     * coroutine between the native wait's end and its resumption): the caller sees
     * CancellationException, so the message must not have gone in, or a retry would store it
     * twice.
     */
    private fun cancelledWhileWaitingForRoom(append: suspend IdempotentProducer.() -> Unit) = runBlocking {
        val url = TestServer.streamUrl("kt-race")
        DurableStream(url).use { s ->
            s.create("text/plain")
            // The batch that fills the buffer is stored after 800 ms; until then there is no room.
            TestServer.injectFault(url, """"delayMs":800,"method":"POST","count":1""")
            s.producer("p", ProducerOptions(maxBufferedBytes = 4uL, lingerMs = 0uL)).use { p ->
                p.tryAppend("m1__".encodeToByteArray()).close()
                val gate = Gate()
                var returned = false
                val job = launch(gate.dispatcher) {
                    p.append()
                    returned = true
                }
                gate.runQueued()
                assertTrue(job.isActive, "the append did not wait for room")
                gate.cancelAsItResumes(job)
                assertFalse(returned)
                p.flush()
                assertEquals(1uL, p.metrics().appendedMessages)
                assertEquals("m1__", s.stream(ReadOptions(live = LiveMode.OFF)).use { it.text() })
                // Told it was cancelled, the caller appends again: stored once.
                p.append()
                p.flush()
                assertEquals("m1__m2m3", s.stream(ReadOptions(live = LiveMode.OFF)).use { it.text() })
            }
        }
    }

    @Test
    fun `an append cancelled as room comes back leaves nothing appended`() =
        cancelledWhileWaitingForRoom { append("m2").close(); append("m3").close() }

    @Test
    fun `an appendMany cancelled as room comes back appends nothing from there`() =
        cancelledWhileWaitingForRoom { appendMany(listOf("m2", "m3")) }
}
