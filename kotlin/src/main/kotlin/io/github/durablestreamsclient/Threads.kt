package io.github.durablestreamsclient

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.withContext
import kotlin.coroutines.ContinuationInterceptor

/**
 * Runs a native suspend call so that the calling coroutine resumes on a JVM thread.
 *
 * The native library completes a call by invoking a JNA callback on one of its own (tokio)
 * threads, and that callback resumes the waiting coroutine. A coroutine with a dispatcher is
 * only scheduled there; one without (`suspend fun main`, `Dispatchers.Unconfined`) would go on
 * running inside the callback, on the native thread: the caller's code would hold up the client's
 * I/O threads, and its next native call could complete within the first callback, where JNA then
 * fails to detach a thread that is still running Java code ("JNA: could not detach thread" on
 * stderr). Such coroutines make their native calls from `Dispatchers.Default` instead.
 *
 * The generated bindings' errors become the public exception classes ([toPublic]).
 */
internal suspend fun <T> native(call: suspend () -> T): T {
    val context = currentCoroutineContext()
    val interceptor = context[ContinuationInterceptor]
    val inline = interceptor == null ||
        (interceptor is CoroutineDispatcher && !interceptor.isDispatchNeeded(context))
    return try {
        if (inline) withContext(Dispatchers.Default) { call() } else call()
    } catch (e: io.github.durablestreamsclient.ffi.DurableStreamException) {
        throw e.toPublic()
    }
}
