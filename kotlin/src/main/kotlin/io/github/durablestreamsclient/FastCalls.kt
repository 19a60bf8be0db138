package io.github.durablestreamsclient

import com.sun.jna.JNIEnv
import com.sun.jna.Native

/**
 * The plain C functions of the native library (bindings/ffi/src/fast.rs), called through JNA's
 * direct mapping: no call-status structure and no returned object, so about a microsecond per
 * call where a uniffi call costs tens (BENCHMARKS.md, "Round 7").
 */
internal object FastCalls {
    init {
        // The library uniffi loads, under the same name (and the same override property).
        Native.register(
            FastCalls::class.java,
            System.getProperty("uniffi.component.durable_streams_ffi.libraryOverride") ?: "durable_streams_ffi",
        )
    }

    /**
     * Appends `len` bytes of `data` to the producer in `slot` if there is room now: the message
     * number, or -1 (buffer full), -2 (another failure), -3 (no such producer).
     */
    @JvmStatic
    external fun dsc_producer_try_append(slot: Long, data: ByteArray, len: Long): Long

    /**
     * Registers the native methods of [JniCalls] from this copy of the library: 0 when done,
     * negative otherwise. JNA passes [env] as the calling thread's JNI environment.
     */
    @JvmStatic
    external fun dsc_register_jni(env: JNIEnv): Int

    /**
     * Appends the `count` messages packed in `data` (message k ends at `ends[k]`) while there is
     * room now: how many were appended, or -2 (the first failed for another reason), -3 (no
     * such producer), -4 (malformed arguments).
     */
    @JvmStatic
    external fun dsc_producer_try_append_many(slot: Long, data: ByteArray, len: Long, ends: IntArray, count: Long): Long
}
