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

/// The producers of this thread, by slot; freed slots are reused.
#[derive(Default)]
struct Slots {
    producers: Vec<Option<IdempotentProducer>>,
    free: Vec<u32>,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
    /// The text of the message being appended, as napi hands it over (UTF-16).
    static UNITS: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// Puts `producer` in this thread's table; returns its slot.
pub(crate) fn register(producer: IdempotentProducer) -> u32 {
    SLOTS.with(|cell| {
        let mut slots = cell.borrow_mut();
        if let Some(i) = slots.free.pop() {
            slots.producers[i as usize] = Some(producer);
            return i;
        }
        slots.producers.push(Some(producer));
        u32::try_from(slots.producers.len() - 1).unwrap_or(u32::MAX)
    })
}

/// Empties `slot` (a `NativeProducer` being collected). Does nothing during thread teardown,
/// when the table may be gone already.
pub(crate) fn unregister(slot: u32) {
    let _ = SLOTS.try_with(|cell| {
        // Never contended: nothing runs JavaScript (or collects) while the table is borrowed.
        if let Ok(mut slots) = cell.try_borrow_mut() {
            if let Some(entry) = slots.producers.get_mut(slot as usize) {
                if entry.take().is_some() {
                    slots.free.push(slot);
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
    SLOTS.with(|cell| match cell.borrow().producers.get(slot as usize) {
        Some(Some(producer)) => f(producer),
        _ => Err(durable_streams_client::Error::InvalidArgument {
            message: format!("no producer in slot {slot}"),
        }),
    })
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
    let number = text::with_scratch(&UNITS, |units| append_units(env, argv[1], units, slot))?;
    let mut result = ptr::null_mut();
    // SAFETY: `env` is this callback's; `result` receives the new number.
    let status = unsafe { sys::napi_create_double(env, number as f64, &mut result) };
    ok(status, "returning the message number")?;
    Ok(result)
}

/// Reads the string `value` into `units`, then appends it to the producer in `slot`.
fn append_units(
    env: sys::napi_env,
    value: sys::napi_value,
    units: &mut Vec<u16>,
    slot: u32,
) -> napi::Result<u64> {
    let mut len = 0usize;
    // SAFETY: a null buffer asks only for the length (in UTF-16 units); `value` is live.
    let status =
        unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut len) };
    if status != sys::Status::napi_ok {
        return Err(error::invalid(
            "append: the message must be a string or a Uint8Array",
        ));
    }
    units.clear();
    units.resize(len + 1, 0);
    let mut written = 0usize;
    // SAFETY: `units` has room for `len + 1` units (napi writes the text and a terminating 0).
    let status = unsafe {
        sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), len + 1, &mut written)
    };
    ok(status, "reading the message")?;
    units.truncate(written);
    text::with_utf8(units, |bytes| with_producer(slot, |p| p.try_append(bytes)))
        .map(|r| r.message_number())
        .map_err(error::to_napi)
}
