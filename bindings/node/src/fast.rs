//! `producerAppendText(slot, text)`: the one call per message of `IdempotentProducer.append`,
//! written against napi directly.
//!
//! A `#[napi]` function with arguments pays napi-rs's borrow bookkeeping on every call (a
//! reference-counted scope allocated and freed, thread-local stacks pushed and popped, a
//! registry lookup for an external argument) and allocates a buffer for a string argument:
//! together more than the core's whole append of a 100-byte message. This callback reads its
//! two arguments with three napi calls into buffers the JavaScript thread keeps, appends, and
//! returns the message number. BENCHMARKS.md ("Round 4") has the
//! measurements.
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

/// What the JavaScript thread keeps for `producerAppendText`, behind one thread-local (one
/// lookup per call): its producers by slot (freed slots are reused) and the two buffers a
/// message passes through (UTF-16 as napi hands it over, then UTF-8).
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

/// Adds `producerAppendText` to the addon's exports.
#[napi(module_exports)]
pub fn register_fast_calls(exports: Object<'_>, env: Env) -> napi::Result<()> {
    const NAME: &str = "producerAppendText";
    let mut function = ptr::null_mut();
    // SAFETY: `env` and `exports` are the live values napi passed to the module's init; the
    // name is valid UTF-8 of the given length; `append_text` has napi's callback signature.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            NAME.as_ptr().cast(),
            NAME.len() as isize,
            Some(append_text),
            ptr::null_mut(),
            &mut function,
        )
    };
    ok(status, "creating producerAppendText")?;
    // SAFETY: as above; `function` was just created in this env; the key is NUL-terminated.
    let status = unsafe {
        sys::napi_set_named_property(
            env.raw(),
            exports.raw(),
            c"producerAppendText".as_ptr(),
            function,
        )
    };
    ok(status, "exporting producerAppendText")
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
    match append_text_inner(env, info) {
        Ok(value) => value,
        Err(e) => {
            // SAFETY: `env` is the live env of this callback.
            unsafe { napi::JsError::from(e).throw_into(env) };
            ptr::null_mut()
        }
    }
}

fn append_text_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> napi::Result<sys::napi_value> {
    let mut argc = 2usize;
    let mut argv = [ptr::null_mut(); 2];
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
    if argc < 2 {
        return Err(error::invalid("producerAppendText takes (slot, text)"));
    }
    let mut slot = 0u32;
    // SAFETY: `argv[0]` is a live value of this callback (napi fills missing ones with undefined).
    if unsafe { sys::napi_get_value_uint32(env, argv[0], &mut slot) } != sys::Status::napi_ok {
        return Err(error::invalid(
            "producerAppendText: the slot must be a number",
        ));
    }
    let number = THREAD.with(|cell| {
        let mut t = cell
            .try_borrow_mut()
            .map_err(|_| error::to_napi(reentered()))?;
        let t = &mut *t;
        read_units(env, argv[1], &mut t.units)?;
        text::encode(&t.units, &mut t.utf8);
        let appended = producer_in(&t.producers, slot).and_then(|p| p.try_append(&t.utf8));
        text::trim(&mut t.units);
        text::trim(&mut t.utf8);
        appended.map(|r| r.message_number()).map_err(error::to_napi)
    })?;
    let mut result = ptr::null_mut();
    // SAFETY: `env` is this callback's; `result` receives the new number.
    let status = unsafe { sys::napi_create_double(env, number as f64, &mut result) };
    ok(status, "returning the message number")?;
    Ok(result)
}

/// Reads the string `value` into `units` (UTF-16), with one napi call when it fits the room
/// the buffer has (a first call makes room for 256 units).
fn read_units(
    env: sys::napi_env,
    value: sys::napi_value,
    units: &mut Vec<u16>,
) -> napi::Result<()> {
    units.clear();
    units.reserve(256);
    loop {
        let room = units.capacity();
        let mut written = 0usize;
        // SAFETY: `value` is a live value of this callback; napi writes at most `room` units
        // (the text, cut to `room - 1`, and a terminating 0) into the buffer, which has room
        // for `room` units.
        let status = unsafe {
            sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), room, &mut written)
        };
        if status != sys::Status::napi_ok {
            return Err(error::invalid(
                "append: the message must be a string or a Uint8Array",
            ));
        }
        if written + 1 < room {
            // SAFETY: napi initialised the first `written` units (`written < room`).
            unsafe { units.set_len(written) };
            return Ok(());
        }
        // Perhaps cut: ask for the length and read again into room enough for it.
        let mut len = 0usize;
        // SAFETY: a null buffer asks only for the length (in UTF-16 units); `value` is live.
        let status =
            unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut len) };
        ok(status, "reading the message's length")?;
        units.reserve(len.saturating_add(2));
    }
}
