//! `Response` and `Batches`: the native side of `StreamResponse` and `AsyncStreamResponse`.
//!
//! A thin wrapper of the core [`StreamResponse`]: the read's first request is sent by
//! [`read_url`] or [`read_handle`], metadata comes from the core response, and data is pulled
//! batch by batch through [`runtime::run`] (GIL released, Ctrl-C, asyncio cancellation). Chunk
//! and message iteration are built on batches by the Python layer. JSON messages cross over as
//! the plain Python values `json.loads` would give (module `json`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use durable_streams_client::{
    Batch, Batches as CoreBatches, DurableStream, Error, ErrorDecision, ErrorHook, FailedAttempt,
    JsonPick, LiveMode, Offset, ReadOptions, RequestExtras, StreamResponse,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use pyo3_async_runtimes::generic::ContextExt;

use crate::client::Client;
use crate::error;
use crate::json::{ListBuilder, Messages};
use crate::runtime::{self, ForkSafeRuntime};
use crate::values::{self, Pairs};

/// A retry policy as the Python layer passes it (see `values::retry_policy`).
type RawPolicy = (f64, f64, f64, Option<i64>);

/// Bytes handed to Python as `bytes` (one copy, made with the GIL held).
pub(crate) struct PyBytesOut(pub(crate) Bytes);

impl<'py> IntoPyObject<'py> for PyBytesOut {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

/// The read options shared by `stream()` and `Stream.stream()`.
pub(crate) struct ReadArgs {
    pub(crate) offset: Option<String>,
    pub(crate) live: Option<String>,
    pub(crate) json: bool,
    pub(crate) headers: Pairs,
    pub(crate) params: Pairs,
    pub(crate) retry: Option<RawPolicy>,
    pub(crate) on_error: Option<Py<PyAny>>,
    pub(crate) max_chunk_bytes: Option<values::WholeNumber>,
    pub(crate) max_read_bytes: Option<values::WholeNumber>,
}

/// The live mode named by the Python layer; `None` (not set) leaves the core's default.
fn live_mode(py: Python<'_>, live: Option<&str>) -> PyResult<Option<LiveMode>> {
    Ok(Some(match live {
        None => return Ok(None),
        Some("off") => LiveMode::Off,
        Some("long-poll") => LiveMode::LongPoll,
        Some("sse") => LiveMode::Sse,
        Some("auto") => LiveMode::Auto,
        Some(other) => {
            let e = Error::InvalidArgument {
                message: format!(
                    "live must be False, True, \"auto\", \"long-poll\" or \"sse\", got {other:?}"
                ),
            };
            return Err(error::to_py(py, &e));
        }
    }))
}

impl ReadArgs {
    fn options(self, py: Python<'_>) -> PyResult<ReadOptions> {
        let mut o = ReadOptions::new().json(self.json);
        if let Some(live) = live_mode(py, self.live.as_deref())? {
            o = o.live(live);
        }
        if let Some(off) = self.offset {
            o = o.offset(Offset::from(off));
        }
        o.extras = values::extras(py, self.headers, self.params)?;
        if let Some(p) = values::retry_policy(py, self.retry)? {
            o = o.retry(p);
        }
        if let Some(hook) = self.on_error {
            o.on_error = Some(error_hook(Arc::new(hook)));
        }
        // Unset stays unset: the core's defaults and checks (its errors name the option).
        let bytes = |name: &str, v: Option<values::WholeNumber>| {
            v.map(|v| v.limit(name))
                .transpose()
                .map_err(|e| error::to_py(py, &e))
        };
        o.max_chunk_bytes = bytes("max_chunk_bytes (maxChunkBytes)", self.max_chunk_bytes)?;
        o.max_read_bytes = bytes("max_read_bytes (maxReadBytes)", self.max_read_bytes)?;
        Ok(o)
    }
}

/// The core error hook for a Python `on_error(error) -> None | {"headers":..., "params":...}`,
/// called after every failed attempt: a mapping retries with its values, `None` leaves it to
/// the retry policy. The core calls it from the read's own future with no lock held; an
/// awaitable result (async flavour) is awaited on the caller's event loop. A hook that raises
/// or returns something else ends the read with the original error (the problem is logged as a
/// warning).
fn error_hook(f: Arc<Py<PyAny>>) -> ErrorHook {
    ErrorHook::decide(move |failed: FailedAttempt| {
        let f = Arc::clone(&f);
        async move {
            match call_hook(&f, &failed.error).await {
                Ok(Some(extras)) => ErrorDecision::Retry(extras),
                Ok(None) => ErrorDecision::Default,
                Err(e) => {
                    let detail = runtime::attach(|py| {
                        e.value(py)
                            .repr()
                            .map(|r| r.to_string())
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                    tracing::warn!(
                        "the read's on_error callable failed, ending the read: {detail}"
                    );
                    ErrorDecision::Stop
                }
            }
        }
    })
}

type Awaiting = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send + 'static>>;

/// The error when a runtime thread may no longer enter Python (see [`runtime::attach`]).
fn exiting() -> PyErr {
    PyRuntimeError::new_err("the interpreter is exiting")
}

async fn call_hook(f: &Py<PyAny>, err: &Error) -> PyResult<Option<RequestExtras>> {
    let out: Result<Py<PyAny>, Awaiting> = runtime::attach(|py| {
        let exc = error::to_py(py, err);
        let out = f.bind(py).call1((exc.value(py),))?;
        if out.hasattr("__await__")? {
            let Some(locals) = ForkSafeRuntime::get_task_locals() else {
                if out.hasattr("close")? {
                    out.call_method0("close")?;
                }
                return Err(PyTypeError::new_err(
                    "an async on_error needs the async API; the blocking one takes plain callables",
                ));
            };
            let fut = runtime::into_future(&locals, out)?;
            return Ok(Err(Box::pin(fut) as Awaiting));
        }
        Ok(Ok(out.unbind()))
    })
    .ok_or_else(exiting)??;
    let out = match out {
        Ok(v) => v,
        Err(awaiting) => awaiting.await?,
    };
    runtime::attach(|py| {
        let out = out.bind(py);
        if out.is_none() {
            return Ok(None);
        }
        let Ok(d) = out.cast::<PyDict>() else {
            return Err(PyTypeError::new_err(format!(
                "on_error must return None or a dict with \"headers\" and/or \"params\", got {}",
                out.get_type().name()?
            )));
        };
        let pairs = |key: &str| -> PyResult<Pairs> {
            match d.get_item(key)? {
                Some(v) if !v.is_none() => v
                    .call_method0("items")?
                    .try_iter()?
                    .map(|kv| kv?.extract::<(String, Py<PyAny>)>())
                    .collect(),
                _ => Ok(Vec::new()),
            }
        };
        let (h, p) = (pairs("headers")?, pairs("params")?);
        values::extras(py, h, p).map(Some)
    })
    .ok_or_else(exiting)?
}

/// Starts a read of `url` (module-level `stream()`).
pub(crate) fn read_url(
    py: Python<'_>,
    url: String,
    client: Option<Py<Client>>,
    args: ReadArgs,
    blocking: bool,
) -> PyResult<Py<PyAny>> {
    let mut opts = args.options(py)?;
    let generation = runtime::current()?;
    opts.client = Some(match client {
        Some(c) => c
            .get()
            .core(&generation)
            .map_err(|e| error::to_py(py, &e))?,
        None => generation.client.clone(),
    });
    runtime::run(py, blocking, async move {
        let resp = durable_streams_client::stream(url, opts).await?;
        Ok(Response::new(resp))
    })
}

/// Starts a read through a stream handle (`DurableStream.stream()`).
pub(crate) fn read_handle(
    py: Python<'_>,
    s: DurableStream,
    args: ReadArgs,
    blocking: bool,
) -> PyResult<Py<PyAny>> {
    let opts = args.options(py)?;
    runtime::run(py, blocking, async move {
        let resp = s.stream(opts).await?;
        Ok(Response::new(resp))
    })
}

/// Fails in a child process: a read's connection belongs to the parent.
fn check_pid(py: Python<'_>, pid: u32) -> PyResult<()> {
    if std::process::id() == pid {
        return Ok(());
    }
    Err(error::to_py(
        py,
        &Error::AlreadyClosed {
            what: "this read (started before fork(), it belongs to the parent process; \
                   start a new one in the child)"
                .into(),
        },
    ))
}

/// What a JSON read keeps of each message: all of it, the value of `field`, or an object of
/// `fields` (the Python layer checks the types and that only one is given).
fn json_pick(
    py: Python<'_>,
    field: Option<String>,
    fields: Option<Vec<String>>,
) -> PyResult<Option<JsonPick>> {
    match (field, fields) {
        (None, None) => Ok(None),
        (Some(f), None) => Ok(Some(JsonPick::Value(f))),
        (None, Some(fs)) => Ok(Some(JsonPick::Members(fs))),
        (Some(_), Some(_)) => Err(error::to_py(
            py,
            &Error::InvalidArgument {
                message: "give field (one value of each message) or fields (an object of \
                          some members), not both"
                    .into(),
            },
        )),
    }
}

/// A read in progress.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Response {
    inner: Arc<StreamResponse>,
    pid: u32,
}

impl Response {
    /// The position stays where the data handed to Python ends: the Python layer releases it
    /// once it holds a batch or a whole read's result. An asyncio task cancelled after the
    /// data was read but before it arrived then leaves `offset` before that data, so a read
    /// resumed from there gets it again.
    fn new(resp: StreamResponse) -> Self {
        resp.hold_position();
        Self {
            inner: Arc::new(resp),
            pid: std::process::id(),
        }
    }

    fn checked(&self, py: Python<'_>) -> PyResult<Arc<StreamResponse>> {
        check_pid(py, self.pid)?;
        Ok(Arc::clone(&self.inner))
    }
}

/// The three kinds of batch readers.
enum Kind {
    Bytes(CoreBatches<Bytes>),
    Text(CoreBatches<String>),
    Json(CoreBatches<Vec<String>>),
}

/// A batch's data for Python: bytes, str, or the list of its JSON messages (built from the
/// core's JSON array texts by [`Messages`]).
#[derive(IntoPyObject)]
enum Data {
    Bytes(PyBytesOut),
    Text(String),
    Json(Messages),
}

/// `(data, offset, cursor, up_to_date, stream_closed, checkpoint)`.
type BatchTuple = (Data, String, Option<String>, bool, bool, bool);

fn tuple<D>(b: Batch<D>, data: impl FnOnce(D) -> Data) -> BatchTuple {
    (
        data(b.data),
        b.offset.as_str().to_owned(),
        b.cursor,
        b.up_to_date,
        b.stream_closed,
        b.checkpoint,
    )
}

#[pymethods]
impl Response {
    #[getter]
    fn url(&self) -> String {
        self.inner.url().to_string()
    }
    #[getter]
    fn content_type(&self) -> Option<String> {
        self.inner.content_type().map(str::to_owned)
    }
    #[getter]
    fn is_json(&self) -> bool {
        self.inner.is_json()
    }
    #[getter]
    fn live(&self) -> &'static str {
        self.inner.live().as_str()
    }
    #[getter]
    fn start_offset(&self) -> String {
        self.inner.start_offset().as_str().to_owned()
    }
    #[getter]
    fn offset(&self) -> String {
        self.inner.offset().as_str().to_owned()
    }
    #[getter]
    fn cursor(&self) -> Option<String> {
        self.inner.cursor()
    }
    #[getter]
    fn up_to_date(&self) -> bool {
        self.inner.up_to_date()
    }
    #[getter]
    fn stream_closed(&self) -> bool {
        self.inner.stream_closed()
    }

    /// Ends the read: the request in flight is abandoned and batch readers end.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Moves `offset` and the other position getters past the data returned so far: called
    /// by the Python layer once the data is in its hands.
    fn release_position(&self) {
        self.inner.release_position();
    }

    #[pyo3(signature = (*, blocking))]
    fn read_bytes(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let r = self.checked(py)?;
        runtime::run(py, blocking, async move { r.bytes().await.map(PyBytesOut) })
    }

    #[pyo3(signature = (*, blocking))]
    fn read_text(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let r = self.checked(py)?;
        runtime::run(py, blocking, async move { r.text().await })
    }

    /// The JSON messages, as a list of Python values (see [`Messages`]), or what `field` or
    /// `fields` picks of each.
    #[pyo3(signature = (*, blocking, field = None, fields = None))]
    fn read_json(
        &self,
        py: Python<'_>,
        blocking: bool,
        field: Option<String>,
        fields: Option<Vec<String>>,
    ) -> PyResult<Py<PyAny>> {
        let r = self.checked(py)?;
        let pick = json_pick(py, field, fields)?;
        // Values are built as the read goes on, on the read's own thread, which takes the GIL
        // for each batch, or for 64 MiB of texts at a time once it had to wait for it (the
        // event loop or another thread running Python): the texts of the whole read are never
        // held at once. What is left is built where the result is delivered.
        let mut list = ListBuilder::new(py);
        runtime::run(py, blocking, async move {
            let take = |texts| list.take(texts);
            match pick {
                None => r.json_arrays_each(take).await,
                Some(p) => r.json_picked_arrays_each(p, take).await,
            }
            .map(|()| list)
        })
    }

    /// A batch reader: `kind` is "bytes", "text" or "json" (with `field` or `fields`, what
    /// they pick of each JSON message).
    #[pyo3(signature = (kind, field = None, fields = None))]
    fn batches(
        &self,
        py: Python<'_>,
        kind: &str,
        field: Option<String>,
        fields: Option<Vec<String>>,
    ) -> PyResult<Batches> {
        let r = self.checked(py)?;
        let pick = json_pick(py, field, fields)?;
        let k = match (kind, pick) {
            ("bytes", None) => r.byte_batches().map(Kind::Bytes),
            ("text", None) => r.text_batches().map(Kind::Text),
            ("json", None) => r.json_array_batches().map(Kind::Json),
            ("json", Some(p)) => r.json_picked_array_batches(p).map(Kind::Json),
            (other, Some(_)) => Err(Error::InvalidArgument {
                message: format!("field and fields apply to JSON batches, not {other:?}"),
            }),
            (other, None) => Err(Error::InvalidArgument {
                message: format!("unknown batch kind {other:?}"),
            }),
        }
        .map_err(|e| error::to_py(py, &e))?;
        Ok(Batches {
            inner: Arc::new(tokio::sync::Mutex::new(k)),
            pid: self.pid,
        })
    }
}

/// Pulls the batches of one read.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Batches {
    inner: Arc<tokio::sync::Mutex<Kind>>,
    pid: u32,
}

#[pymethods]
impl Batches {
    /// The next batch as a tuple, or `None` once the read is over.
    #[pyo3(signature = (*, blocking))]
    fn next(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        check_pid(py, self.pid)?;
        let inner = Arc::clone(&self.inner);
        runtime::run(py, blocking, async move {
            let mut k = inner.lock().await;
            Ok(match &mut *k {
                Kind::Bytes(b) => b
                    .next_batch()
                    .await?
                    .map(|b| tuple(b, |d| Data::Bytes(PyBytesOut(d)))),
                Kind::Text(b) => b.next_batch().await?.map(|b| tuple(b, Data::Text)),
                Kind::Json(b) => b
                    .next_batch()
                    .await?
                    .map(|b| tuple(b, |d| Data::Json(Messages(d)))),
            })
        })
    }
}
