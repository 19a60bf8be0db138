//! Subscriptions (PROTOCOL §6–7): the native side of `durable_streams_client._subscriptions`.
//!
//! `Subscriptions` (management and the lease protocol), `Wake` (a held wake; its token stays
//! here and is never handed to Python), `Worker` / `Queue` / `Job` (a pull-wake worker in its
//! pull form: the Python layer builds the handler form on it) and `Verifier` (webhook
//! signatures). Every rule lives in the core; this file converts values.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use durable_streams_client::{
    Ack, AckResult, Error, Job as CoreJob, Offset, PullWakeWorker, RequestExtras, StopSignal,
    Subscription, SubscriptionConfig, SubscriptionStatus, Subscriptions as CoreSubs,
    Wake as CoreWake, WebhookVerifier, WorkQueue, WEBHOOK_DONE,
};
use pyo3::prelude::*;

use crate::client::Client;
use crate::error;
use crate::response::PyBytesOut;
use crate::runtime::{self, Generation};
use crate::values::{self, Pairs};

/// A subscription as a dict (the Python layer makes its dataclass).
#[derive(IntoPyObject)]
struct SubscriptionOut {
    id: String,
    kind: String,
    pattern: Option<String>,
    /// `(path, link_type, acked_offset)`.
    streams: Vec<(String, &'static str, String)>,
    wake_stream: Option<String>,
    webhook_url: Option<String>,
    /// `(alg, kid, jwks_url)`.
    signing: Option<(String, String, String)>,
    lease_ttl_ms: u64,
    created_at: Option<String>,
    status: Option<String>,
    description: Option<String>,
}

fn link_type(t: durable_streams_client::LinkType) -> &'static str {
    match t {
        durable_streams_client::LinkType::Glob => "glob",
        durable_streams_client::LinkType::Explicit => "explicit",
    }
}

impl From<Subscription> for SubscriptionOut {
    fn from(s: Subscription) -> Self {
        let (webhook_url, signing) = match s.webhook {
            Some(w) => (Some(w.url), w.signing.map(|g| (g.alg, g.kid, g.jwks_url))),
            None => (None, None),
        };
        Self {
            id: s.id,
            kind: s.kind,
            pattern: s.pattern,
            streams: s
                .streams
                .into_iter()
                .map(|l| {
                    (
                        l.path,
                        link_type(l.link_type),
                        l.acked_offset.as_str().to_owned(),
                    )
                })
                .collect(),
            wake_stream: s.wake_stream,
            webhook_url,
            signing,
            lease_ttl_ms: s.lease_ttl_ms,
            created_at: s.created_at,
            status: s.status,
            description: s.description,
        }
    }
}

/// A held wake (a claim, or a verified webhook delivery). The token is kept here.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Wake(CoreWake);

#[pymethods]
impl Wake {
    /// The subscription id.
    #[getter]
    fn subscription_id(&self) -> &str {
        &self.0.subscription_id
    }

    /// The wake id.
    #[getter]
    fn wake_id(&self) -> &str {
        &self.0.wake_id
    }

    /// The fencing generation.
    #[getter]
    fn generation(&self) -> u64 {
        self.0.generation
    }

    /// The lease in milliseconds (claims only).
    #[getter]
    fn lease_ttl_ms(&self) -> Option<u64> {
        self.0.lease_ttl_ms
    }

    /// Where to call back (webhook deliveries only).
    #[getter]
    fn callback_url(&self) -> Option<&str> {
        self.0.callback_url.as_deref()
    }

    /// `(path, link_type, acked_offset, tail_offset, has_pending)` per stream.
    #[getter]
    fn streams(&self) -> Vec<(String, &'static str, String, String, bool)> {
        self.0
            .streams
            .iter()
            .map(|s| {
                (
                    s.path.clone(),
                    link_type(s.link_type),
                    s.acked_offset.as_str().to_owned(),
                    s.tail_offset.as_str().to_owned(),
                    s.has_pending,
                )
            })
            .collect()
    }
}

/// A subscriptions handle for one stream root.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Subscriptions {
    root: String,
    client: Option<Py<Client>>,
    extras: RequestExtras,
    /// The core handle of one generation (rebuilt after `fork()`).
    slot: Mutex<Option<(u64, CoreSubs)>>,
}

impl Subscriptions {
    fn build(&self, generation: &Generation) -> Result<CoreSubs, Error> {
        let client = match &self.client {
            Some(c) => c.get().core(generation)?,
            None => generation.client.clone(),
        };
        CoreSubs::builder(self.root.as_str())
            .client(client)
            .extras(self.extras.clone())
            .build()
    }

    /// Calls no Python code while it holds the lock.
    fn core_in(&self, generation: &Generation) -> Result<CoreSubs, Error> {
        let mut slot = self.slot.lock().map_err(|_| Error::AlreadyClosed {
            what: "subscriptions handle (a thread panicked while using it)".into(),
        })?;
        match &*slot {
            Some((id, s)) if *id == generation.id => Ok(s.clone()),
            _ => {
                let s = self.build(generation)?;
                *slot = Some((generation.id, s.clone()));
                Ok(s)
            }
        }
    }

    fn core(&self, py: Python<'_>) -> PyResult<CoreSubs> {
        let generation = runtime::current()?;
        self.core_in(&generation).map_err(|e| error::to_py(py, &e))
    }
}

fn acks(list: Vec<(String, String)>) -> Vec<Ack> {
    list.into_iter()
        .map(|(stream, offset)| Ack {
            stream,
            offset: Offset::from(offset),
        })
        .collect()
}

fn ack_out(r: AckResult) -> (bool, bool) {
    (r.ok, r.next_wake)
}

fn seconds(what: &str, s: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s).map_err(|_| Error::InvalidArgument {
        message: format!("{what} must be a non-negative number of seconds, got {s}"),
    })
}

#[pymethods]
impl Subscriptions {
    #[new]
    #[pyo3(signature = (root, *, client = None, headers = Vec::new(), params = Vec::new()))]
    fn new(
        py: Python<'_>,
        root: String,
        client: Option<Py<Client>>,
        headers: Pairs,
        params: Pairs,
    ) -> PyResult<Self> {
        let subs = Subscriptions {
            root,
            client,
            extras: values::extras(py, headers, params)?,
            slot: Mutex::new(None),
        };
        // Build now, so a bad root fails here rather than on the first request.
        subs.core(py)?;
        Ok(subs)
    }

    /// The stream root URL (ends with `/`).
    #[getter]
    fn root(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.core(py)?.root().to_string())
    }

    /// The URL of the server's webhook signing JWK Set.
    #[getter]
    fn jwks_url(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.core(py)?.jwks_url().to_string())
    }

    #[pyo3(signature = (
        id, *, blocking, wake_stream = None, webhook_url = None, pattern = None,
        streams = Vec::new(), lease = None, description = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        py: Python<'_>,
        id: String,
        blocking: bool,
        wake_stream: Option<String>,
        webhook_url: Option<String>,
        pattern: Option<String>,
        streams: Vec<String>,
        lease: Option<f64>,
        description: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let mut config = match (wake_stream, webhook_url) {
            (Some(w), None) => SubscriptionConfig::pull_wake(w),
            (None, Some(u)) => SubscriptionConfig::webhook(u),
            _ => {
                return Err(error::to_py(
                    py,
                    &Error::InvalidArgument {
                        message: "a subscription needs exactly one of wake_stream (pull-wake) \
                                  or webhook_url (webhook)"
                            .into(),
                    },
                ))
            }
        };
        if let Some(p) = pattern {
            config = config.pattern(p);
        }
        config = config.streams(streams);
        if let Some(l) = lease {
            config = config.lease(seconds("lease", l).map_err(|e| error::to_py(py, &e))?);
        }
        if let Some(d) = description {
            config = config.description(d);
        }
        let subs = self.core(py)?;
        runtime::run(py, blocking, async move {
            let (status, sub) = subs.create(&id, &config).await?;
            Ok((
                status == SubscriptionStatus::Created,
                SubscriptionOut::from(sub),
            ))
        })
    }

    fn get(&self, py: Python<'_>, id: String, blocking: bool) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        runtime::run(py, blocking, async move {
            subs.get(&id).await.map(SubscriptionOut::from)
        })
    }

    fn delete(&self, py: Python<'_>, id: String, blocking: bool) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        runtime::run(py, blocking, async move { subs.delete(&id).await })
    }

    fn add_streams(
        &self,
        py: Python<'_>,
        id: String,
        streams: Vec<String>,
        blocking: bool,
    ) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        runtime::run(
            py,
            blocking,
            async move { subs.add_streams(&id, streams).await },
        )
    }

    fn remove_stream(
        &self,
        py: Python<'_>,
        id: String,
        path: String,
        blocking: bool,
    ) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        runtime::run(
            py,
            blocking,
            async move { subs.remove_stream(&id, &path).await },
        )
    }

    fn claim(
        &self,
        py: Python<'_>,
        id: String,
        worker: String,
        blocking: bool,
    ) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        runtime::run(py, blocking, async move {
            subs.claim(&id, &worker).await.map(Wake)
        })
    }

    #[pyo3(signature = (wake, acks, *, done, blocking))]
    fn ack(
        &self,
        py: Python<'_>,
        wake: Py<Wake>,
        acks: Vec<(String, String)>,
        done: bool,
        blocking: bool,
    ) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        let acks = self::acks(acks);
        runtime::run(py, blocking, async move {
            subs.ack(&wake.get().0, &acks, done).await.map(ack_out)
        })
    }

    #[pyo3(signature = (wake, acks, *, done, blocking))]
    fn callback(
        &self,
        py: Python<'_>,
        wake: Py<Wake>,
        acks: Vec<(String, String)>,
        done: bool,
        blocking: bool,
    ) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        let acks = self::acks(acks);
        runtime::run(py, blocking, async move {
            subs.callback(&wake.get().0, &acks, done).await.map(ack_out)
        })
    }

    fn release(&self, py: Python<'_>, wake: Py<Wake>, blocking: bool) -> PyResult<Py<PyAny>> {
        let subs = self.core(py)?;
        runtime::run(
            py,
            blocking,
            async move { subs.release(&wake.get().0).await },
        )
    }

    /// Starts a pull-wake worker in its pull form and returns its job queue.
    #[pyo3(signature = (id, worker, wake_stream, *, from_offset = None, heartbeats = true))]
    fn jobs(
        &self,
        py: Python<'_>,
        id: String,
        worker: String,
        wake_stream: String,
        from_offset: Option<String>,
        heartbeats: bool,
    ) -> PyResult<Queue> {
        let generation = runtime::current()?;
        let subs = self
            .core_in(&generation)
            .map_err(|e| error::to_py(py, &e))?;
        let mut w = PullWakeWorker::new(subs, id, worker, wake_stream)
            .map_err(|e| error::to_py(py, &e))?
            .heartbeats(heartbeats);
        if let Some(o) = from_offset {
            w = w.from_offset(o);
        }
        // The worker task is spawned on this process's runtime.
        let _entered = generation.handle().enter();
        let queue = w.jobs();
        Ok(Queue {
            stop: queue.stop_signal(),
            queue: Arc::new(tokio::sync::Mutex::new(Some(queue))),
            ended: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// The jobs of a running pull-wake worker.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Queue {
    queue: Arc<tokio::sync::Mutex<Option<WorkQueue>>>,
    stop: StopSignal,
    ended: Arc<AtomicBool>,
}

#[pymethods]
impl Queue {
    /// The next job; `None` when `timeout` (seconds) passed first or the worker has stopped
    /// (then `ended` is true).
    #[pyo3(signature = (*, blocking, timeout = None))]
    fn next(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let timeout = timeout
            .map(|t| seconds("timeout", t))
            .transpose()
            .map_err(|e| error::to_py(py, &e))?;
        let queue = Arc::clone(&self.queue);
        let ended = Arc::clone(&self.ended);
        runtime::run(py, blocking, async move {
            let mut guard = queue.lock().await;
            let Some(q) = guard.as_mut() else {
                ended.store(true, Ordering::SeqCst);
                return Ok(None);
            };
            let next = match timeout {
                Some(t) => match tokio::time::timeout(t, q.next()).await {
                    Ok(j) => j,
                    Err(_) => return Ok(None),
                },
                None => q.next().await,
            };
            match next {
                Some(job) => Ok(Some(Job::new(job))),
                None => {
                    ended.store(true, Ordering::SeqCst);
                    Ok(None)
                }
            }
        })
    }

    /// Whether the worker has stopped (no more jobs will come).
    #[getter]
    fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Asks the worker to stop (returns at once; a pending `next` then returns `None`).
    fn request_stop(&self) {
        self.stop.stop();
    }

    /// Stops the worker (a held lease is released) and returns the wake-stream offset to
    /// resume from; `None` if it was stopped before.
    fn stop(&self, py: Python<'_>, blocking: bool) -> PyResult<Py<PyAny>> {
        self.stop.stop();
        let queue = Arc::clone(&self.queue);
        let ended = Arc::clone(&self.ended);
        runtime::run(py, blocking, async move {
            let taken = queue.lock().await.take();
            ended.store(true, Ordering::SeqCst);
            match taken {
                Some(q) => q.stop().await.map(|o| Some(o.as_str().to_owned())),
                None => Ok(None),
            }
        })
    }
}

/// One delivery to answer with `ack()` or `fail()`.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Job {
    stream: String,
    start_offset: String,
    offset: String,
    /// JSON streams: the messages as one JSON array text; otherwise `None`.
    messages: Option<String>,
    data: Bytes,
    reply: Mutex<Option<CoreJob>>,
}

impl Job {
    fn new(job: CoreJob) -> Self {
        let item = &job.item;
        let messages = if item.data.is_empty() {
            Some(item.messages_json())
        } else {
            None
        };
        Self {
            stream: item.stream.clone(),
            start_offset: item.start_offset.as_str().to_owned(),
            offset: item.offset.as_str().to_owned(),
            messages,
            data: item.data.clone(),
            reply: Mutex::new(Some(job)),
        }
    }

    fn take(&self) -> Option<CoreJob> {
        self.reply.lock().ok().and_then(|mut r| r.take())
    }
}

#[pymethods]
impl Job {
    #[getter]
    fn stream(&self) -> &str {
        &self.stream
    }

    #[getter]
    fn start_offset(&self) -> &str {
        &self.start_offset
    }

    #[getter]
    fn offset(&self) -> &str {
        &self.offset
    }

    #[getter]
    fn messages_json(&self) -> Option<&str> {
        self.messages.as_deref()
    }

    #[getter]
    fn data(&self) -> PyBytesOut {
        PyBytesOut(self.data.clone())
    }

    /// Whether `ack` or `fail` was called.
    #[getter]
    fn answered(&self) -> bool {
        self.reply.lock().map(|r| r.is_none()).unwrap_or(true)
    }

    /// Handled: the worker acks the delivery. Later answers are ignored.
    fn ack(&self) {
        if let Some(j) = self.take() {
            j.ack();
        }
    }

    /// Not handled: the worker releases the wake without acking. Later answers are ignored.
    fn fail(&self, reason: String) {
        if let Some(j) = self.take() {
            j.fail(reason);
        }
    }
}

/// Verifies signed webhook deliveries. The core verifier (with its key cache) belongs to one
/// process: after `fork()` the child builds its own on first use.
#[pyclass(frozen, module = "durable_streams_client._native")]
pub(crate) struct Verifier {
    jwks_url: String,
    client: Option<Py<Client>>,
    window: Option<Duration>,
    slot: Mutex<Option<(u64, Arc<WebhookVerifier>)>>,
}

impl Verifier {
    /// Calls no Python code while it holds the lock.
    fn core_in(&self, generation: &Generation) -> Result<Arc<WebhookVerifier>, Error> {
        let mut slot = self.slot.lock().map_err(|_| Error::AlreadyClosed {
            what: "webhook verifier (a thread panicked while using it)".into(),
        })?;
        if let Some((id, v)) = slot.as_ref() {
            if *id == generation.id {
                return Ok(Arc::clone(v));
            }
        }
        let client = match &self.client {
            Some(c) => c.get().core(generation)?,
            None => generation.client.clone(),
        };
        let mut v = WebhookVerifier::new(&self.jwks_url)?.with_client(client);
        if let Some(w) = self.window {
            v = v.with_replay_window(w);
        }
        let v = Arc::new(v);
        *slot = Some((generation.id, Arc::clone(&v)));
        Ok(v)
    }
}

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (jwks_url, *, client = None, replay_window = None))]
    fn new(
        py: Python<'_>,
        jwks_url: String,
        client: Option<Py<Client>>,
        replay_window: Option<f64>,
    ) -> PyResult<Self> {
        let window = replay_window
            .map(|w| seconds("replay_window", w))
            .transpose()
            .map_err(|e| error::to_py(py, &e))?;
        let v = Verifier {
            jwks_url,
            client,
            window,
            slot: Mutex::new(None),
        };
        // Build now, so a bad URL fails here rather than on the first delivery.
        let generation = runtime::current()?;
        v.core_in(&generation).map_err(|e| error::to_py(py, &e))?;
        Ok(v)
    }

    /// Verifies a delivery (`now`: seconds since the epoch, default the current time).
    #[pyo3(signature = (signature, body, *, blocking, now = None))]
    fn verify(
        &self,
        py: Python<'_>,
        signature: Option<String>,
        body: Vec<u8>,
        blocking: bool,
        now: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let now = now
            .map(|s| seconds("now", s))
            .transpose()
            .map_err(|e| error::to_py(py, &e))?;
        let generation = runtime::current()?;
        let v = self
            .core_in(&generation)
            .map_err(|e| error::to_py(py, &e))?;
        runtime::run(py, blocking, async move {
            let wake = match now {
                Some(t) => v.verify_at_unix(signature.as_deref(), &body, t).await,
                None => v.verify(signature.as_deref(), &body).await,
            };
            wake.map(Wake)
        })
    }
}

/// The body that finishes a webhook wake synchronously.
pub(crate) const DONE: &str = WEBHOOK_DONE;
