package io.github.durablestreamsclient

import kotlinx.coroutines.runBlocking
import java.net.InetAddress
import java.net.ServerSocket
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/** Reads against a local misbehaving server (a loopback socket), through the Kotlin Flow. */
class ReadBoundedTest {
    @Test
    fun `an SSE run of data events without a control event flows on in batches that are not checkpoints`() = runBlocking<Unit> {
        // The catch-up answers an empty JSON stream at o1; the SSE connection sends 2,000
        // messages of 1 KiB in 1,000 events and holds the control event back until the
        // client has them all (or 10 s passed).
        val server = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
        val release = CountDownLatch(1)
        val pad = "p".repeat(1000)
        val serving = thread(isDaemon = true) {
            for (n in 0 until 2) {
                server.accept().use { sock ->
                    val input = sock.getInputStream()
                    val head = StringBuilder()
                    while (!head.endsWith("\r\n\r\n")) {
                        val b = input.read()
                        if (b < 0) break
                        head.append(b.toChar())
                    }
                    val out = sock.getOutputStream()
                    if (n == 0) {
                        out.write(
                            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n" +
                                "Stream-Next-Offset: o1\r\nStream-Up-To-Date: true\r\nContent-Length: 2\r\n\r\n[]").toByteArray(),
                        )
                    } else {
                        out.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\n".toByteArray())
                        for (e in 0 until 1000) {
                            val msgs = listOf(2 * e, 2 * e + 1).joinToString(",") { """{"i":$it,"pad":"$pad"}""" }
                            out.write("event: data\ndata:[$msgs]\n\n".toByteArray())
                        }
                        out.flush()
                        release.await(10, TimeUnit.SECONDS)
                        out.write("event: control\ndata:{\"streamNextOffset\":\"o2\",\"streamClosed\":true}\n\n".toByteArray())
                    }
                    out.flush()
                }
            }
        }
        try {
            val url = "http://127.0.0.1:${server.localPort}/s"
            var next = 0
            var parts = 0
            var allBeforeRelease = false
            val checkpoints = mutableListOf<String>()
            DurableStream(url).use { s ->
                s.stream(ReadOptions(live = LiveMode.SSE, maxChunkBytes = (16 * 1024).toULong())).use { r ->
                    r.jsonBatches().collect { b ->
                        if (b.position.checkpoint) {
                            checkpoints += b.position.offset
                        } else {
                            parts += 1
                            assertEquals("o1", b.position.offset)
                            assertTrue(!b.position.upToDate && !b.position.streamClosed)
                            assertTrue(b.items.size <= 16 + 2, "${b.items.size} messages in one batch")
                        }
                        for (item in b.items) {
                            assertTrue(item.startsWith("{\"i\":$next,"), item.take(20))
                            next += 1
                        }
                        if (next == 2000 && release.count == 1L) {
                            allBeforeRelease = true
                            release.countDown()
                        }
                    }
                }
            }
            assertEquals(2000, next)
            assertTrue(allBeforeRelease, "the messages waited for the control event")
            assertTrue(parts >= 50, "$parts parts")
            assertEquals(listOf("o1", "o2"), checkpoints)
        } finally {
            release.countDown()
            server.close()
            serving.join(5000)
        }
    }
}
