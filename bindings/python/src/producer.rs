//! `Producer` and `Receipt`: the native side of `IdempotentProducer` and
//! `AsyncIdempotentProducer`.
//!
//! A thin wrapper of the core [`IdempotentProducer`]: batching, sequencing, retries and
//! fencing are the core's. Waiting goes through [`runtime::run`]. The producer's task runs on
//! the process's runtime; `on_error` is never called from that task: errors are handed to a
//! separate task which calls Python from a blocking thread, so a busy GIL never stalls
//! deliveries and no Rust lock is held while Python runs.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use durable_streams_client::{
    DurableStream, Error, IdempotentProducer, Offset, Receipt as CoreReceipt,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3_async_runtimes::TaskLocals;

use crate::borrowed::borrowed;
use crate::error;
use crate::runtime;
use crate::values::{self, Pairs, Payload};

/// The options as the Python layer passes them (durations in seconds).
pub(crate) struct ProducerArgs {
    pub(crate) epoch: u64,
    pub(crate) auto_claim: bool,
    /// The options left `None` take the core's defaults (not copied here).
    pub(crate) linger: Option<f64>,
    pub(crate) max_batch_bytes: Option<usize>,
    pub(crate) max_batch_messages: Option<usize>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) max_buffered_bytes: Option<usize>,
    pub(crate) buffer_timeout: Option<f64>,
    pub(crate) delivery_timeout: Option<f64>,
    pub(crate) validate_json: bool,
    pub(crate) retry: Option<(f64, f64, f64, Option<i64>)>,
    pub(crate) headers: Pairs,
    pub(crate) params: Pairs,
    pub(crate) on_error: Option<Py<PyAny>>,
    /// Where coroutines of header and parameter callables run (asyncio flavour).
    pub(crate) event_loop: Option<TaskLocals>,
}

fn seconds(name: &str, v: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(v).map_err(|_| Error::InvalidArgument {
        message: format!("{name} must be a non-negative number of seconds, got {v}"),
    })
}

fn check_pid(py: Python<'_>, pid: u32, what: &str) -> PyResult<()> {
    if runtime::pid() == pid {
        return Ok(());
    }
    Err(error::to_py(
        py,
        &Error::AlreadyClosed {
            what: format!(
                "this {what} (started before fork(), its task belongs to the parent process; \
                 create a new producer in the child)"
            ),
        },
    ))
}

/// An idempotent producer.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Producer {
    inner: IdempotentProducer,
    pid: u32,
}

/// A delivery, as a dict.
#[derive(IntoPyObject)]
struct Delivered {
    offset: Option<String>,
    duplicate: bool,
    epoch: u64,
    seq: u64,
}

impl From<durable_streams_client::Delivery> for Delivered {
    fn from(d: durable_streams_client::Delivery) -> Self {
        Self {
            offset: d.offset.map(|o| o.as_str().to_owned()),
            duplicate: d.duplicate,
            epoch: d.epoch,
            seq: d.seq,
        }
    }
}

fn offset_str(o: Option<Offset>) -> Option<String> {
    o.map(|o| o.as_str().to_owned())
}

impl Producer {
    pub(crate) fn build(
        py: Python<'_>,
        stream: DurableStream,
        producer_id: String,
        a: ProducerArgs,
    ) -> PyResult<Self> {
        let generation = runtime::current()?;
        let handle = generation.handle();
        let err = |e: Error| error::to_py(py, &e);
        let mut b = stream
            .producer(producer_id)
            .runtime(handle.clone())
            .epoch(a.epoch)
            .auto_claim(a.auto_claim)
            .validate_json(a.validate_json)
            .extras(values::extras_on(py, a.headers, a.params, a.event_loop)?);
        if let Some(v) = a.linger {
            b = b.linger(seconds("linger", v).map_err(err)?);
        }
        if let Some(n) = a.max_batch_bytes {
            b = b.max_batch_bytes(n);
        }
        if let Some(n) = a.max_in_flight {
            b = b.max_in_flight(n);
        }
        if let Some(n) = a.max_buffered_bytes {
            b = b.max_buffered_bytes(n);
        }
        if let Some(v) = a.buffer_timeout {
            b = b.buffer_timeout(seconds("buffer_timeout", v).map_err(err)?);
        }
        if let Some(v) = a.delivery_timeout {
            b = b.delivery_timeout(seconds("delivery_timeout", v).map_err(err)?);
        }
        if let Some(n) = a.max_batch_messages {
            b = b.max_batch_messages(n);
        }
        if let Some(p) = values::retry_policy(py, a.retry)? {
            b = b.retry(p);
        }
        if let Some(f) = a.on_error {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Error>();
            let f = Arc::new(f);
            handle.spawn(async move {
                while let Some(e) = rx.recv().await {
                    let f = Arc::clone(&f);
                    let _ = tokio::task::spawn_blocking(move || {
                        // Skipped once the interpreter is exiting.
                        runtime::attach(|py| {
                            let exc = error::to_py(py, &e);
                            if let Err(failed) = f.bind(py).call1((exc.value(py),)) {
                                failed.write_unraisable(py, Some(f.bind(py)));
                            }
                        })
                    })
                    .await;
                }
            });
            b = b.on_error(move |e: &Error| {
                let _ = tx.send(e.clone());
            });
        }
        let inner = b.build().map_err(err)?;
        Ok(Self {
            inner,
            pid: runtime::pid(),
        })
    }

    fn core(&self, py: Python<'_>) -> PyResult<IdempotentProducer> {
        check_pid(py, self.pid, "idempotent producer")?;
        Ok(self.inner.clone())
    }

    /// The producer itself, for the calls that do not wait (no clone: a clone and its drop
    /// cost four atomic operations, a noticeable part of one append).
    fn core_ref(&self, py: Python<'_>) -> PyResult<&IdempotentProducer> {
        check_pid(py, self.pid, "idempotent producer")?;
        Ok(&self.inner)
    }

    /// Appends `data` if there is room now: its receipt, or `None` when the buffer is full.
    fn append_now(&self, py: Python<'_>, data: &[u8]) -> PyResult<Option<Py<PyAny>>> {
        match self.core_ref(py)?.try_append(data) {
            Ok(r) => Py::new(py, Receipt { inner: r }).map(|r| Some(r.into_any())),
            Err(Error::BufferFull { .. }) => Ok(None),
            Err(e) => Err(error::to_py(py, &e)),
        }
    }

    /// Appends, waiting (GIL released) for room only when the buffer is full.
    fn append_blocking(&self, py: Python<'_>, data: Payload) -> PyResult<Py<PyAny>> {
        // Fast path: room now means no wait, so no runtime round trip and no GIL release.
        if let Some(receipt) = self.append_now(py, data.as_ref())? {
            return Ok(receipt);
        }
        let p = self.inner.clone();
        let data = Bytes::from(data);
        runtime::run(py, true, async move {
            p.append(data).await.map(|r| Receipt { inner: r })
        })
    }
}

#[pymethods]
impl Producer {
    #[getter]
    fn producer_id(&self) -> &str {
        self.inner.producer_id()
    }
    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.epoch()
    }
    #[getter]
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }
    #[getter]
    fn pending_count(&self) -> u64 {
        self.inner.pending_count()
    }
    #[getter]
    fn in_flight_count(&self) -> usize {
        self.inner.in_flight_count()
    }
    #[getter]
    fn buffered_bytes(&self) -> usize {
        self.inner.buffered_bytes()
    }
    #[getter]
    fn last_offset(&self) -> Option<String> {
        offset_str(self.inner.last_offset())
    }

    /// A snapshot of the counters, as a dict (latency in seconds).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let m = self.inner.metrics();
        let d = pyo3::types::PyDict::new(py);
        d.set_item("appended_messages", m.appended_messages)?;
        d.set_item("messages", m.messages)?;
        d.set_item("bytes", m.bytes)?;
        d.set_item("batches", m.batches)?;
        d.set_item("requests", m.requests)?;
        d.set_item("retries", m.retries)?;
        d.set_item("duplicates", m.duplicates)?;
        d.set_item("failed_batches", m.failed_batches)?;
        d.set_item("failed_messages", m.failed_messages)?;
        d.set_item("in_flight", m.in_flight)?;
        d.set_item("buffered_bytes", m.buffered_bytes)?;
        d.set_item("latency_count", m.latency.count)?;
        d.set_item("latency_total", m.latency.total.as_secs_f64())?;
        d.set_item("latency_max", m.latency.max.as_secs_f64())?;
        d.set_item("latency_mean", m.latency.mean().as_secs_f64())?;
        Ok(d)
    }

    /// Appends if there is room now, else raises `BufferFullError`. Never waits.
    fn try_append(&self, py: Python<'_>, data: Payload) -> PyResult<Receipt> {
        // Copied straight from the Python object into the open batch.
        self.core_ref(py)?
            .try_append(&data)
            .map(|r| Receipt { inner: r })
            .map_err(|e| error::to_py(py, &e))
    }

    /// Appends, waiting (up to the buffer timeout) for room: with the GIL released when
    /// `blocking`, else as an awaitable. `blocking` may be positional (cheaper per call).
    #[pyo3(signature = (data, blocking))]
    fn append(&self, py: Python<'_>, data: Payload, blocking: bool) -> PyResult<Py<PyAny>> {
        if blocking {
            return self.append_blocking(py, data);
        }
        let p = self.core(py)?;
        let data = Bytes::from(data);
        runtime::run(py, false, async move {
            p.append(data).await.map(|r| Receipt { inner: r })
        })
    }

    /// Appends the messages an iterator yields, in order, in one call: the batch form of
    /// `append` (each message is validated and copied as by `append`, without a Python call
    /// or a receipt object per message). Messages go to the core in runs of up to 256 (one
    /// room reservation and one lock per run).
    ///
    /// `first` holds messages taken from the iterator before (they go first) and `error` an
    /// exception the iterator raised after them (raised once they are appended). With
    /// `blocking`, waits (GIL released) for room whenever the buffer is full; without, stops
    /// at a message that does not fit. Returns `(appended, last receipt or None, the messages
    /// taken but not appended or None, the iterator's deferred exception or None)`; those two
    /// go back as `first` and `error` once there is room. Any other failure is raised at once;
    /// the messages before it stay appended.
    #[pyo3(signature = (messages, first, error, blocking))]
    #[allow(clippy::type_complexity)]
    fn append_many<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
        first: Option<Vec<Bound<'py, PyAny>>>,
        error: Option<Bound<'py, PyAny>>,
        blocking: bool,
    ) -> PyResult<(
        u64,
        Option<Receipt>,
        Option<Vec<Py<PyAny>>>,
        Option<Py<PyAny>>,
    )> {
        let p = self.core_ref(py)?;
        let mut appended = 0u64;
        let mut last = None;
        let mut queue: std::collections::VecDeque<Bound<'py, PyAny>> =
            first.unwrap_or_default().into();
        // An exception of the iterator, raised once the messages taken before it are appended.
        let mut deferred: Option<PyErr> = error.map(PyErr::from_value);
        let mut iter = if deferred.is_some() {
            None
        } else {
            Some(messages.try_iter()?)
        };
        let mut items: Vec<Bound<'py, PyAny>> = Vec::new();
        // Per item: `None` when its bytes are read in place (see `borrowed`), else the
        // message taken as a `Payload`.
        let mut owned: Vec<Option<Payload>> = Vec::new();
        loop {
            items.clear();
            owned.clear();
            let mut refused = None;
            while items.len() < MANY_RUN {
                let item = match queue.pop_front() {
                    Some(item) => item,
                    None => match iter.as_mut().and_then(Iterator::next) {
                        Some(Ok(item)) => item,
                        Some(Err(e)) => {
                            deferred = Some(e);
                            iter = None;
                            break;
                        }
                        None => {
                            iter = None;
                            break;
                        }
                    },
                };
                let taken = match borrowed(py, &item) {
                    Ok(Some(_)) => Ok(None),
                    Ok(None) => item.extract::<Payload>().map(Some),
                    Err(e) => Err(e),
                };
                match taken {
                    Ok(data) => {
                        owned.push(data);
                        items.push(item);
                    }
                    Err(e) => {
                        refused = Some((item, e));
                        break;
                    }
                }
            }
            // The messages' bytes: read again where they are (as cheap as before, as CPython
            // keeps a string's UTF-8 once made), or those of the payload.
            let pieces = items
                .iter()
                .zip(&owned)
                .map(|(item, data)| match data {
                    Some(data) => Ok(data.as_ref()),
                    None => borrowed(py, item).map(Option::unwrap_or_default),
                })
                .collect::<PyResult<Vec<&[u8]>>>()?;
            let done = p.try_append_many(&pieces);
            appended += done.count as u64;
            if done.last.is_some() {
                last = done.last;
            }
            match done.stopped {
                None => {}
                Some(Error::BufferFull { .. }) => {
                    let size = pieces.get(done.count).map_or(1, |d| d.len());
                    // The messages taken and not appended go back to the front, in order; so
                    // does an item that is not a message (refused again when its turn comes).
                    if let Some((item, _)) = refused {
                        queue.push_front(item);
                    }
                    for item in items.drain(done.count..).rev() {
                        queue.push_front(item);
                    }
                    if !blocking {
                        let pending = queue.into_iter().map(Bound::unbind).collect();
                        let error = deferred.map(|e| e.into_value(py).into_any());
                        return Ok((
                            appended,
                            last.map(|inner| Receipt { inner }),
                            Some(pending),
                            error,
                        ));
                    }
                    let q = p.clone();
                    runtime::run(py, true, async move { q.wait_for_room(size).await })?;
                    continue;
                }
                Some(e) => return Err(error::to_py(py, &e)),
            }
            if let Some((_, e)) = refused {
                return Err(e);
            }
            if queue.is_empty() && iter.is_none() {
                break;
            }
        }
        if let Some(e) = deferred {
            return Err(e);
        }
        Ok((appended, last.map(|inner| Receipt { inner }), None, None))
    }

    #[pyo3(signature = (n, *, blocking))]
    fn wait_for_room(&self, py: Python<'_>, n: usize, blocking: bool) -> PyResult<Py<PyAny>> {
        let p = self.core(py)?;
        runtime::run(py, blocking, async move { p.wait_for_room(n).await })
    }

    #[pyo3(signature = (*, blocking))]
    fn flush(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let p = self.core(py)?;
        runtime::run(py, blocking, async move { p.flush().await })
    }

    #[pyo3(signature = (*, blocking))]
    fn restart(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let p = self.core(py)?;
        runtime::run(py, blocking, async move { p.restart().await })
    }

    #[pyo3(signature = (*, blocking))]
    fn detach(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        let p = self.core(py)?;
        runtime::run(py, blocking, async move { p.detach().await })
    }

    /// Flushes and closes the stream; the final offset (or None).
    #[pyo3(signature = (final_message = None, *, blocking))]
    fn close(
        &self,
        py: Python<'_>,
        final_message: Option<Payload>,
        blocking: bool,
    ) -> PyResult<Py<PyAny>> {
        let p = self.core(py)?;
        let body = final_message.map(Bytes::from);
        runtime::run(
            py,
            blocking,
            async move { p.close(body).await.map(offset_str) },
        )
    }
}

/// The most messages `append_many` hands to the core in one call.
const MANY_RUN: usize = 256;

/// The outcome of one appended message (blocking flavour); dropping it costs nothing.
///
/// The public `durable_streams_client.Receipt` is this class (no Python wrapper per message);
/// `AsyncReceipt` wraps it.
#[pyclass(frozen, module = "durable_streams_client", name = "Receipt")]
pub(crate) struct Receipt {
    inner: CoreReceipt,
}

#[pymethods]
impl Receipt {
    /// The message's number in its producer (0 for the first append).
    #[getter]
    fn message_number(&self) -> u64 {
        self.inner.message_number()
    }

    /// Whether the message's batch was delivered or failed.
    fn done(&self) -> bool {
        self.inner.try_result().is_some()
    }

    /// Waits (GIL released, Ctrl-C interrupts) for the delivery, or raises the batch's
    /// error (e.g. :class:`StaleEpochError`).
    ///
    /// Args:
    ///     timeout: Seconds to wait at most (``None``: until the batch settles).
    ///
    /// Raises:
    ///     TimeoutError: The built-in one, when ``timeout`` passed first. The message is
    ///         still pending and may yet be delivered; call ``result`` again to keep
    ///         waiting. (A batch that fails its ``delivery_timeout`` raises
    ///         :class:`StreamTimeoutError` instead, also a ``TimeoutError``.)
    ///     InvalidArgumentError: ``timeout`` is negative or not a number.
    #[pyo3(signature = (timeout = None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let raw = self.raw_result(py, true, timeout)?;
        py.import("durable_streams_client._producer")?
            .getattr("_delivery")?
            .call1((raw, timeout))
            .map(Bound::unbind)
    }

    fn __repr__(&self) -> String {
        receipt_repr("Receipt", &self.inner)
    }

    /// The delivery as a dict, or `None` once `timeout` seconds have passed (the message
    /// may still be delivered later); raises the batch's error. For `AsyncReceipt`.
    #[pyo3(signature = (*, blocking, timeout = None))]
    fn _result(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.raw_result(py, blocking, timeout)
    }
}

impl Receipt {
    fn raw_result(
        &self,
        py: Python<'_>,
        blocking: bool,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let limit = timeout
            .map(|t| seconds("timeout", t))
            .transpose()
            .map_err(|e| error::to_py(py, &e))?;
        let r = self.inner.clone();
        runtime::run(py, blocking, async move {
            // The timer is created here, inside the runtime.
            let settled = match limit {
                None => r.wait().await,
                Some(limit) => match tokio::time::timeout(limit, r.wait()).await {
                    Ok(settled) => settled,
                    Err(_elapsed) => return Ok(None),
                },
            };
            settled.map(|d| Some(Delivered::from(d)))
        })
    }
}

/// The outcome of one appended message (asyncio): ``delivery = await receipt``.
///
/// The public `durable_streams_client.AsyncReceipt` is this class (no Python wrapper per
/// message). Made by `AsyncIdempotentProducer.append`, or from a `Receipt`.
#[pyclass(frozen, module = "durable_streams_client", name = "AsyncReceipt")]
pub(crate) struct AsyncReceipt {
    inner: CoreReceipt,
}

#[pymethods]
impl AsyncReceipt {
    #[new]
    fn new(native: &Bound<'_, Receipt>) -> Self {
        Self {
            inner: native.get().inner.clone(),
        }
    }

    /// The message's number in its producer (0 for the first append).
    #[getter]
    fn message_number(&self) -> u64 {
        self.inner.message_number()
    }

    /// Whether the message's batch was delivered or failed.
    fn done(&self) -> bool {
        self.inner.try_result().is_some()
    }

    /// The delivery, or the batch's error; raises the built-in ``TimeoutError`` if
    /// ``timeout`` seconds pass first (see :meth:`Receipt.result`). Cancelling the awaiting
    /// task only stops the wait. (A coroutine.)
    #[pyo3(signature = (timeout = None))]
    fn result<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let native = Receipt {
            inner: self.inner.clone(),
        };
        py.import("durable_streams_client._producer")?
            .getattr("_async_result")?
            .call1((native, timeout))
    }

    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.result(py, None)?.call_method0("__await__")
    }

    fn __repr__(&self) -> String {
        receipt_repr("AsyncReceipt", &self.inner)
    }
}

/// The native base of `IdempotentProducer`: its `append` is this method, so one append is one
/// native call, with no Python frame and no wrapper object per message.
#[pyclass(subclass, frozen, module = "durable_streams_client._native")]
pub(crate) struct ProducerBase {
    producer: Binding,
}

#[pymethods]
impl ProducerBase {
    /// Takes the subclass's arguments and ignores them: `__init__` binds the producer.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Self {
            producer: Binding::default(),
        }
    }

    /// Binds the native producer that `append` appends to (once).
    fn _bind(&self, producer: Py<Producer>) -> PyResult<()> {
        self.producer.bind(producer)
    }

    /// Appends one message (``str`` as UTF-8, or bytes-like), waiting for room if the
    /// buffer is full. In JSON mode the message must be one serialized JSON value.
    ///
    /// Returns a :class:`Receipt` at once.
    #[pyo3(text_signature = "(self, data)")]
    fn append(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let producer = self.producer.get("IdempotentProducer")?;
        if let Some(bytes) = borrowed(py, data)? {
            if let Some(receipt) = producer.append_now(py, bytes)? {
                return Ok(receipt);
            }
        }
        producer.append_blocking(py, payload(py, data)?)
    }
}

/// The native base of `AsyncIdempotentProducer`: its `append` is this method (one native call
/// per message, like the blocking flavour's).
#[pyclass(subclass, frozen, module = "durable_streams_client._native")]
pub(crate) struct AsyncProducerBase {
    producer: Binding,
}

#[pymethods]
impl AsyncProducerBase {
    /// Takes the subclass's arguments and ignores them: `__init__` binds the producer.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Self {
            producer: Binding::default(),
        }
    }

    /// Binds the native producer that `append` appends to (once).
    fn _bind(&self, producer: Py<Producer>) -> PyResult<()> {
        self.producer.bind(producer)
    }

    /// Appends one message if there is room now, else raises :class:`BufferFullError`.
    /// Never waits.
    ///
    /// Returns an :class:`AsyncReceipt` at once.
    #[pyo3(text_signature = "(self, data)")]
    fn append(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<AsyncReceipt> {
        let producer = self.producer.get("AsyncIdempotentProducer")?.core_ref(py)?;
        let appended = match borrowed(py, data)? {
            Some(bytes) => producer.try_append(bytes),
            None => producer.try_append(&payload(py, data)?),
        };
        appended
            .map(|r| AsyncReceipt { inner: r })
            .map_err(|e| error::to_py(py, &e))
    }
}

/// The native producer a producer base's `append` appends to, bound once by `__init__`.
#[derive(Default)]
struct Binding(OnceLock<Py<Producer>>);

impl Binding {
    fn bind(&self, producer: Py<Producer>) -> PyResult<()> {
        self.0
            .set(producer)
            .map_err(|_| PyRuntimeError::new_err("this producer is already bound"))
    }

    fn get(&self, class: &str) -> PyResult<&Producer> {
        self.0.get().map(Py::get).ok_or_else(|| {
            PyRuntimeError::new_err(format!(
                "this producer was not initialised ({class}.__init__ did not run)"
            ))
        })
    }
}

/// `Receipt(...)`/`AsyncReceipt(...)` as Python shows them.
fn receipt_repr(class: &str, r: &CoreReceipt) -> String {
    let done = if r.try_result().is_some() {
        "True"
    } else {
        "False"
    };
    format!(
        "{class}(message_number={}, done={done})",
        r.message_number()
    )
}

/// A message as `append` takes it: str and bytes go straight through; anything else is
/// converted or refused, with its message, by the Python layer's check.
fn payload(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Payload> {
    match data.extract::<Payload>() {
        Ok(p) => Ok(p),
        Err(_) => py
            .import("durable_streams_client._producer")?
            .getattr("_check_data")?
            .call1((data,))?
            .extract::<Payload>(),
    }
}
