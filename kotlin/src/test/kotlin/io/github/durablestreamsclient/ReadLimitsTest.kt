package io.github.durablestreamsclient

import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.runBlocking
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** The read limits (maxChunkBytes, maxReadBytes) through the Kotlin layer, against the real server. */
class ReadLimitsTest {
    @Test
    fun `a Flow read is incremental and bounded while the accumulating form hits its limit`() = runBlocking<Unit> {
        val chunk = 64 * 1024
        // 2 MiB in 32 appends of 64 KiB, each a recognisable pattern.
        val parts = (0 until 32).map { i -> ByteArray(chunk) { j -> ((i * 7 + j) % 251).toByte() } }
        val all = parts.fold(ByteArray(0)) { acc, p -> acc + p }
        DurableStream(TestServer.streamUrl("kt-limits")).use { s ->
            s.create("application/octet-stream")
            parts.forEach { s.append(it) }

            val options = ReadOptions(live = LiveMode.OFF, maxChunkBytes = chunk.toULong(), maxReadBytes = (256 * 1024).toULong())
            val sizes = mutableListOf<Int>()
            val out = java.io.ByteArrayOutputStream()
            s.stream(options).use { r ->
                r.batches().collect { b ->
                    sizes += b.data.size
                    out.write(b.data)
                }
            }
            assertContentEquals(all, out.toByteArray())
            // Handed over piece by piece: at most about maxChunkBytes each (one network read over).
            assertTrue(sizes.count { it > 0 } >= all.size / (2 * chunk + (1 shl 20)) + 2, "$sizes")
            assertTrue(sizes.max() < 2 * chunk + (1 shl 20), "$sizes")

            // The accumulating forms stop at maxReadBytes with an error naming it.
            val e = assertFailsWith<ParseException> { s.stream(options).use { it.bytes() } }
            assertTrue("max_read_bytes (262144 bytes)" in e.reason, e.reason)
            assertEquals("PARSE_ERROR", e.code)
            // Raised above the stream's size, they read it all.
            s.stream(options.copy(maxReadBytes = (4 shl 20).toULong())).use { assertContentEquals(all, it.bytes()) }
        }
    }

    @Test
    fun `a JSON message larger than maxChunkBytes fails with an error naming it`() = runBlocking<Unit> {
        DurableStream(TestServer.streamUrl("kt-limits"), StreamOptions(contentType = "application/json")).use { s ->
            s.create("application/json")
            s.append("""{"big":"${"x".repeat(4096)}"}""")
            val options = ReadOptions(live = LiveMode.OFF, maxChunkBytes = 1024u)
            val e = assertFailsWith<ParseException> { s.stream(options).use { r -> r.jsonBatches().collect { } } }
            assertTrue("max_chunk_bytes (1024 bytes)" in e.reason, e.reason)
            // Unset reaches the core unset; zero gets the core's error, naming the option.
            val zero = assertFailsWith<InvalidArgumentException> { s.stream(ReadOptions(maxChunkBytes = 0u)) }
            assertTrue("max_chunk_bytes (maxChunkBytes) must be at least 1 byte" in zero.reason, zero.reason)
            val zeroRead = assertFailsWith<InvalidArgumentException> { s.stream(ReadOptions(maxReadBytes = 0u)) }
            assertTrue("max_read_bytes (maxReadBytes) must be at least 1 byte" in zeroRead.reason, zeroRead.reason)
        }
    }
}
