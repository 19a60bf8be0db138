package io.github.durablestreamsclient

import com.sun.jna.JNIEnv

/**
 * The per-message append, and the batch form's runs, as plain native methods of the library
 * (bindings/ffi/src/fast.rs), which the JVM calls directly, without the 130-150 ns that JNA's
 * direct mapping of the same C functions ([FastCalls]) spends converting (and copying) the
 * arguments of every call (BENCHMARKS.md, round 9).
 *
 * The JVM binds native methods by name only in libraries it loaded itself, and JNA loads this
 * one (from a file it deletes once loaded), so the library registers them itself when
 * asked through JNA ([FastCalls.dsc_register_jni]): from the very copy whose producers the other
 * calls reach. When that fails (an older library, a class loader that cannot see this class),
 * or when the system property `io.github.durablestreamsclient.jni` is `false`, [available] is
 * false and [FastCalls] serves.
 */
internal object JniCalls {
    /** Whether [tryAppend] and [tryAppendRun] can be called. */
    @JvmField
    val available: Boolean = bind()

    /**
     * Appends all of [data] to the producer in [slot] if there is room now: the message number,
     * or the codes of [FastCalls.dsc_producer_try_append] (a negative slot is nobody's).
     */
    @JvmStatic
    external fun tryAppend(slot: Long, data: ByteArray): Long

    /**
     * Appends [messages] in order while there is room now ([bytes] is their total size): the
     * answers of [FastCalls.dsc_producer_try_append_many], without packing them first.
     */
    @JvmStatic
    external fun tryAppendRun(slot: Long, messages: Array<ByteArray>, bytes: Int): Long

    private fun bind(): Boolean {
        if (System.getProperty("io.github.durablestreamsclient.jni") == "false") return false
        return try {
            // No producer has slot -1: the answer proves the methods are bound.
            FastCalls.dsc_register_jni(JNIEnv.CURRENT) == 0 && tryAppend(-1L, ByteArray(0)) == NO_PRODUCER
        } catch (e: UnsatisfiedLinkError) {
            false
        }
    }
}
