//! `dsc_producer_try_append(slot, data, len)`: the per-message append of the Kotlin package,
//! as a plain C function beside the uniffi ones, and the same append as a native method of the
//! Kotlin package's `JniCalls`, which the JVM calls without JNA.
//!
//! Every uniffi call from Kotlin allocates a JNA `Structure` for its call status and copies it
//! to and from native memory by reflection, and a returned object is one more such call plus a
//! cleaner: tens of microseconds per append (BENCHMARKS.md, "Round 7"). This function takes
//! the bytes and a small number and returns a number, so JNA's direct mapping calls it with no
//! structure at all. A failure returns a negative code and the Kotlin side repeats the append
//! through uniffi, which gives the full error (a failed append appended nothing, so repeating it
//! cannot append twice).
//!
//! The producer is named by a slot number in a process-wide table (a number cannot point at
//! freed or foreign memory; an unknown slot is an error code). A producer takes a slot when
//! Kotlin first asks for it and gives it back when its uniffi object is freed. Slots are never
//! reused: a Kotlin producer used after `close()` still holds its old number, which must find
//! nothing rather than another producer.

// The unsafe blocks read the caller's bytes (a pointer, or a Java array through JNI).
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock};

use durable_streams_client as core;

/// The producers by slot.
static TABLE: LazyLock<RwLock<HashMap<u64, core::IdempotentProducer>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The next slot to hand out.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The append failed because the buffer is full (`BUFFER_FULL`).
pub const BUFFER_FULL: i64 = -1;
/// The append failed for another reason (the uniffi call says which).
pub const FAILED: i64 = -2;
/// No producer in that slot.
pub const NO_PRODUCER: i64 = -3;
/// The arguments do not describe `count` messages inside `data`.
pub const MALFORMED: i64 = -4;

/// Puts `producer` in the table; returns its slot.
pub(crate) fn register(producer: core::IdempotentProducer) -> u64 {
    let slot = NEXT.fetch_add(1, Ordering::Relaxed);
    TABLE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(slot, producer);
    slot
}

/// Empties `slot`.
pub(crate) fn unregister(slot: u64) {
    TABLE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&slot);
}

/// Appends `len` bytes at `data` to the producer in `slot` if there is room now: the message
/// number (0 or more), or [`BUFFER_FULL`], [`FAILED`] or [`NO_PRODUCER`].
///
/// # Safety
///
/// `data` points at `len` readable bytes (or `len` is 0), which stay unchanged during the call.
#[no_mangle]
pub unsafe extern "C" fn dsc_producer_try_append(slot: u64, data: *const u8, len: usize) -> i64 {
    // SAFETY: the caller's promise, passed on.
    let bytes = unsafe { slice_at(data, len) };
    try_append_in(slot, bytes)
}

/// The per-message append's answer (see [`dsc_producer_try_append`]).
fn try_append_in(slot: u64, bytes: &[u8]) -> i64 {
    with_producer(slot, |p| match p.try_append_numbered(bytes) {
        Ok(no) => i64::try_from(no).unwrap_or(FAILED),
        Err(core::Error::BufferFull { .. }) => BUFFER_FULL,
        Err(_) => FAILED,
    })
}

/// `JniCalls.tryAppend(slot, data)` of the Kotlin package: [`dsc_producer_try_append`] of a
/// whole Java `byte[]`, called by the JVM as a native method (registered by
/// [`dsc_register_jni`]). A JNA direct call of the C function costs about 130-150 ns, converting
/// its arguments every time; this one is a plain native method call. The bytes are copied out
/// of the array into this thread's buffer (`GetByteArrayRegion`), not pinned, so the garbage
/// collector is never held up while the producer takes its lock. A negative `slot` is no
/// producer's.
///
/// # Safety
///
/// Called by the JVM only: `env` is the calling thread's JNI environment and `data` a local
/// reference to a `byte[]` (or null).
unsafe extern "system" fn jni_try_append(
    env: *mut jni_sys::JNIEnv,
    _class: jni_sys::jclass,
    slot: jni_sys::jlong,
    data: jni_sys::jbyteArray,
) -> jni_sys::jlong {
    if env.is_null() || data.is_null() {
        return FAILED;
    }
    let Ok(slot) = u64::try_from(slot) else {
        return NO_PRODUCER;
    };
    with_buffer(|buf| {
        buf.data.clear();
        // SAFETY: `env` and `data` as the caller promises.
        if !unsafe { copy_array(env, data, &mut buf.data) } {
            return FAILED;
        }
        try_append_in(slot, &buf.data)
    })
}

/// `JniCalls.tryAppendRun(slot, messages, bytes)` of the Kotlin package:
/// [`dsc_producer_try_append_many`] of a Java `byte[][]` (`bytes` is their total size, a hint
/// for the buffer). Each array is copied once, into this thread's buffer, with no packing on
/// the Kotlin side and no conversion of arguments. Same answers; a null element is [`MALFORMED`].
///
/// # Safety
///
/// Called by the JVM only: `env` is the calling thread's JNI environment and `messages` a local
/// reference to a `byte[][]` (or null).
unsafe extern "system" fn jni_try_append_run(
    env: *mut jni_sys::JNIEnv,
    _class: jni_sys::jclass,
    slot: jni_sys::jlong,
    messages: jni_sys::jobjectArray,
    bytes: jni_sys::jint,
) -> jni_sys::jlong {
    if env.is_null() || messages.is_null() {
        return MALFORMED;
    }
    let Ok(slot) = u64::try_from(slot) else {
        return NO_PRODUCER;
    };
    // SAFETY: `env` is the JVM's environment for this thread (the caller's promise); its
    // function table lives as long as the JVM.
    let jni = unsafe { &(**env).v1_1 };
    // SAFETY: `messages` is a live array reference (the caller's promise).
    let count = unsafe { (jni.GetArrayLength)(env, messages) };
    with_buffer(|run| {
        run.data.clear();
        run.ends.clear();
        run.data.reserve(usize::try_from(bytes).unwrap_or(0));
        for k in 0..count.max(0) {
            // SAFETY: `k` is within the array; the element is a local reference, or null.
            let m = unsafe { (jni.GetObjectArrayElement)(env, messages, k) };
            if m.is_null() {
                return MALFORMED;
            }
            // SAFETY: `m` is a live `byte[]` reference (the array's declared element type).
            let copied = unsafe { copy_array(env, m, &mut run.data) };
            // SAFETY: `m` is a local reference made above, no longer used.
            unsafe { (jni.DeleteLocalRef)(env, m) };
            if !copied {
                return MALFORMED;
            }
            run.ends.push(run.data.len());
        }
        let mut pieces = Vec::with_capacity(run.ends.len());
        let mut start = 0;
        for &end in &run.ends {
            pieces.push(&run.data[start..end]);
            start = end;
        }
        try_append_pieces(slot, &pieces)
    })
}

/// Appends the bytes of the Java array `array` to `into`, written straight into its spare room
/// (no zeroing first); false, with `into` unchanged and no exception pending, if the JVM
/// refused.
///
/// # Safety
///
/// `env` is the calling thread's JNI environment and `array` a live `byte[]` reference.
unsafe fn copy_array(
    env: *mut jni_sys::JNIEnv,
    array: jni_sys::jbyteArray,
    into: &mut Vec<u8>,
) -> bool {
    // SAFETY: `env` is the JVM's environment for this thread (the caller's promise); its
    // function table lives as long as the JVM (JNI 1.2 for `ExceptionCheck`: any JVM since 1.2).
    let jni = unsafe { &(**env).v1_2 };
    // SAFETY: `array` is a live `byte[]` reference (the caller's promise).
    let len = unsafe { (jni.GetArrayLength)(env, array) };
    let Ok(n) = usize::try_from(len) else {
        return false;
    };
    if n == 0 {
        return true;
    }
    into.reserve(n);
    let start = into.len();
    // SAFETY: `reserve` made room for `n` more bytes after `start`; the region is the whole
    // array, so the JVM writes all `n` of them (or throws, checked below).
    unsafe {
        (jni.GetByteArrayRegion)(env, array, 0, len, into.as_mut_ptr().add(start).cast());
    }
    // SAFETY: as above.
    if unsafe { (jni.ExceptionCheck)(env) } != jni_sys::JNI_FALSE {
        // SAFETY: clears the exception the JVM left pending.
        unsafe { (jni.ExceptionClear)(env) };
        return false;
    }
    // SAFETY: the JVM wrote the `n` bytes after `start`, within the capacity.
    unsafe { into.set_len(start + n) };
    true
}

/// `f` with this thread's copy buffer, which is dropped afterwards if a large message grew it
/// past [`BUFFER_KEEP`] (a run is about 1 MiB plus its last message; a message may be larger).
fn with_buffer(f: impl FnOnce(&mut Run) -> i64) -> i64 {
    RUN.with_borrow_mut(|run| {
        let answer = f(run);
        if run.data.capacity() > BUFFER_KEEP {
            *run = Run::default();
        }
        answer
    })
}

/// The most buffer a thread keeps between calls.
const BUFFER_KEEP: usize = 4 << 20;

/// The bytes copied out of Java arrays (one message, or a run) and where each message of a run
/// ends, reused by [`jni_try_append`] and [`jni_try_append_run`] on each thread.
#[derive(Default)]
struct Run {
    data: Vec<u8>,
    ends: Vec<usize>,
}

thread_local! {
    static RUN: std::cell::RefCell<Run> = std::cell::RefCell::new(Run::default());
}

/// Makes [`jni_try_append`] and [`jni_try_append_run`] the native methods `JniCalls.tryAppend`
/// and `JniCalls.tryAppendRun` of the Kotlin package;
/// 0 when done, negative otherwise (and no Java exception is left pending).
///
/// The JVM binds a class's native methods by name only in libraries it loaded itself, and the
/// library the package uses is loaded by JNA (from a file JNA deletes once loaded), so the
/// method is registered explicitly, from this copy of the library: the copy whose producer table
/// the other calls use. Called through JNA, which passes the calling thread's JNI environment;
/// `FindClass` then searches the class loader of the calling class (`FastCalls`), which also
/// defined `JniCalls`.
///
/// # Safety
///
/// `env` is the calling thread's JNI environment (JNA's `JNIEnv.CURRENT`).
#[no_mangle]
pub unsafe extern "C" fn dsc_register_jni(env: *mut jni_sys::JNIEnv) -> i32 {
    if env.is_null() {
        return -1;
    }
    // SAFETY: as in `jni_try_append`.
    let jni = unsafe { &(**env).v1_1 };
    // SAFETY: a NUL-terminated class name, on the thread `env` belongs to.
    let class =
        unsafe { (jni.FindClass)(env, c"io/github/durablestreamsclient/JniCalls".as_ptr()) };
    if class.is_null() {
        // SAFETY: clears the NoClassDefFoundError FindClass left pending.
        unsafe { (jni.ExceptionClear)(env) };
        return -2;
    }
    let methods = [
        jni_sys::JNINativeMethod {
            name: c"tryAppend".as_ptr().cast_mut(),
            signature: c"(J[B)J".as_ptr().cast_mut(),
            fnPtr: jni_try_append as *mut std::ffi::c_void,
        },
        jni_sys::JNINativeMethod {
            name: c"tryAppendRun".as_ptr().cast_mut(),
            signature: c"(J[[BI)J".as_ptr().cast_mut(),
            fnPtr: jni_try_append_run as *mut std::ffi::c_void,
        },
    ];
    // SAFETY: `class` is a live local reference and `methods` describes functions of the
    // signatures given; the JVM copies what it needs.
    let registered = unsafe { (jni.RegisterNatives)(env, class, methods.as_ptr(), 2) };
    if registered != 0 {
        // SAFETY: clears the NoSuchMethodError RegisterNatives left pending.
        unsafe { (jni.ExceptionClear)(env) };
    }
    // SAFETY: `class` is a local reference this function made.
    unsafe { (jni.DeleteLocalRef)(env, class) };
    if registered == 0 {
        0
    } else {
        -3
    }
}

/// The `len` items at `data`; empty when `len` is 0 or `data` is null.
///
/// # Safety
///
/// Otherwise `data` points at `len` readable items, unchanged while the slice is used.
unsafe fn slice_at<'a, T>(data: *const T, len: usize) -> &'a [T] {
    if len == 0 || data.is_null() {
        &[]
    } else {
        // SAFETY: the caller promises `len` readable items at `data`.
        unsafe { std::slice::from_raw_parts(data, len) }
    }
}

/// `f` of the producer in `slot`, or [`NO_PRODUCER`].
fn with_producer(slot: u64, f: impl FnOnce(&core::IdempotentProducer) -> i64) -> i64 {
    let t = TABLE.read().unwrap_or_else(|e| e.into_inner());
    t.get(&slot).map_or(NO_PRODUCER, f)
}

/// Appends, in order and while there is room now, the `count` messages packed in the `len`
/// bytes at `data`: message `k` ends at `ends[k]` and starts where message `k - 1` ended (the
/// first at 0). Returns how many were appended: `count`, or the index of the first message that
/// did not fit or failed; when that is the first message and it failed for another reason than
/// room, [`FAILED`] (or [`NO_PRODUCER`], [`MALFORMED`]) instead, so the caller can ask uniffi
/// for the error.
///
/// # Safety
///
/// `data` points at `len` readable bytes and `ends` at `count` readable `i32`s (or the counts
/// are 0), unchanged during the call.
#[no_mangle]
pub unsafe extern "C" fn dsc_producer_try_append_many(
    slot: u64,
    data: *const u8,
    len: usize,
    ends: *const i32,
    count: usize,
) -> i64 {
    if count == 0 {
        return 0;
    }
    if data.is_null() && len > 0 || ends.is_null() {
        return MALFORMED;
    }
    // SAFETY: the caller's promises, passed on.
    let (bytes, ends) = unsafe { (slice_at(data, len), slice_at(ends, count)) };
    let mut pieces = Vec::with_capacity(count);
    let mut start = 0usize;
    for &end in ends {
        let Some(piece) = usize::try_from(end)
            .ok()
            .filter(|&e| e >= start)
            .and_then(|e| bytes.get(start..e))
        else {
            return MALFORMED;
        };
        pieces.push(piece);
        start += piece.len();
    }
    try_append_pieces(slot, &pieces)
}

/// The batch append's answer (see [`dsc_producer_try_append_many`]).
fn try_append_pieces(slot: u64, pieces: &[&[u8]]) -> i64 {
    with_producer(slot, |p| {
        let done = p.try_append_many(pieces);
        match done.stopped {
            Some(ref e) if done.count == 0 && !matches!(e, core::Error::BufferFull { .. }) => {
                FAILED
            }
            _ => i64::try_from(done.count).unwrap_or(FAILED),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON stream at an address nothing listens on (messages stay buffered), with a runtime.
    fn unreachable_stream(name: &str) -> (tokio::runtime::Runtime, core::DurableStream) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let s = {
            let _g = rt.enter();
            core::DurableStream::builder(format!("http://127.0.0.1:9/v1/stream/{name}").as_str())
                .content_type("application/json")
                .build()
                .unwrap()
        };
        (rt, s)
    }

    #[test]
    fn an_unknown_or_freed_slot_is_an_error_code_and_never_another_producer() {
        // SAFETY: a valid 2-byte slice.
        let r = unsafe { dsc_producer_try_append(u64::MAX, b"{}".as_ptr(), 2) };
        assert_eq!(r, NO_PRODUCER);
        let (rt, s) = unreachable_stream("fast");
        let _g = rt.enter();
        let a = register(s.producer("a").build().unwrap());
        // SAFETY: valid slices of the given lengths.
        unsafe {
            assert_eq!(dsc_producer_try_append(a, b"{\"n\":0}".as_ptr(), 7), 0);
            assert_eq!(dsc_producer_try_append(a, b"{\"n\":1}".as_ptr(), 7), 1);
            assert_eq!(dsc_producer_try_append(a, b"{nope".as_ptr(), 5), FAILED);
            assert_eq!(dsc_producer_try_append(a, std::ptr::null(), 0), FAILED);
        }
        let tiny = s.producer("tiny").max_buffered_bytes(10).build().unwrap();
        let t = register(tiny);
        // SAFETY: as above.
        unsafe {
            assert_eq!(dsc_producer_try_append(t, b"[1,2,3,4]".as_ptr(), 9), 0);
            assert_eq!(
                dsc_producer_try_append(t, b"[5,6]".as_ptr(), 5),
                BUFFER_FULL
            );
        }
        unregister(a);
        let b = register(s.producer("b").build().unwrap());
        assert_ne!(a, b, "a freed slot is not handed out again");
        // SAFETY: as above.
        assert_eq!(
            unsafe { dsc_producer_try_append(a, b"{}".as_ptr(), 2) },
            NO_PRODUCER
        );
        // SAFETY: as above.
        assert_eq!(unsafe { dsc_producer_try_append(b, b"{}".as_ptr(), 2) }, 0);
        unregister(b);
        unregister(t);
    }

    #[test]
    fn packed_runs_append_in_order_and_stop_where_try_append_would() {
        let (rt, s) = unreachable_stream("fast-many");
        let _g = rt.enter();
        let p = s.producer("m").max_buffered_bytes(40).build().unwrap();
        let slot = register(p.clone());
        let call = |data: &[u8], ends: &[i32]| {
            // SAFETY: valid slices of the given lengths.
            unsafe {
                dsc_producer_try_append_many(
                    slot,
                    data.as_ptr(),
                    data.len(),
                    ends.as_ptr(),
                    ends.len(),
                )
            }
        };
        assert_eq!(call(b"[1][2][3]", &[3, 6, 9]), 3);
        // A bad message first: FAILED; later: the count before it.
        assert_eq!(call(b"{x[4]", &[2, 5]), FAILED);
        assert_eq!(call(b"[4]{x", &[3, 5]), 1);
        // Room for 40 bytes: 12 taken, so two 12-byte messages fit and the third does not.
        let m = b"[1234567890]";
        let packed: Vec<u8> = m.iter().chain(m).chain(m).copied().collect();
        assert_eq!(call(&packed, &[12, 24, 36]), 2);
        assert_eq!(p.metrics().appended_messages, 6);
        // Malformed: an end past the data, ends going back, a negative end.
        assert_eq!(call(b"[1]", &[4]), MALFORMED);
        assert_eq!(call(b"[1][2]", &[3, 2]), MALFORMED);
        assert_eq!(call(b"[1]", &[-1]), MALFORMED);
        assert_eq!(call(b"", &[]), 0);
        unregister(slot);
        assert_eq!(call(b"[1]", &[3]), NO_PRODUCER);
        assert_eq!(p.metrics().appended_messages, 6);
    }
}
