package io.github.durablestreamsclient

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.UUID
import java.util.concurrent.TimeUnit

/**
 * The reference server (tests/server/start.mjs), started once for the test run. It stops when
 * its stdin closes, so it also goes away if the JVM dies.
 */
object TestServer {
    private val root: File = File(System.getProperty("user.dir")).absoluteFile.parentFile

    private val process: Process by lazy {
        val ensure = ProcessBuilder("bash", "tests/server/ensure.sh")
            .directory(root).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
        check(ensure.waitFor(300, TimeUnit.SECONDS) && ensure.exitValue() == 0) { "tests/server/ensure.sh failed" }
        val p = ProcessBuilder("node", "tests/server/start.mjs", "--long-poll-ms", "1000", "--webhooks")
            .directory(root).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        Runtime.getRuntime().addShutdownHook(Thread { p.outputStream.close(); p.waitFor(5, TimeUnit.SECONDS) })
        p
    }

    /** The server's base URL, e.g. `http://127.0.0.1:34567`. */
    val url: String by lazy {
        process.inputStream.bufferedReader().readLine() ?: error("the test server printed no URL")
    }

    /** A fresh stream URL. */
    fun streamUrl(prefix: String = "kt"): String = "$url/v1/stream/$prefix-${UUID.randomUUID()}"

    /** Arms the server's fault hook for [streamUrl]'s path (`POST /_test/inject-error`). */
    fun injectFault(streamUrl: String, json: String) {
        val path = URI(streamUrl).path
        val body = """{"path":"$path",$json}"""
        val req = HttpRequest.newBuilder(URI("$url/_test/inject-error"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build()
        val resp = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString())
        check(resp.statusCode() in 200..299) { "inject-error answered ${resp.statusCode()}: ${resp.body()}" }
    }
}
