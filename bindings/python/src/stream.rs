//! `Stream`: the native side of `DurableStream` and `AsyncDurableStream`.
//!
//! Every operation takes `blocking`: the blocking flavour waits with the GIL released, the
//! async flavour gets an awaitable. Results come back as dicts that the Python layer turns into
//! its dataclasses.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use durable_streams_client::{
    AppendOptions, AppendResult, AttemptObserver, CloseOptions, CreateOptions, CreateStatus,
    DurableStream, Error, FailedAttempt, ForkOptions, Offset, RequestExtras, RetryPolicy,
};
use pyo3::prelude::*;
use pyo3_async_runtimes::generic;

use crate::client::Client;
use crate::error;
use crate::runtime::{self, ForkSafeRuntime, Generation};
use crate::values::{self, Pairs, Payload};
use crate::{producer, response};

/// A retry policy as the Python layer passes it: `(initial_ms, max_ms, multiplier, max_retries)`.
type RawPolicy = (f64, f64, f64, Option<i64>);

/// A handle to one stream URL.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Stream {
    url: String,
    client: Option<Py<Client>>,
    extras: RequestExtras,
    /// The headers and parameters as given, for asyncio producers (see `producer`).
    pairs: (Pairs, Pairs),
    retry: Option<RetryPolicy>,
    append_retry: Option<RetryPolicy>,
    /// `on_failed_attempt(error, attempt, will_retry, operation)`, told of every failed attempt.
    observer: Option<Arc<Py<PyAny>>>,
    slot: Mutex<Slot>,
}

/// The core handle of one generation (rebuilt after `fork()`), or none once released.
enum Slot {
    Ready(u64, DurableStream),
    Released,
}

impl Stream {
    /// The core handle for this process.
    fn core(&self, py: Python<'_>) -> PyResult<DurableStream> {
        let generation = runtime::current()?;
        self.core_in(&generation).map_err(|e| error::to_py(py, &e))
    }

    /// Calls no Python code while it holds the lock.
    fn core_in(&self, generation: &Generation) -> Result<DurableStream, Error> {
        let mut slot = self.slot.lock().map_err(|_| released())?;
        match &*slot {
            Slot::Released => Err(released()),
            Slot::Ready(id, s) if *id == generation.id => Ok(s.clone()),
            Slot::Ready(_, inherited) => {
                let s = self.build(generation, inherited.content_type(), self.extras.clone())?;
                *slot = Slot::Ready(generation.id, s.clone());
                Ok(s)
            }
        }
    }

    fn build(
        &self,
        generation: &Generation,
        content_type: Option<String>,
        extras: RequestExtras,
    ) -> Result<DurableStream, Error> {
        let client = match &self.client {
            Some(c) => c.get().core(generation)?,
            None => generation.client.clone(),
        };
        let mut b = DurableStream::builder(self.url.as_str())
            .client(client)
            .extras(extras);
        if let Some(ct) = content_type {
            b = b.content_type(ct);
        }
        if let Some(p) = &self.retry {
            b = b.retry(p.clone());
        }
        if let Some(p) = &self.append_retry {
            b = b.append_retry(p.clone());
        }
        if let Some(f) = &self.observer {
            b = b.on_failed_attempt(observer(Arc::clone(f)));
        }
        b.build()
    }
}

/// The core observer for a Python `on_failed_attempt(error, attempt, will_retry, operation)`:
/// called on a runtime thread before the retry pause (or the failure), so it should be quick.
/// It cannot change what happens next: what it raises or returns is only logged.
fn observer(f: Arc<Py<PyAny>>) -> AttemptObserver {
    AttemptObserver::new(move |failed: FailedAttempt| {
        let f = Arc::clone(&f);
        async move {
            let problem = runtime::attach(|py| {
                let exc = error::to_py(py, &failed.error);
                let args = (
                    exc.value(py),
                    failed.attempt,
                    failed.will_retry,
                    failed.operation.as_str(),
                );
                match f.bind(py).call1(args) {
                    Ok(out) if out.hasattr("__await__").unwrap_or(false) => {
                        // Not awaited: close it, so Python does not warn about a forgotten
                        // coroutine.
                        let _ = out.call_method0("close");
                        Some(
                            "on_failed_attempt must be a plain function; its coroutine was not run"
                                .to_owned(),
                        )
                    }
                    Ok(_) => None,
                    Err(e) => Some(format!(
                        "on_failed_attempt raised {}",
                        e.value(py)
                            .repr()
                            .map(|r| r.to_string())
                            .unwrap_or_default()
                    )),
                }
            })
            .flatten();
            if let Some(problem) = problem {
                tracing::warn!("{problem}");
            }
        }
    })
}

/// An append's options from the arguments every append method takes.
fn append_options(
    py: Python<'_>,
    seq: Option<String>,
    content_type: Option<String>,
    headers: Pairs,
    params: Pairs,
) -> PyResult<AppendOptions> {
    Ok(AppendOptions {
        seq,
        content_type,
        extras: values::extras(py, headers, params)?,
    })
}

fn released() -> Error {
    Error::AlreadyClosed {
        what: "this stream handle (released by its context manager)".into(),
    }
}

fn offset_str(o: Option<Offset>) -> Option<String> {
    o.map(|o| o.as_str().to_owned())
}

/// `create()`'s result, as a dict.
#[derive(IntoPyObject)]
struct Created {
    created: bool,
    content_type: Option<String>,
    next_offset: Option<String>,
    closed: bool,
}

/// An append's result, as a dict.
#[derive(IntoPyObject)]
struct Appended {
    next_offset: Option<String>,
    closed: bool,
}

impl From<AppendResult> for Appended {
    fn from(r: AppendResult) -> Self {
        Self {
            next_offset: offset_str(r.next_offset),
            closed: r.closed,
        }
    }
}

/// `close()`'s result, as a dict.
#[derive(IntoPyObject)]
struct Closed {
    final_offset: Option<String>,
}

/// `head()`'s result, as a dict.
#[derive(IntoPyObject)]
struct Head {
    content_type: Option<String>,
    next_offset: Option<String>,
    ttl_seconds: Option<u64>,
    expires_at: Option<String>,
    closed: bool,
    etag: Option<String>,
}

#[pymethods]
impl Stream {
    #[new]
    #[pyo3(signature = (
        url, *, client = None, headers = Vec::new(), params = Vec::new(), content_type = None,
        retry = None, append_retry = None, on_failed_attempt = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        client: Option<Py<Client>>,
        headers: Pairs,
        params: Pairs,
        content_type: Option<String>,
        retry: Option<RawPolicy>,
        append_retry: Option<RawPolicy>,
        on_failed_attempt: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let pairs = (
            values::clone_pairs(py, &headers),
            values::clone_pairs(py, &params),
        );
        let mut stream = Stream {
            url,
            client,
            extras: values::extras(py, headers, params)?,
            pairs,
            retry: values::retry_policy(py, retry)?,
            append_retry: values::retry_policy(py, append_retry)?,
            observer: on_failed_attempt.map(Arc::new),
            slot: Mutex::new(Slot::Released),
        };
        // Build now, so a bad URL or policy fails here rather than on the first request.
        let generation = runtime::current()?;
        let core = stream
            .build(&generation, content_type, stream.extras.clone())
            .map_err(|e| error::to_py(py, &e))?;
        stream.slot = Mutex::new(Slot::Ready(generation.id, core));
        Ok(stream)
    }

    /// The stream URL.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The content type, once known (given, or learned by create, head or connect).
    #[getter]
    fn content_type(&self) -> Option<String> {
        match self.slot.lock().as_deref() {
            Ok(Slot::Ready(_, s)) => s.content_type(),
            _ => None,
        }
    }

    /// Makes the handle unusable; later operations raise `AlreadyClosedError`.
    fn release(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Slot::Released;
        }
    }

    #[pyo3(signature = (
        *, blocking, content_type = None, ttl_seconds = None, expires_at = None, closed = false,
        body = None, fork_from = None, fork_offset = None, fork_sub_offset = None,
        headers = Vec::new(), params = Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        py: Python<'_>,
        blocking: bool,
        content_type: Option<String>,
        ttl_seconds: Option<u64>,
        expires_at: Option<String>,
        closed: bool,
        body: Option<Payload>,
        fork_from: Option<String>,
        fork_offset: Option<String>,
        fork_sub_offset: Option<u64>,
        headers: Pairs,
        params: Pairs,
    ) -> PyResult<Py<PyAny>> {
        let fork = match fork_from {
            Some(source) => Some(ForkOptions {
                source,
                offset: fork_offset.map(Offset::from),
                sub_offset: fork_sub_offset,
            }),
            None if fork_offset.is_some() || fork_sub_offset.is_some() => {
                let e = Error::InvalidArgument {
                    message: "fork_offset and fork_sub_offset need fork_from".into(),
                };
                return Err(error::to_py(py, &e));
            }
            None => None,
        };
        let opts = CreateOptions {
            content_type,
            ttl_seconds,
            expires_at,
            closed,
            body: body.map(Bytes::from),
            fork,
            extras: values::extras(py, headers, params)?,
        };
        let s = self.core(py)?;
        runtime::run(py, blocking, async move {
            let r = s.create(opts).await?;
            Ok(Created {
                created: r.status == CreateStatus::Created,
                content_type: r.content_type,
                next_offset: offset_str(r.next_offset),
                closed: r.closed,
            })
        })
    }

    #[pyo3(signature = (
        data, *, blocking, seq = None, content_type = None, headers = Vec::new(),
        params = Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        py: Python<'_>,
        data: Payload,
        blocking: bool,
        seq: Option<String>,
        content_type: Option<String>,
        headers: Pairs,
        params: Pairs,
    ) -> PyResult<Py<PyAny>> {
        let opts = append_options(py, seq, content_type, headers, params)?;
        let s = self.core(py)?;
        runtime::run(py, blocking, async move {
            s.append_with(Bytes::from(data), opts)
                .await
                .map(Appended::from)
        })
    }

    #[pyo3(signature = (
        messages, *, blocking, seq = None, content_type = None, headers = Vec::new(),
        params = Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn append_batch(
        &self,
        py: Python<'_>,
        messages: Vec<Payload>,
        blocking: bool,
        seq: Option<String>,
        content_type: Option<String>,
        headers: Pairs,
        params: Pairs,
    ) -> PyResult<Py<PyAny>> {
        let opts = append_options(py, seq, content_type, headers, params)?;
        let s = self.core(py)?;
        runtime::run(py, blocking, async move {
            s.append_batch(messages.into_iter().map(Bytes::from), opts)
                .await
                .map(Appended::from)
        })
    }

    /// A streamed append: one message made of the chunks `pull()` returns (see
    /// `crate::pull`), sent as they come; never retried.
    #[pyo3(signature = (
        pull, *, blocking, seq = None, content_type = None, headers = Vec::new(),
        params = Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn append_stream(
        &self,
        py: Python<'_>,
        pull: Py<PyAny>,
        blocking: bool,
        seq: Option<String>,
        content_type: Option<String>,
        headers: Pairs,
        params: Pairs,
    ) -> PyResult<Py<PyAny>> {
        let opts = append_options(py, seq, content_type, headers, params)?;
        let locals = if blocking {
            None
        } else {
            Some(generic::get_current_locals::<ForkSafeRuntime>(py)?)
        };
        let body = crate::pull::body(pull, locals);
        let s = self.core(py)?;
        runtime::run(py, blocking, async move {
            s.append_stream(body, opts).await.map(Appended::from)
        })
    }

    #[pyo3(signature = (
        final_message = None, *, blocking, content_type = None, headers = Vec::new(),
        params = Vec::new(),
    ))]
    fn close(
        &self,
        py: Python<'_>,
        final_message: Option<Payload>,
        blocking: bool,
        content_type: Option<String>,
        headers: Pairs,
        params: Pairs,
    ) -> PyResult<Py<PyAny>> {
        let opts = CloseOptions {
            body: final_message.map(Bytes::from),
            content_type,
            extras: values::extras(py, headers, params)?,
        };
        let s = self.core(py)?;
        runtime::run(py, blocking, async move {
            let r = s.close_with(opts).await?;
            Ok(Closed {
                final_offset: offset_str(r.final_offset),
            })
        })
    }

    #[pyo3(signature = (*, blocking))]
    fn head(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let s = self.core(py)?;
        runtime::run(py, blocking, async move {
            let h = s.head().await?;
            Ok(Head {
                content_type: h.content_type,
                next_offset: offset_str(h.next_offset),
                ttl_seconds: h.ttl_seconds,
                expires_at: h.expires_at,
                closed: h.closed,
                etag: h.etag,
            })
        })
    }

    #[pyo3(signature = (*, blocking))]
    fn exists(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let s = self.core(py)?;
        runtime::run(py, blocking, async move { s.exists().await })
    }

    #[pyo3(signature = (
        *, blocking, offset = None, live = None, json = false, headers = Vec::new(),
        params = Vec::new(), retry = None, on_error = None, max_chunk_bytes = None,
        max_read_bytes = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        blocking: bool,
        offset: Option<String>,
        live: Option<String>,
        json: bool,
        headers: Pairs,
        params: Pairs,
        retry: Option<RawPolicy>,
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
        let s = self.core(py)?;
        response::read_handle(py, s, args, blocking)
    }

    /// An idempotent producer writing to this stream (see `producer::Producer`). Durations in
    /// seconds; the Python layer passes every option.
    ///
    /// `asyncio`: the producer of the asyncio flavour. Its requests are sent by its own task,
    /// for no Python caller, so a coroutine returned by a header or parameter callable runs on
    /// the event loop running now (if any): the producer gets a core handle whose extras (the
    /// stream's, built again) are bound to that loop, and so are its own.
    #[pyo3(signature = (
        producer_id, *, epoch, auto_claim, linger, max_batch_bytes, max_batch_messages,
        max_in_flight, max_buffered_bytes, buffer_timeout, delivery_timeout, validate_json,
        retry = None, headers = Vec::new(), params = Vec::new(), on_error = None,
        asyncio = false,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn producer(
        &self,
        py: Python<'_>,
        producer_id: String,
        epoch: values::WholeNumber,
        auto_claim: bool,
        linger: Option<f64>,
        max_batch_bytes: Option<values::WholeNumber>,
        max_batch_messages: Option<values::WholeNumber>,
        max_in_flight: Option<values::WholeNumber>,
        max_buffered_bytes: Option<values::WholeNumber>,
        buffer_timeout: Option<f64>,
        delivery_timeout: Option<f64>,
        validate_json: bool,
        retry: Option<RawPolicy>,
        headers: Pairs,
        params: Pairs,
        on_error: Option<Py<PyAny>>,
        asyncio: bool,
    ) -> PyResult<producer::Producer> {
        let event_loop = if asyncio {
            // None without a running loop: async callables then fail with a clear TypeError.
            generic::get_current_locals::<ForkSafeRuntime>(py).ok()
        } else {
            None
        };
        // Negative numbers and ones past 64 bits get an error naming the option; the core
        // checks each option's own range.
        let count =
            |name: &str, v: values::WholeNumber| v.count(name).map_err(|e| error::to_py(py, &e));
        let size = |name: &str, v: Option<values::WholeNumber>| {
            v.map(|v| count(name, v).map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
                .transpose()
        };
        let args = producer::ProducerArgs {
            epoch: count("epoch", epoch)?,
            auto_claim,
            linger,
            max_batch_bytes: size("max_batch_bytes", max_batch_bytes)?,
            max_batch_messages: size("max_batch_messages", max_batch_messages)?,
            max_in_flight: size("max_in_flight", max_in_flight)?,
            max_buffered_bytes: size("max_buffered_bytes", max_buffered_bytes)?,
            buffer_timeout,
            delivery_timeout,
            validate_json,
            retry,
            headers,
            params,
            on_error,
            event_loop: event_loop.clone(),
        };
        let mut s = self.core(py)?;
        if let Some(locals) = event_loop {
            let (h, p) = &self.pairs;
            let extras = values::extras_on(
                py,
                values::clone_pairs(py, h),
                values::clone_pairs(py, p),
                Some(locals),
            )?;
            let generation = runtime::current()?;
            s = self
                .build(&generation, s.content_type(), extras)
                .map_err(|e| error::to_py(py, &e))?;
        }
        producer::Producer::build(py, s, producer_id, args)
    }

    #[pyo3(signature = (*, blocking))]
    fn delete(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let s = self.core(py)?;
        runtime::run(py, blocking, async move { s.delete().await })
    }
}
