package io.github.durablestreamsclient

import com.sun.jna.NativeLibrary

/**
 * The per-message append as a JNI function of the native library (bindings/ffi/src/fast.rs),
 * which the JVM calls directly: a few tens of nanoseconds where JNA's direct mapping of the same
 * C function ([FastCalls]) takes 130-150 converting its arguments.
 *
 * The JVM binds JNI functions only in libraries it loaded itself, so the library JNA loaded
 * (the same file) is loaded once more with [System.load]. When that is not possible (no file on
 * disk, the library already bound to another class loader, an older library without the
 * function), [available] is false and [FastCalls] serves.
 */
internal object JniCalls {
    /** Whether [tryAppend] can be called. */
    @JvmField
    val available: Boolean = bind()

    /**
     * Appends all of [data] to the producer in [slot] if there is room now: the message number,
     * or the codes of [FastCalls.dsc_producer_try_append] (a negative slot is nobody's).
     */
    @JvmStatic
    external fun tryAppend(slot: Long, data: ByteArray): Long

    private fun bind(): Boolean = try {
        val name = System.getProperty("uniffi.component.durable_streams_ffi.libraryOverride") ?: "durable_streams_ffi"
        val file = NativeLibrary.getInstance(name).file
        if (file == null) {
            false
        } else {
            System.load(file.absolutePath)
            // No producer has slot -1: the answer proves the function is there and bound.
            tryAppend(-1L, ByteArray(0)) == NO_PRODUCER
        }
    } catch (e: UnsatisfiedLinkError) {
        false
    } catch (e: SecurityException) {
        false
    }
}
