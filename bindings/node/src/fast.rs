//! `producerAppendText(slot, text)`: the one call per message of `IdempotentProducer.append`,
//! and `producerAppendJoined(slot, joined, count, throwFirst)`: the one call per run of strings
//! of `appendMany`, written against napi directly.
//!
//! A `#[napi]` function with arguments pays napi-rs's borrow bookkeeping on every call (a
//! reference-counted scope allocated and freed, thread-local stacks pushed and popped, a
//! registry lookup for an external argument) and allocates a buffer for a string argument
//! (zero-filled, and for a joined run of messages large enough to be mapped fresh every call):
//! together more than the core's whole append of a 100-byte message. These callbacks read their
//! arguments with a few napi calls into buffers the JavaScript thread keeps, append, and return
//! a number. BENCHMARKS.md ("Round 4", "Round 6") has the measurements.
//!
//! The producer is named by a small number, its slot in this thread's table, not by an
//! external: a number cannot point at freed or foreign memory, a slot that is not in the table
//! is an error, and a `NativeProducer` empties its slot when it is collected. JavaScript values
//! live on one thread (a worker has its own table), so the table is thread-local.

// The napi calls below are foreign functions: the only unsafe code of the crate. Each block
// says what it relies on.
#![allow(unsafe_code)]
// The lib test build has no Node registration, so nothing calls the callback there.
#![cfg_attr(test, allow(dead_code))]

use std::cell::RefCell;
use std::ptr;

use durable_streams_client::IdempotentProducer;
use napi::bindgen_prelude::{Env, JsValue, Object};
use napi::sys;
use napi_derive::napi;

use crate::{error, text};

/// What the JavaScript thread keeps for the calls here, behind one thread-local (one lookup per
/// call): its producers by slot (freed slots are reused) and the two buffers a message (or a
/// joined run of them) passes through (UTF-16 as napi hands it over, then UTF-8; a Latin-1
/// read goes straight into the second).
struct Thread {
    producers: Vec<Option<IdempotentProducer>>,
    free: Vec<u32>,
    units: Vec<u16>,
    utf8: Vec<u8>,
}

thread_local! {
    static THREAD: RefCell<Thread> = const {
        RefCell::new(Thread {
            producers: Vec::new(),
            free: Vec::new(),
            units: Vec::new(),
            utf8: Vec::new(),
        })
    };
}

/// The table is borrowed only inside one native call, which never calls back into JavaScript,
/// so a second borrow cannot happen; it is refused rather than trusted.
fn reentered() -> durable_streams_client::Error {
    durable_streams_client::Error::InvalidArgument {
        message: "the producer table is in use (a re-entered call)".into(),
    }
}

/// Puts `producer` in this thread's table; returns its slot.
pub(crate) fn register(producer: IdempotentProducer) -> napi::Result<u32> {
    THREAD.with(|cell| {
        let mut t = cell
            .try_borrow_mut()
            .map_err(|_| error::to_napi(reentered()))?;
        if let Some(i) = t.free.pop() {
            t.producers[i as usize] = Some(producer);
            return Ok(i);
        }
        t.producers.push(Some(producer));
        Ok(u32::try_from(t.producers.len() - 1).unwrap_or(u32::MAX))
    })
}

/// Empties `slot` (a `NativeProducer` being collected). Does nothing during thread teardown,
/// when the table may be gone already.
pub(crate) fn unregister(slot: u32) {
    let _ = THREAD.try_with(|cell| {
        // Never contended: nothing runs JavaScript (or collects) while the table is borrowed.
        if let Ok(mut t) = cell.try_borrow_mut() {
            if let Some(entry) = t.producers.get_mut(slot as usize) {
                if entry.take().is_some() {
                    t.free.push(slot);
                }
            }
        }
    });
}

/// Calls `f` with the producer in `slot`; an empty or unknown slot is an invalid argument.
pub(crate) fn with_producer<R>(
    slot: u32,
    f: impl FnOnce(&IdempotentProducer) -> durable_streams_client::Result<R>,
) -> durable_streams_client::Result<R> {
    THREAD.with(|cell| {
        let t = cell.try_borrow().map_err(|_| reentered())?;
        f(producer_in(&t.producers, slot)?)
    })
}

fn producer_in(
    producers: &[Option<IdempotentProducer>],
    slot: u32,
) -> durable_streams_client::Result<&IdempotentProducer> {
    match producers.get(slot as usize) {
        Some(Some(producer)) => Ok(producer),
        _ => Err(durable_streams_client::Error::InvalidArgument {
            message: format!("no producer in slot {slot}"),
        }),
    }
}

/// The callbacks of this file, by the name the addon exports them under.
type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
const CALLS: [(&std::ffi::CStr, Callback); 2] = [
    (c"producerAppendText", append_text),
    (c"producerAppendJoined", append_joined),
];

/// Adds the callbacks of this file to the addon's exports.
#[napi(module_exports)]
pub fn register_fast_calls(exports: Object<'_>, env: Env) -> napi::Result<()> {
    for (name, callback) in CALLS {
        let mut function = ptr::null_mut();
        let len = name.to_bytes().len() as isize;
        // SAFETY: `env` and `exports` are the live values napi passed to the module's init; the
        // name is valid UTF-8 of the given length; `callback` has napi's callback signature.
        let status = unsafe {
            sys::napi_create_function(
                env.raw(),
                name.as_ptr(),
                len,
                Some(callback),
                ptr::null_mut(),
                &mut function,
            )
        };
        ok(status, "creating a function of the addon")?;
        // SAFETY: as above; `function` was just created in this env; the key is NUL-terminated.
        let status = unsafe {
            sys::napi_set_named_property(env.raw(), exports.raw(), name.as_ptr(), function)
        };
        ok(status, "exporting a function of the addon")?;
    }
    Ok(())
}

fn ok(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!(
            "{what} failed (napi status {status})"
        )))
    }
}

/// `producerAppendText(slot: number, text: string): number`: appends `text` (UTF-8) to the
/// producer in `slot`; returns its message number or throws the core's error.
unsafe extern "C" fn append_text(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    finish(env, append_text_inner(env, info))
}

/// What a callback returns: `result`'s value, or null after throwing its error into JavaScript.
#[inline]
fn finish(env: sys::napi_env, result: napi::Result<sys::napi_value>) -> sys::napi_value {
    match result {
        Ok(value) => value,
        Err(e) => {
            // SAFETY: `env` is the live env of the callback returning this.
            unsafe { napi::JsError::from(e).throw_into(env) };
            ptr::null_mut()
        }
    }
}

/// How a string argument is read: as UTF-16 (any string), or as Latin-1 when the caller knows
/// that no character of it is above U+00FF (then napi copies a one-byte string as it is).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Utf16,
    Latin1,
}

/// Reads the string `value` into this thread's buffers, as UTF-8, and calls `f` with the
/// producer in `slot` and those bytes; `not_a_string` is the error when `value` is no string.
#[inline]
fn with_text<R>(
    env: sys::napi_env,
    slot: u32,
    value: sys::napi_value,
    read: Read,
    not_a_string: &str,
    f: impl FnOnce(&IdempotentProducer, &[u8]) -> napi::Result<R>,
) -> napi::Result<R> {
    THREAD.with(|cell| {
        let mut t = cell
            .try_borrow_mut()
            .map_err(|_| error::to_napi(reentered()))?;
        let t = &mut *t;
        match read {
            Read::Utf16 => {
                read_string(env, value, &mut t.units, not_a_string)?;
                text::encode(&t.units, &mut t.utf8);
            }
            Read::Latin1 => {
                read_string(env, value, &mut t.utf8, not_a_string)?;
                text::latin1_to_utf8(&mut t.utf8);
            }
        }
        let result = producer_in(&t.producers, slot)
            .map_err(error::to_napi)
            .and_then(|p| f(p, &t.utf8));
        text::trim(&mut t.units);
        text::trim(&mut t.utf8);
        result
    })
}

/// Reads a callback's `N` arguments (missing ones are `undefined`); fewer than `N` given is
/// an invalid argument named by `usage`.
fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    usage: &str,
) -> napi::Result<[sys::napi_value; N]> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    // SAFETY: `env` and `info` are this callback's; `argv` has room for `argc` values.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    ok(status, "reading the arguments")?;
    if argc < N {
        return Err(error::invalid(usage));
    }
    Ok(argv)
}

/// The number `value` as a u32, or an invalid argument saying `what`.
fn uint32(env: sys::napi_env, value: sys::napi_value, what: &str) -> napi::Result<u32> {
    let mut n = 0u32;
    // SAFETY: `value` is a live value of this callback.
    if unsafe { sys::napi_get_value_uint32(env, value, &mut n) } != sys::Status::napi_ok {
        return Err(error::invalid(what));
    }
    Ok(n)
}

/// The boolean `value`, or an invalid argument saying `what`.
fn boolean(env: sys::napi_env, value: sys::napi_value, what: &str) -> napi::Result<bool> {
    let mut b = false;
    // SAFETY: `value` is a live value of this callback.
    if unsafe { sys::napi_get_value_bool(env, value, &mut b) } != sys::Status::napi_ok {
        return Err(error::invalid(what));
    }
    Ok(b)
}

fn number(env: sys::napi_env, n: f64) -> napi::Result<sys::napi_value> {
    let mut result = ptr::null_mut();
    // SAFETY: `env` is this callback's; `result` receives the new number.
    let status = unsafe { sys::napi_create_double(env, n, &mut result) };
    ok(status, "returning a number")?;
    Ok(result)
}

fn append_text_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> napi::Result<sys::napi_value> {
    let argv = args::<2>(env, info, "producerAppendText takes (slot, text)")?;
    let slot = uint32(
        env,
        argv[0],
        "producerAppendText: the slot must be a number",
    )?;
    let message_number = with_text(
        env,
        slot,
        argv[1],
        Read::Utf16,
        "append: the message must be a string or a Uint8Array",
        |p, bytes| p.try_append_numbered(bytes).map_err(error::to_napi),
    )?;
    number(env, message_number as f64)
}

/// `producerAppendJoined(slot: number, joined: string, count: number, throwFirst: boolean,
/// oneByte: boolean): number`: `appendMany` for a run of `count` string messages joined by NUL
/// characters (see [`crate::producer::append_pieces`]: how many were appended, or -1 when the
/// text does not hold `count` pieces). `oneByte` says that no character of `joined` is above
/// U+00FF, so that it is read as Latin-1 (a plain copy of a one-byte string) rather than as UTF-16.
unsafe extern "C" fn append_joined(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    finish(env, append_joined_inner(env, info))
}

fn append_joined_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> napi::Result<sys::napi_value> {
    const USAGE: &str = "producerAppendJoined takes (slot, joined, count, throwFirst, oneByte)";
    let argv = args::<5>(env, info, USAGE)?;
    let slot = uint32(
        env,
        argv[0],
        "producerAppendJoined: the slot must be a number",
    )?;
    let count = uint32(
        env,
        argv[2],
        "producerAppendJoined: the count must be a number",
    )?;
    let throw_first = boolean(
        env,
        argv[3],
        "producerAppendJoined: throwFirst must be a boolean",
    )?;
    let one_byte = boolean(
        env,
        argv[4],
        "producerAppendJoined: oneByte must be a boolean",
    )?;
    let read = if one_byte { Read::Latin1 } else { Read::Utf16 };
    let took = with_text(
        env,
        slot,
        argv[1],
        read,
        "producerAppendJoined: joined must be a string",
        |p, bytes| crate::producer::append_pieces(p, bytes, count, throw_first),
    )?;
    number(env, took as f64)
}

/// A code unit napi can read a string as: UTF-16 (`u16`) or Latin-1 (`u8`, each character
/// cut to its low byte, so only for strings with none above U+00FF).
trait Unit: Copy {
    /// napi's `napi_get_value_string_utf16` or `napi_get_value_string_latin1`.
    ///
    /// # Safety
    /// `value` is a live value of the current callback; `buf` is null (`size` 0) or has room
    /// for `size` units.
    unsafe fn read(
        env: sys::napi_env,
        value: sys::napi_value,
        buf: *mut Self,
        size: usize,
        result: *mut usize,
    ) -> sys::napi_status;
}

impl Unit for u16 {
    unsafe fn read(
        env: sys::napi_env,
        value: sys::napi_value,
        buf: *mut u16,
        size: usize,
        result: *mut usize,
    ) -> sys::napi_status {
        // SAFETY: as the trait's contract says.
        unsafe { sys::napi_get_value_string_utf16(env, value, buf, size, result) }
    }
}

impl Unit for u8 {
    unsafe fn read(
        env: sys::napi_env,
        value: sys::napi_value,
        buf: *mut u8,
        size: usize,
        result: *mut usize,
    ) -> sys::napi_status {
        // SAFETY: as the trait's contract says (a byte and a C char have one size).
        unsafe { sys::napi_get_value_string_latin1(env, value, buf.cast(), size, result) }
    }
}

/// Reads the string `value` into `units`, with one napi call when it fits the room the
/// buffer has (a first call makes room for 256 units).
fn read_string<U: Unit>(
    env: sys::napi_env,
    value: sys::napi_value,
    units: &mut Vec<U>,
    not_a_string: &str,
) -> napi::Result<()> {
    units.clear();
    units.reserve(256);
    loop {
        let room = units.capacity();
        let mut written = 0usize;
        // SAFETY: `value` is a live value of this callback; napi writes at most `room` units
        // (the text, cut to `room - 1`, and a terminating 0) into the buffer, which has room
        // for `room` units.
        let status = unsafe { U::read(env, value, units.as_mut_ptr(), room, &mut written) };
        if status != sys::Status::napi_ok {
            return Err(error::invalid(not_a_string));
        }
        if written + 1 < room {
            // SAFETY: napi initialised the first `written` units (`written < room`).
            unsafe { units.set_len(written) };
            return Ok(());
        }
        // Perhaps cut: ask for the length and read again into room enough for it.
        let mut len = 0usize;
        // SAFETY: a null buffer asks only for the length (in units); `value` is live.
        let status = unsafe { U::read(env, value, ptr::null_mut(), 0, &mut len) };
        ok(status, "reading the message's length")?;
        units.reserve(len.saturating_add(2));
    }
}
