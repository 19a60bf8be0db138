package io.github.durablestreamsclient

import java.util.Collections
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import kotlin.coroutines.Continuation
import kotlin.coroutines.EmptyCoroutineContext
import kotlin.coroutines.startCoroutine
import kotlin.test.Test
import kotlin.test.assertTrue

class ThreadsTest {
    @Test
    fun `a coroutine without a dispatcher goes on running on JVM threads, not inside native callbacks`() {
        // What `suspend fun main` does: no dispatcher, so whichever thread resumes the
        // coroutine runs the rest of it.
        val threads = Collections.synchronizedList(mutableListOf<String>())
        val done = CompletableFuture<Unit>()
        val body: suspend () -> Unit = {
            DurableStream(TestServer.streamUrl("threads")).use { s ->
                s.create("application/json")
                threads.add(Thread.currentThread().name)
                s.append("""{"n":1}""")
                threads.add(Thread.currentThread().name)
                s.stream(ReadOptions(live = LiveMode.OFF)).use { r ->
                    r.jsonBatches().collect { threads.add(Thread.currentThread().name) }
                }
            }
        }
        body.startCoroutine(Continuation(EmptyCoroutineContext) { done.complete(it.getOrThrow()) })
        done.get(30, TimeUnit.SECONDS)
        assertTrue(threads.size >= 3, "$threads")
        // Resumed by a native callback, the coroutine would run on a thread JNA attached
        // ("Thread-N"); it runs on the dispatcher's instead, or goes on on "main" when the call
        // on the dispatcher finished before the caller suspended (withContext then returns
        // without a thread switch: seen when the server answers quickly).
        assertTrue(threads.all { it == "main" || it.startsWith("DefaultDispatcher-worker") }, "$threads")
        assertTrue(threads.any { it.startsWith("DefaultDispatcher-worker") }, "$threads")
    }
}
