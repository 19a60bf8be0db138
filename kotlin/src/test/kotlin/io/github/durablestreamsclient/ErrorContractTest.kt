package io.github.durablestreamsclient

import kotlinx.coroutines.runBlocking
import kotlin.reflect.KClass
import kotlin.test.assertFailsWith
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * The error contract: every code of the core maps to one public exception class with its
 * fields. The list of codes comes from the core; a code added there without a row here fails
 * [everyCoreCodeHasARow]. (Python's tests/test_errors.py and Node's test/errors.test.mjs walk
 * the same list.)
 */
class ErrorContractTest {
    private class Row(
        val cls: KClass<out DurableStreamException>,
        val status: Int?,
        val retryable: Boolean,
        val check: (DurableStreamException) -> Unit = {},
    )

    private val contract: Map<String, Row> = mapOf(
        "NOT_FOUND" to Row(StreamNotFoundException::class, 404, false),
        "CONFLICT_EXISTS" to Row(StreamExistsException::class, 409, false) {
            // The core's message says why: the existing stream is closed.
            assertTrue(it.reason.contains("the existing stream is closed"), it.reason)
        },
        "CONFLICT" to Row(ConflictException::class, 409, false),
        "CONFLICT_SEQ" to Row(ConflictException::class, 409, false),
        "STREAM_CLOSED" to Row(StreamClosedException::class, 409, false) {
            assertEquals("0000000000000042", (it as StreamClosedException).finalOffset)
        },
        "BAD_REQUEST" to Row(HttpStatusException::class, 400, false),
        "UNAUTHORIZED" to Row(HttpStatusException::class, 401, false),
        "FORBIDDEN" to Row(HttpStatusException::class, 403, false),
        "GONE" to Row(HttpStatusException::class, 410, false),
        "PAYLOAD_TOO_LARGE" to Row(HttpStatusException::class, 413, false),
        "RATE_LIMITED" to Row(RateLimitedException::class, 429, true) {
            assertIs<UnavailableException>(it)
            assertEquals(1500L, it.retryAfterMs)
        },
        "BUSY" to Row(UnavailableException::class, 503, true) {
            assertEquals(1500L, (it as UnavailableException).retryAfterMs)
        },
        "SERVER_ERROR" to Row(UnavailableException::class, 500, true) {
            assertNull((it as UnavailableException).retryAfterMs)
        },
        "UNEXPECTED_STATUS" to Row(HttpStatusException::class, 418, false),
        "STALE_EPOCH" to Row(StaleEpochException::class, 403, false) {
            it as StaleEpochException
            assertEquals(3uL to 7uL, it.epoch to it.currentEpoch)
            assertEquals("writer-1", it.producerId)
        },
        "SEQUENCE_GAP" to Row(SequenceGapException::class, 409, false) {
            it as SequenceGapException
            assertEquals(5uL to 9uL, it.expectedSeq to it.receivedSeq)
        },
        "PRODUCER_SESSION_CONFLICT" to Row(ProducerSessionConflictException::class, null, false) {
            it as ProducerSessionConflictException
            assertEquals(Triple("agent-7", 3uL, 41uL), Triple(it.producerId, it.epoch, it.serverSeq))
        },
        "NETWORK_ERROR" to Row(NetworkException::class, null, true),
        "TIMEOUT" to Row(RequestTimeoutException::class, null, true),
        "PARSE_ERROR" to Row(ParseException::class, null, false),
        "INVALID_ARGUMENT" to Row(InvalidArgumentException::class, null, false),
        "ALREADY_CONSUMED" to Row(InvalidStateException::class, null, false),
        "ALREADY_CLOSED" to Row(InvalidStateException::class, null, false),
        "CANCELLED" to Row(CancelledException::class, null, false),
        "BUFFER_FULL" to Row(BufferFullException::class, null, false) {
            assertIs<InvalidStateException>(it)
            it as BufferFullException
            assertEquals(Triple(10L, 60L, 64L), Triple(it.requested, it.buffered, it.limit))
        },
        "FENCED" to Row(FencedException::class, 409, false),
        "ALREADY_CLAIMED" to Row(AlreadyClaimedException::class, 409, false) {
            assertEquals("worker-2", (it as AlreadyClaimedException).currentHolder)
        },
        "NO_PENDING_WORK" to Row(NoPendingWorkException::class, 409, false),
        "INVALID_SIGNATURE" to Row(InvalidSignatureException::class, null, false) {
            assertTrue((it as InvalidSignatureException).check.isNotEmpty())
        },
    )

    @Test
    fun everyCoreCodeHasARow() {
        val codes = errorCodes()
        assertEquals(codes.size, codes.toSet().size)
        assertEquals(emptyList(), codes.filter { it !in contract }, "core error codes without a Kotlin mapping")
        assertEquals(emptyList(), contract.keys.filter { it !in codes }, "rows for codes the core no longer has")
    }

    @Test
    fun everyCodeMapsToItsClassAndFields() {
        for ((code, row) in contract) {
            val e = exceptionForCode(code)
            assertEquals(row.cls, e::class, code)
            assertEquals(code, e.code)
            assertEquals(row.status, e.status, code)
            assertEquals(row.retryable, e.retryable, code)
            assertTrue(e.reason.isNotEmpty(), code)
            assertEquals(e.reason, e.message, code)
            // The cause chain: the transport's or parser's error where the core's example has
            // one, null elsewhere; no example was retried.
            assertNull(e.attempts, code)
            when (code) {
                "NETWORK_ERROR" -> {
                    assertEquals(java.net.ConnectException::class, e.cause!!::class, code)
                    assertTrue(e.cause!!.message!!.contains("connection refused"), e.cause!!.message)
                }
                "PARSE_ERROR" -> {
                    assertEquals(IllegalArgumentException::class, e.cause!!::class, code)
                    assertTrue(e.cause!!.message!!.contains("line 1 column 2"), e.cause!!.message)
                }
                else -> assertNull(e.cause, code)
            }
            // Public class names, not the generated bindings' ones, in logs and stack traces.
            assertEquals("io.github.durablestreamsclient.${row.cls.simpleName}: ${e.reason}", e.toString())
            assertFalse(e.stackTraceToString().contains(".ffi.DurableStreamException"), code)
            row.check(e)
            // The details every class carries: the URL and the server's message where the
            // core's example has them, the subscription code for subscription refusals.
            val streamUrl = "http://127.0.0.1:1/v1/stream/example"
            val subsUrl = "http://127.0.0.1:1/v1/stream/__ds/subscriptions/example"
            val subscription = code in setOf("FENCED", "ALREADY_CLAIMED", "NO_PENDING_WORK")
            val refusals = setOf(
                "NOT_FOUND", "CONFLICT_EXISTS", "CONFLICT", "CONFLICT_SEQ", "BAD_REQUEST", "UNAUTHORIZED",
                "FORBIDDEN", "GONE", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", "BUSY", "SERVER_ERROR", "UNEXPECTED_STATUS",
            )
            val withUrl = refusals + setOf("STREAM_CLOSED", "NETWORK_ERROR")
            val expectedUrl = when {
                subscription -> subsUrl
                code in withUrl -> streamUrl
                else -> null
            }
            assertEquals(expectedUrl, e.url, code)
            assertEquals(if (subscription || code in refusals) "server says no" else null, e.serverMessage, code)
            assertEquals(if (subscription) code else null, e.subscriptionCode, code)
        }
    }

    @Test
    fun aRetriedCodeKeepsItsClassAndFieldsWithTheLastAttemptAsCause() {
        for ((code, row) in contract) {
            val plain = exceptionForCode(code)
            val e = exceptionForCode(code, retried = true)
            assertEquals(row.cls, e::class, code)
            assertEquals(listOf(code, row.status, row.retryable, 3), listOf(e.code, e.status, e.retryable, e.attempts), code)
            assertEquals(listOf(plain.url, plain.serverMessage, plain.subscriptionCode), listOf(e.url, e.serverMessage, e.subscriptionCode), code)
            row.check(e)
            assertEquals("${plain.reason} (gave up after 3 attempts)", e.reason, code)
            val last = e.cause
            assertIs<DurableStreamException>(last, code)
            assertEquals(row.cls, last::class, code)
            assertEquals(plain.reason, last.reason, code)
            assertNull(last.attempts, code)
            assertEquals(plain.cause?.let { it::class }, last.cause?.let { it::class }, code)
            row.check(last)
        }
    }

    @Test
    fun anUnknownCodeIsAnInvalidArgument() {
        val e = exceptionForCode("NO_SUCH_CODE")
        assertIs<InvalidArgumentException>(e)
        assertTrue(e.reason.contains("NO_SUCH_CODE"), e.reason)
    }

    private fun closedPort(): Int = java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1")).use { it.localPort }

    private val fast = RetryOptions(initialDelayMs = 5.0, maxDelayMs = 10.0, multiplier = 2.0, maxRetries = 2)

    @Test
    fun theCauseChainOfARefusedConnection() = runBlocking<Unit> {
        val url = "http://127.0.0.1:${closedPort()}/v1/stream/nothing-listens"
        DurableStream(url, StreamOptions(retry = RetryOptions(maxRetries = 0))).use { s ->
            val e = assertFailsWith<NetworkException> { s.head() }
            assertEquals(listOf("NETWORK_ERROR", null, true, null), listOf(e.code, e.status, e.retryable, e.attempts))
            assertEquals(url, e.url)
            val root = assertIs<java.net.ConnectException>(e.cause)
            assertTrue(root.message!!.lowercase().contains("refused"), root.message)
        }
        DurableStream(url, StreamOptions(retry = fast)).use { s ->
            val e = assertFailsWith<NetworkException> { s.head() }
            assertEquals(3, e.attempts)
            assertTrue(e.reason.endsWith("(gave up after 3 attempts)"), e.reason)
            val last = assertIs<NetworkException>(e.cause)
            assertEquals(listOf("NETWORK_ERROR", null), listOf(last.code, last.attempts))
            assertFalse(last.reason.endsWith("attempts)"), last.reason)
            assertIs<java.net.ConnectException>(last.cause)
            assertTrue(e.stackTraceToString().contains("Caused by: java.net.ConnectException"))
        }
    }

    @Test
    fun theCauseChainOfA503UntilTheRetriesRunOut() = runBlocking<Unit> {
        val url = TestServer.streamUrl("kt-busy")
        DurableStream(url, StreamOptions(retry = fast)).use { s ->
            s.create("application/json")
            TestServer.injectFault(url, """"status":503,"count":10,"method":"HEAD"""")
            val e = assertFailsWith<UnavailableException> { s.head() }
            assertEquals(listOf("BUSY", 503, true, 3), listOf(e.code, e.status, e.retryable, e.attempts))
            assertEquals(url, e.url)
            val last = assertIs<UnavailableException>(e.cause)
            assertEquals(listOf("BUSY", 503, null), listOf(last.code, last.status, last.attempts))
            assertNull(last.cause)
        }
    }

    @Test
    fun aCauseIsKeptAndPrinted() {
        val root = IllegalStateException("token service down")
        val e = UnavailableException("could not refresh", "SERVER_ERROR", 500, null, root)
        assertEquals(root, e.cause)
        assertTrue(e.retryable)
        assertTrue(e.stackTraceToString().contains("Caused by: java.lang.IllegalStateException: token service down"))
    }
}
