//! The pull-wake worker: follows the wake stream, claims, reads, hands over, acks.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::manage::Subscriptions;
use super::types::{Ack, SubscriptionErrorCode, Wake, WakeEvent};
use crate::error::{Error, Result};
use crate::offset::Offset;
use crate::read::{Batches, LiveMode, ReadOptions, DEFAULT_MAX_READ_BYTES};

/// Messages of one stream handed to the application: what one answer of the server held.
///
/// `offset` is where the item ends, always a point a read resumes from exactly (an answer
/// that arrives in parts is gathered whole first, up to [`PullWakeWorker::max_item_bytes`]).
/// The worker acks it once the handler returns `Ok`, before it hands over the stream's next
/// item, so `start_offset` is the subscription's acked offset for the stream.
///
/// For idempotent handling store `(stream, offset)` with the handler's effects and skip an
/// item whose `offset` is not past the stored one (offsets compare lexicographically). An item
/// read again after a crash, a lost ack or a lost lease may hold more than before (the same
/// `start_offset`, the messages handled before first: the server's answer from there may now
/// reach further): to skip exactly those, store its `start_offset` and number of messages (for
/// other streams, bytes) too.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// Stream-root-relative path.
    pub stream: String,
    /// The offset the item's messages follow: the stream's acked offset when it was handed
    /// over.
    pub start_offset: Offset,
    /// The offset the item ends at, a point to resume from (the ack point, inclusive).
    pub offset: Offset,
    /// For JSON streams: the messages, each exactly as the server sent it (no number rounded,
    /// no key reordered, nothing the handler did not ask for converted); decode them with
    /// [`json`](Self::json) or `serde_json::from_str(m.get())`.
    pub messages: Vec<Box<RawValue>>,
    /// For other streams: the bytes.
    pub data: Bytes,
}

impl WorkItem {
    /// The messages deserialized as `T` (`serde_json::Value` for any JSON), in order; a
    /// message that is not a `T` is an [`Error::Parse`] naming its index.
    pub fn json<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                serde_json::from_str(m.get()).map_err(|e| {
                    Error::json(
                        "a work item's message",
                        format!("message {i} is not the type asked for"),
                        &e,
                    )
                })
            })
            .collect()
    }

    /// The messages as the text of one JSON array (`[m1,m2,...]`), each exactly as the server
    /// sent it: for handing them to another language's parser in one piece.
    pub fn messages_json(&self) -> String {
        let texts: Vec<&str> = self.messages.iter().map(|m| m.get()).collect();
        format!("[{}]", texts.join(","))
    }
}

/// The shortest pause before a wake that failed (on the way or in the handler) is claimed
/// again, whatever the retry policy says (a policy without delays would otherwise spin).
const MIN_WAKE_RETRY: Duration = Duration::from_millis(100);

/// The read of one stream's pending messages.
enum Reading {
    Json(Batches<Vec<Box<RawValue>>>),
    Bytes(Batches<Bytes>),
}

/// The parts of one answer, gathered until its end (the next offset a read resumes from).
#[derive(Default)]
struct Gathered {
    messages: Vec<Box<RawValue>>,
    parts: Vec<Bytes>,
    /// Message texts and bytes gathered, against [`PullWakeWorker::max_item_bytes`].
    size: usize,
}

impl Gathered {
    fn add(
        &mut self,
        messages: Vec<Box<RawValue>>,
        data: Bytes,
        limit: usize,
        stream: &str,
    ) -> Result<()> {
        let size = messages
            .iter()
            .map(|m| m.get().len())
            .fold(data.len(), usize::saturating_add);
        self.size = self.size.saturating_add(size);
        if self.size > limit {
            return Err(Error::parse(
                "a pull-wake read",
                format!(
                    "an answer of stream {} holds more than max_item_bytes ({limit} bytes) \
                     before a point to resume from; raise PullWakeWorker::max_item_bytes",
                    crate::http::escape_server_text(stream, 120)
                ),
            ));
        }
        if self.messages.is_empty() {
            self.messages = messages;
        } else {
            self.messages.extend(messages);
        }
        if !data.is_empty() {
            self.parts.push(data);
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.parts.is_empty()
    }

    /// The messages and the bytes gathered (joined), leaving nothing behind.
    fn take(&mut self) -> (Vec<Box<RawValue>>, Bytes) {
        self.size = 0;
        let data = match <[Bytes; 1]>::try_from(std::mem::take(&mut self.parts)) {
            Ok([one]) => one,
            Err(parts) => {
                let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                for p in parts {
                    joined.extend_from_slice(&p);
                }
                joined.freeze()
            }
        };
        (std::mem::take(&mut self.messages), data)
    }
}

/// What happened to one claim attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeOutcome {
    /// Everything pending was handled, acked and the lease given back with `done`.
    Done,
    /// Another worker held the lease, or nothing was pending.
    Skipped,
    /// The handler failed: the lease was released without acking the failed delivery.
    HandlerFailed,
    /// The lease was lost (`FENCED`): the wake stopped at once, nothing stale was acked. When
    /// the closing `done` is answered `FENCED` on a retry, its first attempt may have landed
    /// and applied its acks (see [`Subscriptions::ack`]); either way at worst what was handled
    /// is handed over again.
    Fenced,
    /// The worker was stopped: what was acked stays acked, the wake was released.
    Stopped,
}

/// A pull-wake worker for one subscription.
///
/// WorkItem is exactly once in the normal case: the subscription has one lease, the holder
/// acks each delivery after its handler returns, and a stale holder is fenced. It is *at least
/// once* when a worker processes a delivery and then dies (or loses its lease, or its ack
/// fails) before the ack lands: the next holder reads again from the last acked offset. Make
/// handlers idempotent as [`WorkItem`] describes.
///
/// ```no_run
/// # async fn demo() -> durable_streams_client::Result<()> {
/// use durable_streams_client::{PullWakeWorker, Subscriptions};
/// let subs = Subscriptions::new("http://127.0.0.1:4437/v1/stream/")?;
/// let worker = PullWakeWorker::new(subs, "billing", "worker-1", "wake/billing")?;
/// worker
///     .run(
///         |d| async move {
///             println!("{}: {} messages up to {}", d.stream, d.messages.len(), d.offset);
///             Ok::<_, std::io::Error>(())
///         },
///         tokio::signal::ctrl_c(),
///     )
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PullWakeWorker {
    subs: Subscriptions,
    id: String,
    name: String,
    wake_stream: String,
    from: Offset,
    heartbeat: bool,
    max_item_bytes: usize,
}

impl PullWakeWorker {
    /// A worker named `worker` for subscription `id`, following `wake_stream`
    /// (stream-root-relative) from its current tail.
    pub fn new(
        subs: Subscriptions,
        id: impl Into<String>,
        worker: impl Into<String>,
        wake_stream: impl Into<String>,
    ) -> Result<Self> {
        let wake_stream = wake_stream.into();
        super::types::check_path("wake_stream", &wake_stream)?;
        let name = worker.into();
        if name.is_empty() {
            return Err(Error::invalid("the worker name must not be empty"));
        }
        Ok(Self {
            subs,
            id: id.into(),
            name,
            wake_stream,
            from: Offset::now(),
            heartbeat: true,
            max_item_bytes: DEFAULT_MAX_READ_BYTES,
        })
    }

    /// Follows the wake stream from a saved offset (the one [`run`](Self::run) returned).
    pub fn from_offset(mut self, offset: impl Into<Offset>) -> Self {
        self.from = offset.into();
        self
    }

    /// Turns heartbeats off (for tests of lease expiry).
    pub fn heartbeats(mut self, on: bool) -> Self {
        self.heartbeat = on;
        self
    }

    /// The most message text (for other streams, bytes) one [`WorkItem`] gathers; default
    /// [`DEFAULT_MAX_READ_BYTES`], 256 MiB, at least 1. An item holds one answer of the server
    /// whole, since only its end is a point to resume from and ack; the protocol lets a server
    /// cap its answers, and one that does not (the reference server answers with everything
    /// pending) may send more. An answer past this fails the wake with an [`Error::Parse`]
    /// naming this option, before anything of it is handed over: the wake is released, and
    /// claimed again after a backoff like any failed wake.
    pub fn max_item_bytes(mut self, bytes: usize) -> Self {
        self.max_item_bytes = bytes.max(1);
        self
    }

    /// Claims once at start (work may be pending from before), then claims on every wake
    /// event for this subscription until `shutdown` completes. Returns the wake-stream offset
    /// to resume from. Handler failures and lost leases are logged and the worker goes on;
    /// on shutdown a held lease is released.
    ///
    /// A wake that fails on the way (a claim, read or ack lost to a 5xx, a 429 or a dropped
    /// connection, or any other error) is claimed again after a backoff (the delays of the
    /// subscriptions' retry policy, without its limit on attempts), until a claim succeeds or
    /// the server says there is no work: the server writes one wake event per wake, so waiting
    /// for the next event could wait forever. A wake whose handler failed is claimed again
    /// after the same backoff, growing while failures go on (the server wakes the subscription
    /// again at once); each pause is at least 100 ms, and a wake that succeeds resets it.
    pub async fn run<F, Fut, E>(&self, handler: F, shutdown: impl Future) -> Result<Offset>
    where
        F: Fn(WorkItem) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        let wake = self.subs.stream(&self.wake_stream)?;
        let resp = wake
            .stream(
                ReadOptions::new()
                    .offset(self.from.clone())
                    .live(LiveMode::LongPoll)
                    .json(true),
            )
            .await?;
        let mut batches = resp.json_batches::<Box<RawValue>>()?;
        let mut offset = self.from.clone();
        let mut shutdown = std::pin::pin!(shutdown);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut pending_claim = true;
        // Wakes failed in a row (on the way, or by the handler), and when to claim again
        // after the last: no claim before then, whatever wake events arrive meanwhile.
        let mut failures = 0u32;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            let due = retry_at.is_none_or(|at| at <= tokio::time::Instant::now());
            if pending_claim && due {
                pending_claim = false;
                retry_at = None;
                let mut step = std::pin::pin!(self.process(&handler, stop_rx.clone()));
                let r = tokio::select! {
                    r = &mut step => r,
                    _ = &mut shutdown => {
                        // Graceful: an ack in flight lands, no new item is handed over, and
                        // the wake is released.
                        let _ = stop_tx.send(true);
                        self.log_outcome(step.await);
                        return Ok(offset);
                    }
                };
                // A wake released after a failure is woken again at once by the server (its
                // work is still pending): without a pause a handler that keeps failing (its
                // database is down), or a read that keeps failing, would claim, read and
                // release as fast as the server answers.
                let retry_after = match &r {
                    Err(e) => Some(e.retry_after()),
                    Ok(WakeOutcome::HandlerFailed) => Some(None),
                    _ => None,
                };
                match retry_after {
                    Some(hint) => {
                        let delay = self
                            .subs
                            .retry_policy()
                            .delay(failures, hint)
                            .max(MIN_WAKE_RETRY);
                        failures = failures.saturating_add(1);
                        retry_at = Some(tokio::time::Instant::now() + delay);
                        pending_claim = true;
                    }
                    None => failures = 0,
                }
                self.log_outcome(r);
                continue;
            }
            tokio::select! {
                b = batches.next_batch() => match b? {
                    Some(batch) => {
                        offset = batch.offset.clone();
                        // Events of other kinds or shapes are not ours to read: skipped.
                        pending_claim |= batch.data.iter().any(|v| {
                            serde_json::from_str::<WakeEvent>(v.get())
                                .is_ok_and(|e| e.kind == "wake" && e.subscription_id == self.id)
                        });
                    }
                    None => return Ok(offset),
                },
                _ = sleep_until(retry_at) => pending_claim = true,
                _ = &mut shutdown => return Ok(offset),
            }
        }
    }

    /// The pull form of [`run`](Self::run): a [`WorkQueue`] of [`Job`]s. The worker runs on a
    /// spawned task (heartbeats included) until the queue is dropped or
    /// [`WorkQueue::stop`] is called; each job must be answered with [`Job::ack`] or
    /// [`Job::fail`] (dropping it counts as a failure, so its wake is released).
    ///
    /// ```no_run
    /// # async fn demo(worker: durable_streams_client::PullWakeWorker) {
    /// let mut queue = worker.jobs();
    /// while let Some(job) = queue.next().await {
    ///     println!("{} messages from {}", job.item.messages.len(), job.item.stream);
    ///     job.ack();
    /// }
    /// # }
    /// ```
    pub fn jobs(&self) -> WorkQueue {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(1);
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let worker = self.clone();
        let task = tokio::spawn(async move {
            let handler = move |item: WorkItem| {
                let tx = tx.clone();
                async move {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    tx.send(Job { item, reply })
                        .await
                        .map_err(|_| "the work queue was dropped".to_owned())?;
                    match answer.await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(reason)) => Err(reason),
                        Err(_) => Err("the job was dropped without an answer".to_owned()),
                    }
                }
            };
            let stop = async move {
                let _ = stop_rx.wait_for(|v| *v).await;
            };
            worker.run(handler, stop).await
        });
        WorkQueue {
            rx,
            stop: std::sync::Arc::new(stop_tx),
            task: Some(task),
        }
    }

    fn log_outcome(&self, r: Result<WakeOutcome>) {
        match r {
            Ok(WakeOutcome::HandlerFailed) => {
                tracing::warn!(subscription = %self.id, "handler failed; wake released")
            }
            Ok(WakeOutcome::Fenced) => {
                tracing::warn!(subscription = %self.id, "lease lost (FENCED); wake dropped")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(subscription = %self.id, error = %e, "wake failed"),
        }
    }

    /// Claims and processes one wake. Dropping the future mid-way releases the wake on a
    /// spawned task, best effort (prefer [`run`](Self::run)'s shutdown, which lets an ack in
    /// flight land and then releases).
    pub async fn process_once<F, Fut, E>(&self, handler: &F) -> Result<WakeOutcome>
    where
        F: Fn(WorkItem) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        let (_never, stop) = tokio::sync::watch::channel(false);
        self.process(handler, stop).await
    }

    /// [`process_once`](Self::process_once), stopping between items (and during a read or
    /// a handler call, which is then not acked) once `stop` turns true; the wake is released.
    async fn process<F, Fut, E>(
        &self,
        handler: &F,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<WakeOutcome>
    where
        F: Fn(WorkItem) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        let wake = match self.subs.claim(&self.id, &self.name).await {
            Ok(w) => w,
            Err(e) => {
                return match sub_code(&e) {
                    Some(SubscriptionErrorCode::AlreadyClaimed)
                    | Some(SubscriptionErrorCode::NoPendingWork) => Ok(WakeOutcome::Skipped),
                    Some(SubscriptionErrorCode::Fenced) => Ok(WakeOutcome::Fenced),
                    _ => Err(e),
                }
            }
        };
        let mut guard = ReleaseGuard {
            subs: &self.subs,
            wake: Some(&wake),
        };
        let r = self.work(&wake, handler, stop).await;
        match r {
            Ok(outcome) => {
                guard.wake = None;
                Ok(outcome)
            }
            Err(WorkError::Fenced) => {
                guard.wake = None;
                Ok(WakeOutcome::Fenced)
            }
            Err(WorkError::Handler(msg)) => {
                guard.wake = None;
                tracing::warn!(subscription = %self.id, error = %msg, "handler failed");
                match self.subs.release(&wake).await {
                    Ok(()) => Ok(WakeOutcome::HandlerFailed),
                    Err(e) if sub_code(&e) == Some(SubscriptionErrorCode::Fenced) => {
                        Ok(WakeOutcome::Fenced)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(WorkError::Other(e)) => {
                guard.wake = None;
                let _ = self.subs.release(&wake).await;
                Err(e)
            }
            Err(WorkError::Stopped) => {
                guard.wake = None;
                match self.subs.release(&wake).await {
                    Ok(()) => Ok(WakeOutcome::Stopped),
                    Err(e) if sub_code(&e) == Some(SubscriptionErrorCode::Fenced) => {
                        Ok(WakeOutcome::Fenced)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn work<F, Fut, E>(
        &self,
        wake: &Wake,
        handler: &F,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<WakeOutcome, WorkError>
    where
        F: Fn(WorkItem) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        let lease = Duration::from_millis(wake.lease_ttl_ms.unwrap_or(30_000).max(1_000));
        let beat = lease / 3;
        let mut done = Vec::new();
        for s in wake.streams.iter().filter(|s| s.has_pending) {
            if stopped(&stop) {
                return Err(WorkError::Stopped);
            }
            let stream = self.subs.stream(&s.path).map_err(WorkError::Other)?;
            let resp = self
                .beating(
                    wake,
                    beat,
                    &stop,
                    stream.stream(
                        ReadOptions::new()
                            .offset(s.acked_offset.clone())
                            .live(LiveMode::Off),
                    ),
                )
                .await?
                .map_err(WorkError::Other)?;
            // The stream's acked offset: every item starts there. An answer without data that
            // still moves the offset to resume from is acked with `done` unless an item follows
            // (which then starts at the acked offset, as it would when read again).
            let mut acked = s.acked_offset.clone();
            let mut resume = acked.clone();
            let mut gathered = Gathered::default();
            // Messages are kept as their texts: the handler gets what was written, not what
            // one parser's numbers and maps make of it.
            let mut batches = if resp.is_json() {
                Reading::Json(resp.json_batches().map_err(WorkError::Other)?)
            } else {
                Reading::Bytes(resp.byte_batches().map_err(WorkError::Other)?)
            };
            loop {
                let next = match &mut batches {
                    Reading::Json(b) => self
                        .beating(wake, beat, &stop, b.next_batch())
                        .await?
                        .map_err(WorkError::Other)?
                        .map(|b| (b.offset, b.checkpoint, b.data, Bytes::new())),
                    Reading::Bytes(r) => self
                        .beating(wake, beat, &stop, r.next_batch())
                        .await?
                        .map_err(WorkError::Other)?
                        .map(|b| (b.offset, b.checkpoint, Vec::new(), b.data)),
                };
                let Some((offset, checkpoint, messages, data)) = next else {
                    break;
                };
                gathered
                    .add(messages, data, self.max_item_bytes, &s.path)
                    .map_err(WorkError::Other)?;
                // Parts before an answer's end carry the previous end's offset: acking it
                // would make no progress, so they wait for the rest of their answer.
                if !checkpoint {
                    continue;
                }
                if gathered.is_empty() {
                    resume = offset;
                    continue;
                }
                let (messages, data) = gathered.take();
                let delivery = WorkItem {
                    stream: s.path.clone(),
                    start_offset: acked.clone(),
                    offset: offset.clone(),
                    messages,
                    data,
                };
                if stopped(&stop) {
                    return Err(WorkError::Stopped);
                }
                if let Err(e) = self.beating(wake, beat, &stop, handler(delivery)).await? {
                    return Err(WorkError::Handler(e.to_string()));
                }
                let ack = Ack {
                    stream: s.path.clone(),
                    offset: offset.clone(),
                };
                self.subs
                    .ack(wake, &[ack], false)
                    .await
                    .map_err(WorkError::from_api)?;
                acked = offset.clone();
                resume = offset;
            }
            if resume != acked {
                done.push(Ack {
                    stream: s.path.clone(),
                    offset: resume,
                });
            }
        }
        self.subs
            .ack(wake, &done, true)
            .await
            .map_err(WorkError::from_api)?;
        Ok(WakeOutcome::Done)
    }

    /// Runs `fut`, sending a heartbeat every `beat` while it runs (unless heartbeats are
    /// off). A fenced heartbeat, or `stop` turning true first, abandons it.
    async fn beating<T>(
        &self,
        wake: &Wake,
        beat: Duration,
        stop: &tokio::sync::watch::Receiver<bool>,
        fut: impl Future<Output = T>,
    ) -> Result<T, WorkError> {
        let mut fut = std::pin::pin!(fut);
        let mut stop = stop.clone();
        let mut stopped = std::pin::pin!(async move {
            // Not holding the borrow across an await: the future must stay Send.
            let _ = stop.wait_for(|v| *v).await.is_ok();
        });
        loop {
            // Biased: a result that is ready wins over a stop (an answered job gets its ack).
            tokio::select! {
                biased;
                v = &mut fut => return Ok(v),
                _ = &mut stopped => return Err(WorkError::Stopped),
                _ = tokio::time::sleep(beat), if self.heartbeat => {
                    self.subs.ack(wake, &[], false).await.map_err(WorkError::from_api)?;
                }
            }
        }
    }
}

/// One delivery of the pull form ([`PullWakeWorker::jobs`]), to answer with `ack` or `fail`.
#[derive(Debug)]
pub struct Job {
    /// The messages.
    pub item: WorkItem,
    reply: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
}

impl Job {
    /// Handled: the worker acks it.
    pub fn ack(self) {
        let _ = self.reply.send(Ok(()));
    }

    /// Not handled: the worker releases the wake without acking it.
    pub fn fail(self, reason: impl Into<String>) {
        let _ = self.reply.send(Err(reason.into()));
    }
}

/// The jobs of a running worker ([`PullWakeWorker::jobs`]).
#[derive(Debug)]
pub struct WorkQueue {
    rx: tokio::sync::mpsc::Receiver<Job>,
    stop: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<Result<Offset>>>,
}

/// Asks a [`WorkQueue`]'s worker to stop from elsewhere (another task or thread) while the
/// queue itself is busy in [`WorkQueue::next`]: the worker releases what it holds, and `next`
/// then returns `None`.
#[derive(Debug, Clone)]
pub struct StopSignal(std::sync::Arc<tokio::sync::watch::Sender<bool>>);

impl StopSignal {
    /// Requests the stop (idempotent, returns at once).
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl WorkQueue {
    /// The next job; `None` once the worker has stopped.
    pub async fn next(&mut self) -> Option<Job> {
        self.rx.recv().await
    }

    /// A handle that requests the stop without access to the queue.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal(self.stop.clone())
    }

    /// Stops the worker (a held lease is released) and returns the wake-stream offset to
    /// resume from.
    pub async fn stop(mut self) -> Result<Offset> {
        let _ = self.stop.send(true);
        self.rx.close();
        match self.task.take() {
            Some(t) => t.await.map_err(|_| Error::Cancelled)?,
            None => Err(Error::Cancelled),
        }
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Sleeps until `at`, or for ever when there is no `at`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn stopped(stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

fn sub_code(e: &Error) -> Option<SubscriptionErrorCode> {
    match e {
        Error::Subscription { code, .. } => Some(*code),
        _ => None,
    }
}

enum WorkError {
    Fenced,
    Stopped,
    Handler(String),
    Other(Error),
}

impl WorkError {
    fn from_api(e: Error) -> Self {
        if sub_code(&e) == Some(SubscriptionErrorCode::Fenced) {
            Self::Fenced
        } else {
            Self::Other(e)
        }
    }
}

/// Releases a claimed wake when processing is abandoned (the future dropped, e.g. on
/// shutdown). The release runs on a spawned task, best effort.
struct ReleaseGuard<'a> {
    subs: &'a Subscriptions,
    wake: Option<&'a Wake>,
}

impl Drop for ReleaseGuard<'_> {
    fn drop(&mut self) {
        if let Some(wake) = self.wake.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let subs = self.subs.clone();
                let wake = wake.clone();
                rt.spawn(async move {
                    let _ = subs.release(&wake).await;
                });
            }
        }
    }
}
