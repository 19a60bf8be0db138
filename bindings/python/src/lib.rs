//! pyo3 bindings of `durable-streams-client`: the private module `durable_streams_client._native`.
//!
//! The public API is the pure-Python package around it (python/src/durable_streams_client):
//! this crate only converts values, bridges tokio to blocking and asyncio callers
//! ([`runtime`]), maps errors ([`error`]) and forwards logs ([`logging`]). Protocol rules live
//! in the core crate.

mod client;
mod error;
mod logging;
mod runtime;
mod stream;
mod values;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<stream::Stream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    logging::install(m.py());
    Ok(())
}
