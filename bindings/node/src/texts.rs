//! The core's JSON array texts as JavaScript strings that V8 reads in place.
//!
//! A JSON read hands JavaScript the texts of JSON arrays (up to 16 MiB each) for `JSON.parse`.
//! Made with `napi_create_string_utf8`, each text is decoded and copied into V8's heap, whose
//! fresh pages then fault in one by one: per million messages of 100 bytes, 100 MB copied and
//! about 25,000 page faults (2.7 µs each on a virtual machine). A text that is all ASCII is
//! also Latin-1, so it becomes an external one-byte string instead: V8 reads the bytes where
//! Rust wrote them and calls back to free them once the string is garbage. Other texts, and
//! short ones, are copied as before.
//!
//! `node_api_create_external_string_latin1` is in every Node from 20.4 (the package needs
//! 20.17). Where napi-sys loads Node-API at run time (Windows), a Node without it gets a stub
//! that fails the call, and the text is copied.

// Foreign calls into napi, as in fast.rs: each block says what it relies on.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::ptr;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, ValueType};

/// Texts shorter than this are copied (an external string costs a tracked resource).
const EXTERNAL_MIN: usize = 4096;

/// JSON array texts for JavaScript: an `Array<string>`.
pub struct JsonTexts(pub(crate) Vec<String>);

impl TypeName for JsonTexts {
    fn type_name() -> &'static str {
        "Array<string>"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for JsonTexts {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut array = ptr::null_mut();
        // SAFETY: called by napi-rs on the JavaScript thread with a live `env`.
        let status = unsafe { sys::napi_create_array_with_length(env, val.0.len(), &mut array) };
        check(status, "creating the array of JSON texts")?;
        for (i, text) in val.0.into_iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| {
                napi::Error::new(napi::Status::GenericFailure, "too many JSON texts")
            })?;
            // SAFETY: as above; `array` was just created in this scope.
            let value = unsafe { text_value(env, text)? };
            check(
                unsafe { sys::napi_set_element(env, array, index, value) },
                "storing a JSON text",
            )?;
        }
        Ok(array)
    }
}

/// `text` as a JavaScript string: external when it is long and all ASCII, else copied.
///
/// # Safety
/// `env` must be a live environment on its JavaScript thread.
unsafe fn text_value(env: sys::napi_env, text: String) -> napi::Result<sys::napi_value> {
    let len = isize::try_from(text.len()).ok();
    if let (Some(len), true) = (len, text.len() >= EXTERNAL_MIN && text.is_ascii()) {
        let owned = Box::new(text);
        let data = owned.as_ptr().cast::<c_char>();
        let hint = Box::into_raw(owned);
        let mut value = ptr::null_mut();
        let mut copied = false;
        // SAFETY: `data` points to `len` bytes of Latin-1 (ASCII) text owned by the box at
        // `hint`, which stays alive until `drop_text` frees it: when V8 has collected the
        // string, or at once when V8 copied it instead. On failure no finalizer runs.
        let status = unsafe {
            sys::node_api_create_external_string_latin1(
                env,
                data,
                len,
                Some(drop_text),
                hint.cast(),
                &mut value,
                &mut copied,
            )
        };
        if status == sys::Status::napi_ok {
            return Ok(value);
        }
        // SAFETY: the call failed, so nothing else owns the box.
        let text = unsafe { Box::from_raw(hint) };
        // SAFETY: as for this function.
        return unsafe { String::to_napi_value(env, *text) };
    }
    // SAFETY: as for this function.
    unsafe { String::to_napi_value(env, text) }
}

/// Frees a text given to V8 as an external string.
unsafe extern "C" fn drop_text(
    _env: sys::node_api_basic_env,
    _data: *mut c_void,
    hint: *mut c_void,
) {
    // SAFETY: `hint` is the box `text_value` leaked for this string; V8 finalizes each
    // external string once.
    drop(unsafe { Box::from_raw(hint.cast::<String>()) });
}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            napi::Status::GenericFailure,
            format!("{what} failed (napi status {status})"),
        ))
    }
}
