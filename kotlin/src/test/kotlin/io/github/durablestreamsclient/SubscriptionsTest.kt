package io.github.durablestreamsclient

import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.net.InetSocketAddress
import java.util.UUID
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class SubscriptionsTest {
    private val subs = Subscriptions("${TestServer.url}/v1/stream/")

    private fun prefix(name: String) = "kt-subs-$name-${UUID.randomUUID()}"

    private suspend fun jsonStream(path: String): DurableStream =
        subs.stream(path, StreamOptions(contentType = "application/json")).also {
            it.create(CreateOptions(contentType = "application/json"))
        }

    private suspend fun tail(path: String): String =
        subs.stream(path).use { assertNotNull(it.head().nextOffset) }

    /** Polls (bounded) until [path]'s acked offset is [want]. */
    private suspend fun awaitAcked(sid: String, path: String, want: String) {
        repeat(100) {
            if (subs.get(sid).ackedOffset(path) == want) return
            delay(100)
        }
        assertEquals(want, subs.get(sid).ackedOffset(path))
    }

    @Test
    fun `configuration is checked before any request`() = runBlocking<Unit> {
        val e = assertFailsWith<InvalidArgumentException> { subs.create("x", SubscriptionConfig(wakeStream = "w")) }
        assertTrue("pattern or at least one" in e.reason, e.reason)
        assertFailsWith<InvalidArgumentException> {
            subs.create("x", SubscriptionConfig(wakeStream = "w", pattern = "a/*", leaseMs = 500u))
        }
        val both = assertFailsWith<InvalidArgumentException> {
            subs.create("x", SubscriptionConfig(wakeStream = "w", webhookUrl = "http://127.0.0.1:1/h", pattern = "a/*"))
        }
        assertTrue("exactly one" in both.reason, both.reason)
        assertFailsWith<InvalidArgumentException> { subs.worker("x", "", "w").run { } }
    }

    @Test
    fun `three racing workers process every message exactly once`() = runBlocking<Unit> {
        val p = prefix("race")
        val wake = "$p/wake"
        jsonStream(wake).close()
        val extra = "$p/extra/a"
        jsonStream(extra).close()
        val sid = "sub-$p"
        val config = SubscriptionConfig(
            wakeStream = wake, pattern = "$p/events/*", streams = listOf(extra), leaseMs = 3000u, description = "race",
        )
        val created = subs.create(sid, config)
        assertTrue(created.created)
        assertEquals(3000uL, created.subscription.leaseTtlMs)
        assertEquals("pull-wake", created.subscription.kind)
        assertFalse(subs.create(sid, config).created)
        val conflict = assertFailsWith<StreamExistsException> { subs.create(sid, config.copy(leaseMs = 4000u)) }
        assertEquals(409, conflict.status)
        assertEquals("SUBSCRIPTION_ALREADY_EXISTS", conflict.subscriptionCode)
        assertTrue(conflict.url!!.endsWith("/__ds/subscriptions/$sid"), conflict.url)

        val other = "$p/extra/b"
        jsonStream(other).close()
        subs.addStreams(sid, listOf(other))
        assertNotNull(subs.get(sid).ackedOffset(other))
        subs.removeStream(sid, other)
        assertNull(subs.get(sid).ackedOffset(other))

        val paths = (0 until 3).map { "$p/events/$it" } + extra
        val handles = paths.map { jsonStream(it) }
        val seen = mutableListOf<Triple<String, Int, Int>>()
        val stop = CompletableDeferred<Unit>()
        val workers = (0 until 3).map { w ->
            async(Dispatchers.Default) {
                subs.worker(sid, "w$w", wake).run(until = { stop.await() }) { item ->
                    assertTrue(item.isJson)
                    synchronized(seen) {
                        item.messages.forEach { m ->
                            // Exactly the text appended below (keys in their order).
                            val (s, n) = Regex("""\{"s":(\d+),"n":(\d+)\}""").matchEntire(m)!!.destructured
                            seen += Triple(item.stream, s.toInt(), n.toInt())
                        }
                    }
                }
            }
        }
        val perStream = 5
        for (n in 0 until perStream) {
            handles.forEachIndexed { i, h -> h.append("""{"s":$i,"n":$n}""") }
        }
        val total = paths.size * perStream
        var done = false
        for (attempt in 0 until 200) {
            delay(100)
            if (synchronized(seen) { seen.size } >= total) {
                val sub = subs.get(sid)
                if (paths.all { sub.ackedOffset(it) == tail(it) }) {
                    done = true
                    break
                }
            }
        }
        stop.complete(Unit)
        val offsets = withTimeout(10_000) { workers.awaitAll() }
        handles.forEach { it.close() }
        assertTrue(done, "not all acked: ${subs.get(sid)}")
        assertEquals(total, seen.size, "duplicates or losses: $seen")
        val want = paths.indices.flatMap { i -> (0 until perStream).map { n -> Triple(paths[i], i, n) } }.toSet()
        assertEquals(want, seen.toSet())
        // Each worker returns the wake-stream offset to resume from.
        assertTrue(offsets.all { !it.isNullOrEmpty() }, "$offsets")
        subs.delete(sid)
        val gone = assertFailsWith<StreamNotFoundException> { subs.get(sid) }
        assertEquals("SUBSCRIPTION_NOT_FOUND", gone.subscriptionCode)
    }

    @Test
    fun `a lost lease is fenced and the late ack advances nothing`() = runBlocking<Unit> {
        val p = prefix("fence")
        val wake = "$p/wake"
        val path = "$p/s"
        jsonStream(wake).close()
        val sid = "sub-$p"
        jsonStream(path).use { s ->
            subs.create(sid, SubscriptionConfig(wakeStream = wake, streams = listOf(path), leaseMs = 1000u))
            s.append("""{"n":1}""")
            s.append("""{"n":2}""")
        }
        val before = subs.get(sid).ackedOffset(path)
        val end = tail(path)

        val first = subs.claim(sid, "slow")
        assertEquals(path, first.streams.single().path)
        assertTrue(first.streams.single().hasPending)
        assertTrue("redacted" in first.toString())
        val claimed = assertFailsWith<AlreadyClaimedException> { subs.claim(sid, "other") }
        assertEquals("slow", claimed.currentHolder)
        delay(1600) // no heartbeat: the 1 s lease runs out
        val second = subs.claim(sid, "fast")
        assertTrue(second.generation > first.generation)

        val fenced = assertFailsWith<FencedException> { subs.ack(first, listOf(StreamAck(path, end)), done = true) }
        assertEquals("FENCED", fenced.code)
        assertEquals(409, fenced.status)
        assertEquals("FENCED", fenced.subscriptionCode)
        assertFalse(fenced.retryable)
        assertEquals(before, subs.get(sid).ackedOffset(path))

        assertTrue(subs.ack(second, listOf(StreamAck(path, end)), done = true).ok)
        assertEquals(end, subs.get(sid).ackedOffset(path))
        assertFailsWith<NoPendingWorkException> { subs.claim(sid, "fast") }
        subs.delete(sid)
    }

    @Test
    fun `a failing handler leaves the work pending and it is woken again`() = runBlocking<Unit> {
        val p = prefix("fail")
        val wake = "$p/wake"
        val path = "$p/s"
        jsonStream(wake).close()
        val sid = "sub-$p"
        jsonStream(path).use { s ->
            subs.create(sid, SubscriptionConfig(wakeStream = wake, streams = listOf(path), leaseMs = 1000u))
            s.append("""{"n":1}""")
        }
        val before = subs.get(sid).ackedOffset(path)
        val end = tail(path)
        val calls = mutableListOf<Pair<String, List<String>>>()
        val stop = CompletableDeferred<Unit>()
        val offset = withTimeout(20_000) {
            withContext(Dispatchers.Default) {
                // Stops once the second delivery is acked (stopping from inside the handler
                // would race with its ack).
                subs.worker(sid, "w", wake).run(until = { stop.await(); awaitAcked(sid, path, end) }) { item ->
                    calls += item.offset to item.messages
                    if (calls.size == 1) {
                        // Nothing is acked: the wake is released and woken again.
                        assertEquals(before, subs.get(sid).ackedOffset(path))
                        throw IllegalStateException("boom")
                    }
                    delay(1500) // past the 1 s lease: heartbeats keep it
                    stop.complete(Unit)
                }
            }
        }
        assertNotNull(offset)
        assertEquals(listOf(end to listOf("""{"n":1}"""), end to listOf("""{"n":1}""")), calls)
        awaitAcked(sid, path, end)
        subs.delete(sid)
    }

    @Test
    fun `the Flow form acks handled jobs and a stopped collection releases the wake`() = runBlocking<Unit> {
        val p = prefix("jobs")
        val wake = "$p/wake"
        val path = "$p/s"
        jsonStream(wake).close()
        val sid = "sub-$p"
        val s = jsonStream(path)
        subs.create(sid, SubscriptionConfig(wakeStream = wake, streams = listOf(path), leaseMs = 5000u))
        s.append("""{"n":1}""")
        val end = tail(path)
        val worker = subs.worker(sid, "q", wake)
        // Taken out with first() and not answered: the collection ends, the wake is released.
        val job = withTimeout(10_000) { worker.jobs().first() }
        assertEquals(Triple(path, end, listOf("""{"n":1}""")), Triple(job.item.stream, job.item.offset, job.item.messages))
        assertNotEquals(end, subs.get(sid).ackedOffset(path))
        // Released, so another worker can claim it at once (the lease is 5 s).
        val again = subs.claim(sid, "next")
        subs.ack(again, listOf(StreamAck(path, end)), done = true)
        assertEquals(end, subs.get(sid).ackedOffset(path))

        // A collector that returns normally acks the job.
        s.append("""{"n":2}""")
        val end2 = tail(path)
        withTimeout(10_000) {
            worker.jobs().take(1).collect { j ->
                assertEquals(listOf("""{"n":2}"""), j.item.messages)
                j.ack()
            }
        }
        awaitAcked(sid, path, end2)
        s.close()
        subs.delete(sid)
    }

    @Test
    fun `cancelling a running worker releases the wake it holds`() = runBlocking<Unit> {
        val p = prefix("cancel")
        val wake = "$p/wake"
        val path = "$p/s"
        jsonStream(wake).close()
        val sid = "sub-$p"
        jsonStream(path).use { s ->
            subs.create(sid, SubscriptionConfig(wakeStream = wake, streams = listOf(path), leaseMs = 10_000u))
            s.append("""{"n":1}""")
        }
        val before = subs.get(sid).ackedOffset(path)
        val entered = CompletableDeferred<Unit>()
        val running = async(Dispatchers.Default) {
            subs.worker(sid, "stuck", wake).run { _ ->
                entered.complete(Unit)
                delay(60_000)
            }
        }
        withTimeout(10_000) { entered.await() }
        running.cancel()
        runCatching { running.await() }
        assertTrue(running.isCancelled)
        // Released (the lease is 10 s): another worker claims at once, nothing was acked.
        val w = subs.claim(sid, "next")
        assertEquals(before, subs.get(sid).ackedOffset(path))
        subs.release(w)
        subs.delete(sid)
    }

    /** A webhook receiver on 127.0.0.1 that verifies each delivery as an application would. */
    private class Receiver(val verifier: WebhookVerifier) : AutoCloseable {
        @Volatile var answer: String = WEBHOOK_DONE
        val deliveries = LinkedBlockingQueue<Triple<String?, ByteArray, Any>>()
        private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
            createContext("/hook") { ex ->
                val body = ex.requestBody.readAllBytes()
                val result: Any = try {
                    runBlocking { verifier.verify(ex.requestHeaders, body) }
                } catch (e: InvalidSignatureException) {
                    e
                }
                deliveries.put(Triple(ex.requestHeaders.getFirst("Webhook-Signature"), body, result))
                val out = if (result is Wake) answer.encodeToByteArray() else ByteArray(0)
                ex.responseHeaders.add("Content-Type", "application/json")
                ex.sendResponseHeaders(if (result is Wake) 200 else 401, if (out.isEmpty()) -1 else out.size.toLong())
                ex.responseBody.use { it.write(out) }
            }
            start()
        }
        val url = "http://127.0.0.1:${server.address.port}/hook"

        fun next(): Triple<String?, ByteArray, Wake> {
            val (sig, body, result) = assertNotNull(deliveries.poll(10, TimeUnit.SECONDS), "no delivery")
            assertTrue(result is Wake, "$result")
            return Triple(sig, body, result)
        }

        override fun close() = server.stop(0)
    }

    @Test
    fun `webhooks are verified and answered synchronously and by callback`() = runBlocking<Unit> {
        val p = prefix("hook")
        val path = "$p/wh/a"
        val s = jsonStream(path)
        val sid = "sub-$p"
        Receiver(WebhookVerifier(subs.jwksUrl)).use { receiver ->
            val sub = subs.create(sid, SubscriptionConfig(webhookUrl = receiver.url, pattern = "$p/wh/*", leaseMs = 5000u)).subscription
            assertEquals("webhook", sub.kind)
            assertEquals(receiver.url, sub.webhookUrl)
            assertEquals(subs.jwksUrl, assertNotNull(sub.signing).jwksUrl)

            // Synchronous done: the receiver answers WEBHOOK_DONE.
            s.append("""{"n":1}""")
            val (_, _, wake1) = withContext(Dispatchers.IO) { receiver.next() }
            val end1 = tail(path)
            assertEquals(sid, wake1.subscriptionId)
            assertEquals(path to end1, wake1.streams.single().let { it.path to it.tailOffset })
            awaitAcked(sid, path, end1)

            // Asynchronous: answer {} now, call back later.
            receiver.answer = "{}"
            s.append("""{"n":2}""")
            val (sig, body, wake2) = withContext(Dispatchers.IO) { receiver.next() }
            assertNotNull(wake2.callbackUrl)
            val end2 = tail(path)
            val r = subs.callback(wake2, listOf(StreamAck(path, end2)), done = true)
            assertTrue(r.ok)
            assertFalse(r.nextWake)
            assertEquals(end2, subs.get(sid).ackedOffset(path))
            assertFailsWith<FencedException> { subs.callback(wake2, listOf(StreamAck(path, end2)), done = true) }

            // Rejections, each naming its check.
            val v = receiver.verifier
            suspend fun check(signature: String?, b: ByteArray, nowMs: Long? = null): String {
                val e = assertFailsWith<InvalidSignatureException> { v.verify(signature, b, nowMs) }
                assertEquals("INVALID_SIGNATURE", e.code)
                return e.check
            }
            assertNotNull(sig)
            assertEquals(wake2.wakeId, v.verify(sig, body).wakeId)
            val text = body.decodeToString()
            val tampered = text.replaceFirst("\"generation\":", "\"generation\": ").encodeToByteArray()
            assertNotEquals(text, tampered.decodeToString())
            assertEquals("bad_signature", check(sig, tampered))
            assertEquals("timestamp_out_of_window", check(sig, body, System.currentTimeMillis() + 600_000))
            val kid = sig.split(",").first { it.startsWith("kid=") }.removePrefix("kid=")
            assertEquals("unknown_key", check(sig.replace(kid, "ds_unknown"), body))
            assertEquals("missing_header", check(null, body))
            assertEquals("malformed_header", check("t=1", body))
            assertEquals("missing_header", assertFailsWith<InvalidSignatureException> { v.verify(emptyMap(), body) }.check)
        }
        s.close()
        subs.delete(sid)
    }
}
