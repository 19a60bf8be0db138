//! Python values into core values: message bodies, headers and parameters (fixed or computed).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use durable_streams_client::{Error, RequestExtras, RetryPolicy, Value};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyInt, PyString};
use pyo3_async_runtimes::generic::ContextExt;
use pyo3_async_runtimes::TaskLocals;

use crate::error;
use crate::runtime::{self, ForkSafeRuntime};

/// A message body: `bytes` (shared with Python, not copied) or `str` (as UTF-8).
/// The Python layer turns other bytes-like objects into `bytes` first.
pub(crate) enum Payload {
    Bytes(PyBackedBytes),
    Str(PyBackedStr),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Payload {
    type Error = PyErr;

    /// Checks the type before converting: a derived extraction would try `bytes` first and
    /// format a conversion error for every `str` (most of an append's cost, measured).
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return PyBackedStr::try_from(s.to_owned()).map(Payload::Str);
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Payload::Bytes(PyBackedBytes::from(b.to_owned())));
        }
        Err(PyTypeError::new_err(format!(
            "a message must be str or bytes, not {}",
            obj.get_type().name()?
        )))
    }
}

/// A whole number as Python gives it (a read's byte limits, a producer's counts and sizes, its
/// epoch): any `int`. One that does not fit in a `u64` is kept as its text, for the error that
/// names the option; a read limit takes one beyond 64 bits as no limit
/// ([`limit`](Self::limit)), a count refuses it ([`count`](Self::count)).
pub(crate) enum WholeNumber {
    Fits(u64),
    Negative(String),
    Beyond64Bits(String),
}

impl<'a, 'py> FromPyObject<'a, 'py> for WholeNumber {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(Self::Fits(n));
        }
        let Ok(int) = obj.cast::<PyInt>() else {
            return Err(PyTypeError::new_err(format!(
                "expected an int, not {}",
                obj.get_type().name()?
            )));
        };
        let text = int.str()?.to_string();
        Ok(if int.lt(0)? {
            Self::Negative(text)
        } else {
            Self::Beyond64Bits(text)
        })
    }
}

impl WholeNumber {
    /// A read's byte limit: one beyond 64 bits counts as the largest; a negative one is an
    /// invalid-argument error naming `option` (zero passes here; the read refuses it with its
    /// own error).
    pub(crate) fn limit(self, option: &str) -> Result<usize, Error> {
        match self {
            Self::Fits(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Self::Beyond64Bits(_) => Ok(usize::MAX),
            Self::Negative(text) => Err(Error::InvalidArgument {
                message: format!(
                    "{option} must be a whole number of bytes, at least 1, got {text}"
                ),
            }),
        }
    }

    /// A count or size that must fit in 64 bits; else an invalid-argument error naming
    /// `option`. The core checks each option's own range after that.
    pub(crate) fn count(self, option: &str) -> Result<u64, Error> {
        match self {
            Self::Fits(n) => Ok(n),
            Self::Negative(text) | Self::Beyond64Bits(text) => Err(Error::InvalidArgument {
                message: format!("{option} must be a whole number from 0 to 2**64 - 1, got {text}"),
            }),
        }
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        match self {
            Payload::Bytes(b) => b,
            Payload::Str(s) => s.as_bytes(),
        }
    }
}

impl From<Payload> for Bytes {
    fn from(p: Payload) -> Bytes {
        match p {
            Payload::Bytes(b) => Bytes::from_owner(b),
            Payload::Str(s) => Bytes::from_owner(s),
        }
    }
}

/// Headers and parameters as the Python layer passes them: `(name, str | callable)` pairs.
pub(crate) type Pairs = Vec<(String, Py<PyAny>)>;

/// Builds core extras from header and parameter pairs.
pub(crate) fn extras(py: Python<'_>, headers: Pairs, params: Pairs) -> PyResult<RequestExtras> {
    extras_on(py, headers, params, None)
}

/// Like [`extras`], for requests that are not made for a Python caller (an asyncio producer's
/// batches): a coroutine returned by a callable runs on the event loop of `fallback` when the
/// request carries no loop of its own.
pub(crate) fn extras_on(
    py: Python<'_>,
    headers: Pairs,
    params: Pairs,
    fallback: Option<TaskLocals>,
) -> PyResult<RequestExtras> {
    let mut out = RequestExtras::new();
    for (name, v) in headers {
        let value = value(py, &name, v, fallback.clone())?;
        out.set_header(name, value);
    }
    for (name, v) in params {
        let value = value(py, &name, v, fallback.clone())?;
        out.set_param(name, value);
    }
    Ok(out)
}

/// Copies of `pairs` (new references to the same objects).
pub(crate) fn clone_pairs(py: Python<'_>, pairs: &Pairs) -> Pairs {
    pairs
        .iter()
        .map(|(n, v)| (n.clone(), v.clone_ref(py)))
        .collect()
}

fn value(
    py: Python<'_>,
    name: &str,
    v: Py<PyAny>,
    fallback: Option<TaskLocals>,
) -> PyResult<Value> {
    let b = v.bind(py);
    if let Ok(s) = b.extract::<String>() {
        return Ok(Value::Fixed(s));
    }
    if !b.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "the value of {name:?} must be a str or a callable returning one, got {}",
            b.get_type().name()?
        )));
    }
    let f = Arc::new(v);
    let name: Arc<str> = Arc::from(name);
    Ok(Value::computed(move || {
        let (f, name, fallback) = (Arc::clone(&f), Arc::clone(&name), fallback.clone());
        async move { compute(&f, &name, fallback.as_ref()).await }
    }))
}

type Awaiting = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// Calls a value's callable; a coroutine it returns runs on the caller's event loop (else on
/// `fallback`'s). Fails with `Cancelled` when the interpreter is exiting (see
/// [`runtime::attach`]).
async fn compute(
    f: &Py<PyAny>,
    name: &str,
    fallback: Option<&TaskLocals>,
) -> Result<String, Error> {
    let called =
        runtime::attach(|py| call(py, f, fallback).map_err(|e| callable_failed(py, name, e)))
            .ok_or(Error::Cancelled)??;
    let awaiting = match called {
        Ok(s) => return Ok(s),
        Err(awaiting) => awaiting,
    };
    let out = awaiting.await;
    runtime::attach(|py| {
        out.and_then(|o| o.extract::<String>(py))
            .map_err(|e| callable_failed(py, name, e))
    })
    .ok_or(Error::Cancelled)?
}

/// The callable's string, or the awaitable it returned.
fn call(
    py: Python<'_>,
    f: &Py<PyAny>,
    fallback: Option<&TaskLocals>,
) -> PyResult<Result<String, Awaiting>> {
    let out = f.bind(py).call0()?;
    if let Ok(s) = out.extract::<String>() {
        return Ok(Ok(s));
    }
    if !out.hasattr("__await__")? {
        return Err(PyTypeError::new_err(format!(
            "the callable returned {}, not a str",
            out.get_type().name()?
        )));
    }
    let locals = match ForkSafeRuntime::get_task_locals() {
        Some(caller) => Ok(caller),
        None => match fallback {
            // A loop that does not run would leave the request waiting for ever.
            Some(l) if l.event_loop(py).call_method0("is_running")?.is_truthy()? => Ok(l.clone()),
            Some(_) => Err(
                "the event loop the AsyncIdempotentProducer was created in is not running \
                 (its async callables run there)",
            ),
            None => Err(
                "an async callable needs the asyncio API (AsyncDurableStream, or an \
                 AsyncIdempotentProducer created while its event loop runs); DurableStream and \
                 IdempotentProducer take plain callables",
            ),
        },
    };
    let locals = match locals {
        Ok(l) => l,
        Err(why) => {
            // Not awaited: close it, so Python does not warn about a forgotten coroutine.
            if out.hasattr("close")? {
                out.call_method0("close")?;
            }
            return Err(PyTypeError::new_err(why));
        }
    };
    Ok(Err(Box::pin(runtime::into_future(&locals, out)?)))
}

/// The core error for a failed callable. The core's `Error` has no variant carrying a foreign
/// exception, so the Python exception survives as the message only.
fn callable_failed(py: Python<'_>, name: &str, e: PyErr) -> Error {
    let detail = e
        .value(py)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| e.to_string());
    Error::InvalidArgument {
        message: format!("the callable computing {name:?} failed: {detail}"),
    }
}

/// A retry policy from the Python layer's `(initial_ms, max_ms, multiplier, max_retries)`.
pub(crate) fn retry_policy(
    py: Python<'_>,
    raw: Option<(f64, f64, f64, Option<i64>)>,
) -> PyResult<Option<RetryPolicy>> {
    raw.map(|(initial, max, mult, retries)| RetryPolicy::from_millis(initial, max, mult, retries))
        .transpose()
        .map_err(|e| error::to_py(py, &e))
}

/// The core's default retry policy as (initial delay in ms, max delay in ms, multiplier, max
/// retries): Python's `RetryPolicy` takes its defaults from here rather than copying them.
#[pyfunction]
pub(crate) fn _retry_defaults() -> (f64, f64, f64, Option<u32>) {
    let d = RetryPolicy::default();
    (
        d.initial_delay.as_secs_f64() * 1000.0,
        d.max_delay.as_secs_f64() * 1000.0,
        d.multiplier,
        d.max_retries,
    )
}
