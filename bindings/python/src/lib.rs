//! pyo3 bindings of `durable-streams-client`: the private module `durable_streams_client._native`.
//!
//! The public API is the pure-Python package around it (python/src/durable_streams_client):
//! this crate only converts values, bridges tokio to blocking and asyncio callers
//! (module `runtime`), maps errors (module `error`) and forwards logs (module `logging`). Protocol rules live
//! in the core crate.

mod borrowed;
#[cfg(unix)]
mod bridge;
mod client;
mod error;
mod json;
mod logging;
mod producer;
mod pull;
mod response;
mod runtime;
mod stream;
mod subscriptions;
mod values;

use pyo3::prelude::*;

/// Starts a read of `url` without a handle (the package's module-level `stream()`).
#[pyfunction]
#[pyo3(signature = (
    url, *, blocking, client = None, offset = None, live = None, json = false,
    headers = Vec::new(), params = Vec::new(), retry = None, on_error = None,
    max_chunk_bytes = None, max_read_bytes = None,
))]
#[allow(clippy::too_many_arguments)]
fn read(
    py: Python<'_>,
    url: String,
    blocking: bool,
    client: Option<Py<client::Client>>,
    offset: Option<String>,
    live: Option<String>,
    json: bool,
    headers: values::Pairs,
    params: values::Pairs,
    retry: Option<(f64, f64, f64, Option<i64>)>,
    on_error: Option<Py<PyAny>>,
    max_chunk_bytes: Option<values::WholeNumber>,
    max_read_bytes: Option<values::WholeNumber>,
) -> PyResult<Py<PyAny>> {
    let args = response::ReadArgs {
        offset,
        live,
        json,
        headers,
        params,
        retry,
        on_error,
        max_chunk_bytes,
        max_read_bytes,
    };
    response::read_url(py, url, client, args, blocking)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<stream::Stream>()?;
    m.add_class::<response::Response>()?;
    m.add_class::<response::Batches>()?;
    m.add_class::<producer::Producer>()?;
    m.add_class::<producer::Receipt>()?;
    m.add_class::<producer::ProducerBase>()?;
    m.add_class::<producer::AsyncReceipt>()?;
    m.add_class::<producer::AsyncProducerBase>()?;
    m.add_class::<subscriptions::Subscriptions>()?;
    m.add_class::<subscriptions::Wake>()?;
    m.add_class::<subscriptions::Queue>()?;
    m.add_class::<subscriptions::Job>()?;
    m.add_class::<subscriptions::Verifier>()?;
    m.add("WEBHOOK_DONE", subscriptions::DONE)?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(error::_error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(error::_error_for_code, m)?)?;
    m.add_function(wrap_pyfunction!(values::_retry_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(json::_json_messages, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    runtime::track_forks(m)?;
    logging::install(m.py());
    Ok(())
}
