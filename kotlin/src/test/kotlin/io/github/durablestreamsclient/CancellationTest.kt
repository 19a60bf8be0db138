package io.github.durablestreamsclient

import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.launch
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.measureTime
import kotlin.time.Duration.Companion.milliseconds

/** Cancelling a coroutine drops the Rust future: the call returns at once, not when the server answers. */
class CancellationTest {
    @Test
    fun `a delayed request cancelled after 100 ms returns promptly`() = runBlocking {
        val url = TestServer.streamUrl("cancel")
        DurableStream(url).use { s ->
            s.create("text/plain")
            TestServer.injectFault(url, """"delayMs":3000,"method":"HEAD"""")
            val took = measureTime {
                assertFailsWith<TimeoutCancellationException> { withTimeout(100) { s.head() } }
            }
            assertTrue(took < 1000.milliseconds, "cancellation took $took")
            // The handle is still usable, and the fault was used up by the cancelled request.
            val again = measureTime { assertEquals("text/plain", s.head().contentType) }
            assertTrue(again < 2000.milliseconds, "the next request took $again")
        }
    }

    @Test
    fun `cancelling the collector of a live read stops it`() = runBlocking {
        DurableStream(TestServer.streamUrl("cancel")).use { s ->
            s.create("text/plain")
            val response = s.stream(ReadOptions(live = LiveMode.LONG_POLL))
            val job = launch { response.batches().collect { } }
            delay(200)
            val took = measureTime { job.cancel(); job.join() }
            assertTrue(took < 1000.milliseconds, "cancellation took $took")
            response.close()
        }
    }
}
