//! A message's bytes read in place, without a copy (the one unsafe part of this binding).
//!
//! Under the stable ABI of Python 3.9, which this module is built for, the only way to a
//! `str`'s UTF-8 (`PyUnicode_AsUTF8String`, what pyo3's `PyBackedStr` uses there) makes a
//! new `bytes` object and copies the text into it, then frees it: 259 of the 1,929
//! instructions of one `append` of a 100-byte message (callgrind). From 3.10,
//! `PyUnicode_AsUTF8AndSize` is in the stable ABI and hands out the UTF-8 CPython keeps with
//! the string.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// `PyUnicode_AsUTF8AndSize`'s type (the stable ABI's, from 3.10).
type AsUtf8AndSize = unsafe extern "C" fn(
    *mut pyo3::ffi::PyObject,
    *mut pyo3::ffi::Py_ssize_t,
) -> *const std::ffi::c_char;

/// `PyUnicode_AsUTF8AndSize` of the running interpreter when it is 3.10 or later, looked up
/// once. Looked up rather than linked, so that this module imports nothing beyond the 3.9
/// stable ABI its wheel claims. `None` on 3.9, or where the interpreter's symbols are not
/// global (the caller then takes the message as a `Payload`).
fn as_utf8_and_size(py: Python<'_>) -> Option<AsUtf8AndSize> {
    static FOUND: OnceLock<Option<AsUtf8AndSize>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        if py.version_info() < (3, 10) {
            return None;
        }
        lookup()
    })
}

#[cfg(unix)]
fn lookup() -> Option<AsUtf8AndSize> {
    // SAFETY: a lookup in the global scope by a NUL-terminated name.
    let at = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"PyUnicode_AsUTF8AndSize".as_ptr()) };
    if at.is_null() {
        return None;
    }
    // SAFETY: the interpreter exports this function with the stable ABI's signature, which is
    // `AsUtf8AndSize`.
    Some(unsafe { std::mem::transmute::<*mut std::ffi::c_void, AsUtf8AndSize>(at) })
}

#[cfg(not(unix))]
fn lookup() -> Option<AsUtf8AndSize> {
    None
}

/// A message's bytes without a copy, for an append that copies them at once: the contents of
/// a `bytes`, or the UTF-8 of a `str` as CPython keeps it with the string. `None` for any
/// other type, and for a `str` on 3.9 (the caller then takes the message as a `Payload`).
/// A `str` that has no UTF-8 (a lone surrogate) raises `UnicodeEncodeError`, as it would
/// as a `Payload`.
pub(crate) fn borrowed<'a>(
    py: Python<'_>,
    data: &'a Bound<'_, PyAny>,
) -> PyResult<Option<&'a [u8]>> {
    if let Ok(s) = data.cast::<PyString>() {
        let Some(as_utf8_and_size) = as_utf8_and_size(py) else {
            return Ok(None);
        };
        let mut size: pyo3::ffi::Py_ssize_t = 0;
        // SAFETY: `s` is a live `str` and this thread holds the GIL. CPython returns the
        // string's UTF-8, which it keeps with the string (so it stays valid while `data` is
        // borrowed), or NULL with an exception set.
        let at = unsafe { as_utf8_and_size(s.as_ptr(), &mut size) };
        if at.is_null() {
            return Err(PyErr::fetch(py));
        }
        let len = usize::try_from(size).unwrap_or(0);
        // SAFETY: CPython says that `at` points at `size` bytes owned by `s`.
        return Ok(Some(unsafe {
            std::slice::from_raw_parts(at.cast::<u8>(), len)
        }));
    }
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes()));
    }
    Ok(None)
}
