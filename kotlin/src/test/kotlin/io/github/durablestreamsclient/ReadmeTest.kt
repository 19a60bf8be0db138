package io.github.durablestreamsclient

import kotlinx.coroutines.runBlocking
import kotlin.test.Test
import kotlin.test.assertEquals

/** The README's snippet, with the server URL swapped for the test server's. */
class ReadmeTest {
    @Test
    fun `the README snippet runs`() = runBlocking {
        val url = TestServer.streamUrl("orders")
        val printed = mutableListOf<Any>()
        fun println(x: Any) = printed.add(x)

        DurableStream(url).use { stream ->
            stream.create(CreateOptions(contentType = "application/json"))
            stream.append("""{"id":1}""")
            stream.producer("orders-writer", ProducerOptions(autoClaim = true)).use { producer ->
                producer.append("""{"id":2}""")
                producer.flush()
                producer.detach()
            }
            stream.stream(ReadOptions(live = LiveMode.OFF)).use { println(it.json()) }
        }
        assertEquals(listOf<Any>(listOf("""{"id":1}""", """{"id":2}""")), printed)
    }
}
