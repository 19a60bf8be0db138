package io.github.durablestreamsclient

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.util.concurrent.Executor
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * A dispatcher that runs its coroutines' steps only when the test says so. A native call's
 * completion shows up as a queued step (the coroutine waiting to resume with the result), so a
 * test can cancel the coroutine exactly between the two: the generated code then drops the
 * finished result and throws CancellationException.
 */
class Gate {
    private val steps = LinkedBlockingQueue<Runnable>()
    val dispatcher = Executor { steps.put(it) }.asCoroutineDispatcher()

    /** Runs queued steps until none is left: the coroutines are then suspended (or done). */
    fun drain() {
        while (true) (steps.poll() ?: return).run()
    }

    /** Runs the steps queued now, not those queued meanwhile (a native call finishing). */
    fun runQueued() {
        repeat(steps.size) { steps.poll()?.run() }
    }

    /** Waits (without running it) until a step is queued: a native call finished. */
    fun awaitStep() {
        val step = assertNotNull(steps.poll(10, TimeUnit.SECONDS), "no native call finished within 10 s")
        steps.put(step)
    }

    /** Cancels [job] while its resumption waits in the queue, then lets it finish. */
    fun cancelAsItResumes(job: Job) {
        awaitStep()
        job.cancel()
        drain()
        assertTrue(job.isCancelled && job.isCompleted)
    }
}

/** Reads whose coroutine is cancelled just as the native read hands its data over. */
class CancelRaceTest {
    private suspend fun resumed(s: DurableStream, offset: String): String =
        s.stream(ReadOptions(offset = offset, live = LiveMode.OFF)).use { it.text() }

    @Test
    fun `a batch read as its collector is cancelled is read again from offset`() = runBlocking {
        val gate = Gate()
        DurableStream(TestServer.streamUrl("kt-race")).use { s ->
            s.create("text/plain")
            s.append("a")
            s.stream(ReadOptions(live = LiveMode.LONG_POLL)).use { response ->
                val seen = mutableListOf<String>()
                var afterA = ""
                val job = launch(gate.dispatcher) {
                    response.textBatches().collect {
                        seen += it.text
                        afterA = it.position.offset
                    }
                }
                while (seen.isEmpty()) {
                    gate.awaitStep()
                    gate.drain()
                }
                // The collector has "a" and waits for more (long-poll); "b" arrives, and the
                // collector is cancelled before it resumes with it.
                s.append("b")
                gate.cancelAsItResumes(job)
                assertEquals(listOf("a"), seen)
                assertEquals(afterA, response.offset)
                assertEquals("b", resumed(s, response.offset))
            }
        }
    }

    @Test
    fun `a nextBatch cancelled as it completes leaves offset before its data`() = runBlocking {
        val gate = Gate()
        DurableStream(TestServer.streamUrl("kt-race")).use { s ->
            s.create("text/plain")
            s.append("a")
            s.stream(ReadOptions(live = LiveMode.LONG_POLL)).use { response ->
                val first = assertNotNull(response.nextTextBatch())
                assertEquals("a", first.text)
                assertEquals(first.position.offset, response.offset)
                var second: TextBatch? = null
                val job = launch(gate.dispatcher) { second = response.nextTextBatch() }
                gate.drain()
                s.append("b")
                gate.cancelAsItResumes(job)
                assertNull(second)
                assertEquals(first.position.offset, response.offset)
                assertEquals("b", resumed(s, response.offset))
            }
        }
    }

    /**
     * Starts [read] on a fresh response of [s] and cancels it as its result comes back; returns
     * that response. A read whose data is all there already can finish without ever suspending,
     * leaving nothing to race with: such an attempt is repeated.
     */
    private suspend fun CoroutineScope.cancelledAsItCompletes(s: DurableStream, read: suspend StreamResponse.() -> Any): StreamResponse {
        repeat(20) {
            val response = s.stream(ReadOptions(live = LiveMode.OFF))
            val gate = Gate()
            var got: Any? = null
            val job = launch(gate.dispatcher) { got = response.read() }
            gate.runQueued()
            if (!job.isActive) {
                response.close()
                return@repeat
            }
            gate.cancelAsItResumes(job)
            assertNull(got)
            return response
        }
        fail("every read finished without suspending")
    }

    @Test
    fun `a whole read cancelled as it completes leaves offset at the start`() = runBlocking {
        DurableStream(TestServer.streamUrl("kt-race")).use { s ->
            s.create("application/json")
            // About 1 MiB: 20 messages, each an array of 1000 objects.
            val messages = (0 until 20).map { m ->
                (0 until 1000).joinToString(",", "[", "]") { """{"n":${m * 1000 + it},"pad":"${"x".repeat(40)}"}""" }
            }
            messages.forEach { s.append(it) }
            val whole = resumed(s, "-1")
            val reads: List<suspend StreamResponse.() -> Any> =
                listOf({ bytes() }, { text() }, { json() }, { jsonArrays() }, { jsonArrays("n") })
            for (read in reads) {
                cancelledAsItCompletes(s, read).use { response ->
                    assertEquals("-1", response.offset)
                    assertTrue(!response.upToDate)
                    assertEquals(whole, resumed(s, response.offset))
                }
            }
            // Not cancelled: the offset is after everything returned, as always.
            s.stream(ReadOptions(live = LiveMode.OFF)).use { response ->
                val all = response.json()
                assertEquals(messages.size, all.size)
                assertTrue(messages == all, "the messages differ")
                assertTrue(response.upToDate)
                val rest = s.stream(ReadOptions(offset = response.offset, live = LiveMode.OFF)).use { it.json() }
                assertEquals(emptyList(), rest)
            }
        }
    }

    @Test
    fun `jsonItems moves offset past a batch with its last message`() = runBlocking {
        DurableStream(TestServer.streamUrl("kt-race")).use { s ->
            s.create("application/json")
            for (n in 1..3) s.append("""{"n":$n}""")
            s.stream(ReadOptions(live = LiveMode.OFF)).use { response ->
                val offsets = mutableListOf<String>()
                response.jsonItems().collect { offsets += response.offset }
                assertEquals(listOf("-1", "-1"), offsets.take(2))
                assertEquals(response.offset, offsets[2])
                assertTrue(response.upToDate)
            }
        }
    }
}
