//! `Client`: HTTP settings (timeouts, pool, TLS, redirects) shared by any number of handles.

use std::sync::Mutex;
use std::time::Duration;

use durable_streams_client::{Client as CoreClient, ClientBuilder, Error};
use pyo3::prelude::*;

use crate::error;
use crate::runtime::{self, Generation};

/// HTTP client settings; `None` keeps the core's default. Connection pools are per process:
/// after `fork()` the child builds its own from the same settings.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Client {
    builder: ClientBuilder,
    built: Mutex<Option<(u64, CoreClient)>>,
}

impl Client {
    /// The core client for `generation`, built from the settings when the generation changed.
    /// Calls no Python code, so it is safe under other locks.
    pub(crate) fn core(&self, generation: &Generation) -> Result<CoreClient, Error> {
        let mut built = self.built.lock().map_err(|_| Error::AlreadyClosed {
            what: "client (a thread panicked while using it)".into(),
        })?;
        if let Some((id, c)) = built.as_ref() {
            if *id == generation.id {
                return Ok(c.clone());
            }
        }
        let c = self.builder.clone().build()?;
        *built = Some((generation.id, c.clone()));
        Ok(c)
    }

    fn current(&self, py: Python<'_>) -> PyResult<CoreClient> {
        let generation = runtime::current()?;
        self.core(&generation).map_err(|e| error::to_py(py, &e))
    }
}

fn seconds(py: Python<'_>, name: &str, v: Option<f64>) -> PyResult<Option<Duration>> {
    v.map(|s| {
        Duration::try_from_secs_f64(s).map_err(|_| {
            error::to_py(
                py,
                &Error::InvalidArgument {
                    message: format!("{name} must be a non-negative number of seconds, got {s}"),
                },
            )
        })
    })
    .transpose()
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        *,
        connect_timeout = None,
        request_timeout = None,
        long_poll_timeout = None,
        pool_idle_timeout = None,
        pool_max_idle_per_host = None,
        danger_accept_invalid_certs = false,
        follow_cross_origin_redirects = false,
        user_agent = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        connect_timeout: Option<f64>,
        request_timeout: Option<f64>,
        long_poll_timeout: Option<f64>,
        pool_idle_timeout: Option<f64>,
        pool_max_idle_per_host: Option<usize>,
        danger_accept_invalid_certs: bool,
        follow_cross_origin_redirects: bool,
        user_agent: Option<String>,
    ) -> PyResult<Self> {
        let mut b = CoreClient::builder()
            .danger_accept_invalid_certs(danger_accept_invalid_certs)
            .follow_cross_origin_redirects(follow_cross_origin_redirects);
        if let Some(d) = seconds(py, "connect_timeout", connect_timeout)? {
            b = b.connect_timeout(d);
        }
        if let Some(d) = seconds(py, "request_timeout", request_timeout)? {
            b = b.request_timeout(d);
        }
        if let Some(d) = seconds(py, "long_poll_timeout", long_poll_timeout)? {
            b = b.long_poll_timeout(d);
        }
        if let Some(d) = seconds(py, "pool_idle_timeout", pool_idle_timeout)? {
            b = b.pool_idle_timeout(d);
        }
        if let Some(n) = pool_max_idle_per_host {
            b = b.pool_max_idle_per_host(n);
        }
        if let Some(ua) = user_agent {
            b = b.user_agent(ua);
        }
        let client = Client {
            builder: b,
            built: Mutex::new(None),
        };
        // Build now, so invalid settings fail here rather than on the first request.
        client.current(py)?;
        Ok(client)
    }

    /// The timeout of requests that are not live reads, in seconds.
    #[getter]
    fn request_timeout(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(self.current(py)?.request_timeout().as_secs_f64())
    }

    /// The timeout of one long-poll request, in seconds.
    #[getter]
    fn long_poll_timeout(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(self.current(py)?.long_poll_timeout().as_secs_f64())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Client(request_timeout={:?}, long_poll_timeout={:?})",
            self.request_timeout(py)?,
            self.long_poll_timeout(py)?
        ))
    }
}
