//! The idempotent producer: batched, pipelined, exactly-once appends to one stream.
//!
//! The appending threads validate a message, reserve room for it and copy it into the open
//! batch (see `batch`); one background task owns the rest (sealed batches, sequence numbers,
//! the requests in flight) and takes whole batches through a channel. See
//! [`IdempotentProducer`].

mod batch;
pub(crate) mod json;
mod machine;
mod outcomes;
mod request;
mod sequencer;
mod task;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};

use crate::error::{Error, Result};
use crate::http::is_json_content_type;
use crate::offset::Offset;
use crate::retry::RetryPolicy;
use crate::stream::DurableStream;
use crate::values::{RequestExtras, Value};

use batch::{Acc, Batch, Framing, Spares};
use outcomes::OutcomeLog;
use task::{Cmd, Config};

/// The most messages [`IdempotentProducer::try_append_many`] reserves room for and copies
/// under one lock.
const MANY_RUN: usize = 256;

/// The largest epoch or sequence number the protocol allows (2^53 - 1).
const MAX_PROTOCOL_INT: u64 = (1 << 53) - 1;

/// How much an async appender adds to the open batch between two yields to the runtime (about
/// 650 messages of 100 bytes): often enough that, on a current-thread runtime, the producer's
/// requests and their answers are not held up by a tight append loop, and rarely enough that
/// the yield costs nothing measurable per message.
const YIELD_BYTES: usize = 64 << 10;

/// The callback type of [`IdempotentProducerBuilder::on_error`].
pub type ErrorCallback = Arc<dyn Fn(&Error) + Send + Sync + 'static>;

/// The default retry policy of producer requests: 50 ms growing to 5 s, no retry limit (the
/// [delivery timeout](IdempotentProducerBuilder::delivery_timeout) bounds the retries).
pub fn default_producer_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(5),
        multiplier: 2.0,
        max_retries: None,
        max_retry_after: crate::retry::DEFAULT_MAX_RETRY_AFTER,
    }
}

const MODE_UNKNOWN: u8 = 0;
const MODE_JSON: u8 = 1;
const MODE_BYTES: u8 = 2;

const STATE_OPEN: u8 = 0;
const STATE_CLOSING: u8 = 1;
const STATE_DETACHED: u8 = 2;

/// State read by handles and receipts; written by the task (and by handles for the message
/// counter and the lifecycle state).
pub(crate) struct Shared {
    pub(crate) display: String,
    pub(crate) max_buffered: usize,
    validate_json: bool,
    pub(crate) buffer_timeout: Duration,
    pub(crate) room: Semaphore,
    pub(crate) mode: AtomicU8,
    pub(crate) next_msg: AtomicU64,
    state: AtomicU8,
    pub(crate) has_terminal: AtomicBool,
    pub(crate) terminal: Mutex<Option<Error>>,
    pub(crate) epoch: AtomicU64,
    pub(crate) next_seq: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) settled_msgs: AtomicU64,
    pub(crate) last_offset: Mutex<Option<Offset>>,
    pub(crate) close_result: Mutex<Option<Option<Offset>>>,
    pub(crate) outcomes: Mutex<OutcomeLog>,
    pub(crate) settled_rx: watch::Receiver<u64>,
    pub(crate) counters: Counters,
    /// The open batch and the message counter (see `batch`).
    pub(crate) acc: Mutex<Acc>,
    /// Emptied batch buffers for the next batches (see `batch::Spares`).
    pub(crate) spares: Spares,
    max_batch_bytes: usize,
    max_batch_messages: usize,
    /// Wakes the task when a batch opens (to start its linger) or a control is sent.
    pub(crate) wake: Notify,
    /// An awaited append handed a batch over (or filled another `YIELD_BYTES`): the next one
    /// yields to the runtime before it appends (see `append_checked`).
    yield_due: AtomicBool,
    runtime: tokio::runtime::Handle,
}

/// Metric counters, updated by the task once per batch or request.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) messages: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) failed_messages: AtomicU64,
    pub(crate) latency_count: AtomicU64,
    pub(crate) latency_sum_us: AtomicU64,
    pub(crate) latency_max_us: AtomicU64,
}

impl Shared {
    pub(crate) fn set_mode_from(&self, content_type: &str) {
        let mode = if is_json_content_type(content_type) {
            MODE_JSON
        } else {
            MODE_BYTES
        };
        self.mode.store(mode, Ordering::Release);
    }

    pub(crate) fn is_json(&self) -> Option<bool> {
        match self.mode.load(Ordering::Acquire) {
            MODE_JSON => Some(true),
            MODE_BYTES => Some(false),
            _ => None,
        }
    }

    pub(crate) fn terminal_error(&self) -> Option<Error> {
        if !self.has_terminal.load(Ordering::Acquire) {
            return None;
        }
        self.terminal.lock().ok().and_then(|g| g.clone())
    }

    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.room.add_permits(bytes);
        }
    }

    fn closed_error(&self) -> Error {
        Error::AlreadyClosed {
            what: format!("idempotent producer for {}", self.display),
        }
    }
}

/// A batching, pipelining producer with exactly-once delivery to one stream.
///
/// Messages appended here are grouped into batches (closed after [`linger`], at
/// [`max_batch_bytes`], or at [`max_batch_messages`]); up to [`max_in_flight`] batches are sent
/// at once, each with the producer's id, epoch and its own sequence number, so the server stores
/// every batch exactly once however often it is sent. In JSON mode a batch is one array of the
/// messages as given (never parsed again); otherwise the messages are concatenated.
///
/// - `append` never waits on the network. It returns a [`Receipt`] that can be ignored or
///   awaited for the batch's offset. At most [`max_buffered_bytes`] wait in the producer;
///   [`append`](Self::append) waits for room, [`try_append`](Self::try_append) fails at once
///   ([`Error::BufferFull`]) and [`append_blocking`](Self::append_blocking) blocks a non-async
///   thread.
/// - Connection errors, timeouts, 5xx and 429 (after its `Retry-After`) are retried with the
///   same epoch and sequence until the [delivery timeout](IdempotentProducerBuilder::delivery_timeout).
/// - A 403 means a newer epoch owns the producer id: the producer is fenced
///   ([`Error::StaleEpoch`], also for later appends) unless auto-claim is on, in which case it
///   takes the server's epoch plus one and sends every unacknowledged batch again, in order,
///   from sequence 0. Note that auto-claim is at-least-once for a batch whose request was
///   stored under the old epoch but whose answer was lost.
/// - A closed stream gives [`Error::StreamClosed`] to the batch and to later appends.
/// - [`flush`](Self::flush) waits for everything appended before it and reports the first
///   failure since the previous flush; every failed batch is also passed to `on_error` and to
///   the receipts of its messages.
///
/// Cloning a producer is cheap and shares it: every clone appends to the same batches.
/// Dropping the last clone without [`close`](Self::close) or [`detach`](Self::detach) loses
/// nothing silently: the task keeps delivering what was accepted (up to the delivery timeout
/// of each batch), logs failures as `tracing` warnings, and exits. It needs its tokio runtime
/// to stay alive for that long; receipts of messages it could not settle then fail with
/// [`Error::AlreadyClosed`].
///
/// ```no_run
/// # async fn demo() -> durable_streams_client::Result<()> {
/// use durable_streams_client::{CreateOptions, DurableStream};
/// let stream = DurableStream::new("http://127.0.0.1:4437/v1/stream/orders")?;
/// stream.create(CreateOptions::json()).await?;
/// let producer = stream.producer("order-service-1").auto_claim(true).build()?;
/// for i in 0..1000 {
///     producer.append(format!(r#"{{"order":{i}}}"#)).await?; // ignores the receipt
/// }
/// let last = producer.append(r#"{"order":"last"}"#).await?;
/// let delivery = last.await?; // waits for that message's batch
/// println!("stored up to {:?}", delivery.offset);
/// producer.flush().await?;
/// let final_offset = producer.close(None).await?;
/// # let _ = final_offset; Ok(()) }
/// ```
///
/// [`linger`]: IdempotentProducerBuilder::linger
/// [`max_batch_bytes`]: IdempotentProducerBuilder::max_batch_bytes
/// [`max_batch_messages`]: IdempotentProducerBuilder::max_batch_messages
/// [`max_in_flight`]: IdempotentProducerBuilder::max_in_flight
/// [`max_buffered_bytes`]: IdempotentProducerBuilder::max_buffered_bytes
#[derive(Clone)]
pub struct IdempotentProducer {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Cmd>,
    producer_id: Arc<str>,
}

impl std::fmt::Debug for IdempotentProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotentProducer")
            .field("url", &self.shared.display)
            .field("producer_id", &self.producer_id)
            .field("epoch", &self.epoch())
            .field("next_seq", &self.next_seq())
            .finish_non_exhaustive()
    }
}

/// Builds an [`IdempotentProducer`]; get one from [`DurableStream::producer`].
///
/// ```no_run
/// # fn demo(stream: durable_streams_client::DurableStream) -> durable_streams_client::Result<()> {
/// use std::time::Duration;
/// let producer = stream
///     .producer("ingest-7")
///     .epoch(3)
///     .linger(Duration::from_millis(2))
///     .max_in_flight(8)
///     .max_buffered_bytes(64 << 20)
///     .header("Authorization", "Bearer token")
///     .on_error(|e| eprintln!("batch failed: {e}"))
///     .build()?;
/// # let _ = producer; Ok(()) }
/// ```
pub struct IdempotentProducerBuilder {
    stream: DurableStream,
    producer_id: String,
    epoch: u64,
    auto_claim: bool,
    linger: Duration,
    max_batch_bytes: usize,
    max_batch_messages: Option<usize>,
    validate_json: bool,
    max_in_flight: usize,
    max_buffered_bytes: usize,
    buffer_timeout: Duration,
    delivery_timeout: Duration,
    retry: RetryPolicy,
    extras: RequestExtras,
    on_error: Option<ErrorCallback>,
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for IdempotentProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotentProducerBuilder")
            .field("producer_id", &self.producer_id)
            .field("epoch", &self.epoch)
            .field("auto_claim", &self.auto_claim)
            .field("linger", &self.linger)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_batch_messages", &self.max_batch_messages)
            .field("validate_json", &self.validate_json)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("buffer_timeout", &self.buffer_timeout)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

impl DurableStream {
    /// A builder for an idempotent producer writing to this stream under `producer_id`.
    ///
    /// The producer sends this handle's headers and parameters (overridden by the producer's
    /// own, overridden in turn by the protocol's) and uses its content type, asking the server
    /// once (`HEAD`) before the first send when the handle does not know it.
    pub fn producer(&self, producer_id: impl Into<String>) -> IdempotentProducerBuilder {
        IdempotentProducerBuilder {
            stream: self.clone(),
            producer_id: producer_id.into(),
            epoch: 0,
            auto_claim: false,
            linger: Duration::from_millis(5),
            max_batch_bytes: 1 << 20,
            max_batch_messages: None,
            validate_json: true,
            max_in_flight: 5,
            max_buffered_bytes: 32 << 20,
            buffer_timeout: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(120),
            retry: default_producer_retry(),
            extras: RequestExtras::default(),
            on_error: None,
            runtime: None,
        }
    }
}

impl IdempotentProducerBuilder {
    /// The epoch to start with (default 0; at most 2^53 - 1).
    ///
    /// The server stores each (producer id, epoch, sequence) once. A new session of a
    /// producer id (a restarted process) starts at sequence 0 again, so it needs an epoch no
    /// earlier session used: persist the last epoch and start from it + 1, or use
    /// [`auto_claim`](Self::auto_claim). A session that reuses an epoch is detected (the
    /// server answers its first batch as a duplicate it never sent): with auto-claim it moves
    /// to a new epoch and sends everything again; without, its batches fail with
    /// [`Error::ProducerSessionConflict`] and nothing is reported delivered that was not
    /// stored.
    pub fn epoch(mut self, epoch: u64) -> Self {
        self.epoch = epoch;
        self
    }

    /// Let the session claim a new epoch by itself (default `false`).
    ///
    /// At the start of a session (before any batch was acknowledged), when the server holds a
    /// newer epoch (403) or another session has written in this epoch, the producer waits for
    /// its requests in flight, takes the next free epoch and sends every batch not stored yet
    /// again from sequence 0 (a batch already stored by a request in flight is kept, so order
    /// may then differ from append order for those few batches; nothing is stored twice). It
    /// claims at most 5 times. Once a batch was acknowledged, the session owns its epoch: a
    /// newer session that claims the id afterwards wins (as Kafka fences zombies), and this
    /// one fails its unacknowledged batches, `flush()` and later appends with
    /// [`Error::StaleEpoch`] instead of claiming back, so two writers never take turns.
    pub fn auto_claim(mut self, yes: bool) -> Self {
        self.auto_claim = yes;
        self
    }

    /// How long a batch stays open for more messages after its first one (default 5 ms).
    /// Zero sends as soon as a request slot is free.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// The body size at which a batch is closed (default 1 MiB). A single larger message is
    /// sent alone.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// The message count at which a batch is closed (default: no limit).
    pub fn max_batch_messages(mut self, messages: usize) -> Self {
        self.max_batch_messages = Some(messages);
        self
    }

    /// Whether `append` checks that each message of a JSON stream is one JSON value (default
    /// `true`). Turn it off only when every message is known to be valid (e.g. produced by a
    /// JSON serializer): an invalid message then fails its whole batch at the server (400).
    /// Validation costs roughly 1 ns per message byte.
    pub fn validate_json(mut self, yes: bool) -> Self {
        self.validate_json = yes;
        self
    }

    /// How many batches may be in flight at once (default 5).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// How many message bytes may wait in the producer, batched or in flight (default 32 MiB).
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// How long [`append`](IdempotentProducer::append) and
    /// [`append_blocking`](IdempotentProducer::append_blocking) wait for room before failing
    /// with [`Error::Timeout`] (default 60 s).
    pub fn buffer_timeout(mut self, timeout: Duration) -> Self {
        self.buffer_timeout = timeout;
        self
    }

    /// How long a batch may take, retries included, before it fails (default 2 minutes).
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// The backoff between retries (default [`default_producer_retry`]). A `max_retries` limit
    /// fails a batch earlier than the delivery timeout.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A header for every request of this producer, fixed or computed per request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_header(name, value);
        self
    }

    /// A query parameter for every request of this producer.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_param(name, value);
        self
    }

    /// Replaces the producer's own headers and parameters.
    pub fn extras(mut self, extras: RequestExtras) -> Self {
        self.extras = extras;
        self
    }

    /// Called once for every batch that fails for good, from the producer's task: keep it
    /// short and never block in it. A panic in it is caught and logged.
    pub fn on_error<F>(mut self, f: F) -> Self
    where
        F: Fn(&Error) + Send + Sync + 'static,
    {
        self.on_error = Some(Arc::new(f));
        self
    }

    /// The runtime that runs the producer's task (default: the current one). Needed to build
    /// a producer outside a tokio runtime, e.g. from a binding's own threads.
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    fn validate(&self) -> Result<()> {
        if self.producer_id.is_empty() {
            return Err(Error::invalid("producer id (producerId) must not be empty"));
        }
        if self.epoch > MAX_PROTOCOL_INT {
            return Err(Error::invalid(format!(
                "epoch must be at most 2^53-1, got {}",
                self.epoch
            )));
        }
        if self.max_batch_bytes == 0 {
            return Err(Error::invalid(
                "max_batch_bytes (maxBatchBytes) must be greater than 0",
            ));
        }
        if self.max_batch_messages == Some(0) {
            return Err(Error::invalid(
                "max_batch_messages (maxBatchMessages, maxBatchItems) must be greater than 0",
            ));
        }
        if self.max_in_flight == 0 {
            return Err(Error::invalid(
                "max_in_flight (maxInFlight) must be greater than 0",
            ));
        }
        if self.max_buffered_bytes == 0 || self.max_buffered_bytes > Semaphore::MAX_PERMITS {
            return Err(Error::invalid(format!(
                "max_buffered_bytes (maxBufferedBytes) must be between 1 and {}",
                Semaphore::MAX_PERMITS
            )));
        }
        if self.delivery_timeout.is_zero() {
            return Err(Error::invalid(
                "delivery_timeout (deliveryTimeout) must be greater than 0",
            ));
        }
        self.retry.validate()
    }

    /// Validates the options and starts the producer's task. Sends nothing yet.
    ///
    /// Fails with [`Error::InvalidArgument`] on an invalid option or header, or when called
    /// outside a tokio runtime without [`runtime`](Self::runtime).
    pub fn build(self) -> Result<IdempotentProducer> {
        self.validate()?;
        let runtime = match self.runtime.clone() {
            Some(h) => h,
            None => tokio::runtime::Handle::try_current().map_err(|_| {
                Error::invalid(
                    "an idempotent producer must be built inside a tokio runtime, or given one \
                     with IdempotentProducerBuilder::runtime",
                )
            })?,
        };
        let extras = self.stream.extras().merged(&self.extras);
        let request = request::RequestTemplate::new(&self.stream, &self.producer_id, extras)?;
        let (settled_tx, settled_rx) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            display: self.stream.inner.display.clone(),
            max_buffered: self.max_buffered_bytes,
            validate_json: self.validate_json,
            buffer_timeout: self.buffer_timeout,
            room: Semaphore::new(self.max_buffered_bytes),
            mode: AtomicU8::new(MODE_UNKNOWN),
            next_msg: AtomicU64::new(0),
            state: AtomicU8::new(STATE_OPEN),
            has_terminal: AtomicBool::new(false),
            terminal: Mutex::new(None),
            epoch: AtomicU64::new(self.epoch),
            next_seq: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            settled_msgs: AtomicU64::new(0),
            last_offset: Mutex::new(None),
            close_result: Mutex::new(None),
            outcomes: Mutex::new(OutcomeLog::default()),
            settled_rx,
            counters: Counters::default(),
            acc: Mutex::new(Acc {
                next_no: 0,
                open: None,
            }),
            spares: Spares::default(),
            max_batch_bytes: self.max_batch_bytes,
            max_batch_messages: self.max_batch_messages.unwrap_or(usize::MAX),
            wake: Notify::new(),
            yield_due: AtomicBool::new(false),
            runtime: runtime.clone(),
        });
        if let Some(ct) = self.stream.content_type() {
            shared.set_mode_from(&ct);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let config = Config {
            producer_id: Arc::from(self.producer_id.as_str()),
            stream: self.stream,
            auto_claim: self.auto_claim,
            linger: self.linger,
            max_batch_bytes: self.max_batch_bytes,
            max_batch_messages: self.max_batch_messages.unwrap_or(usize::MAX),
            max_in_flight: self.max_in_flight,
            delivery_timeout: self.delivery_timeout,
            retry: self.retry,
            on_error: self.on_error,
        };
        runtime.spawn(task::run(
            config,
            request,
            shared.clone(),
            rx,
            settled_tx,
            self.epoch,
        ));
        Ok(IdempotentProducer {
            shared,
            tx,
            producer_id: Arc::from(self.producer_id),
        })
    }
}

/// Fast check that `data` is exactly one JSON value, without building it. `number` is the
/// message number the message takes (as in [`Receipt::message_number`]); `None` for a final
/// message given to `close`.
fn validate_json(data: &[u8], number: Option<u64>) -> Result<()> {
    if json::check(data) {
        return Ok(());
    }
    let what = match number {
        Some(n) => format!("message number {n}"),
        None => "the final message".to_owned(),
    };
    Err(Error::invalid(format!(
        "{what} is not valid JSON: {} (on a JSON stream each message must be \
         one JSON value, such as {{\"a\":1}}, [1,2] or \"text\")",
        describe_invalid_json(data)
    )))
}

/// Says in plain words why `data` is not exactly one JSON value (the refusal path only).
fn describe_invalid_json(data: &[u8]) -> String {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => return format!("it is not valid UTF-8 (byte {})", e.valid_up_to() + 1),
    };
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        None => "it holds only whitespace".to_owned(),
        Some(Ok(_)) => {
            let end = values.byte_offset();
            let rest = text.get(end..).unwrap_or_default();
            let at = end + (rest.len() - rest.trim_start().len());
            format!(
                "a second value starts at character {} after the first one ended, in {}",
                char_position(text, at),
                excerpt(text)
            )
        }
        Some(Err(e)) if e.is_eof() => {
            format!("it ends before the value is complete, in {}", excerpt(text))
        }
        Some(Err(e)) => {
            let at = byte_index(text, e.line(), e.column());
            match text.get(at..).and_then(|rest| rest.chars().next()) {
                Some(c) => format!(
                    "unexpected {c:?} at character {}, in {}",
                    char_position(text, at),
                    excerpt(text)
                ),
                None => format!("it is not a JSON value: {}", excerpt(text)),
            }
        }
    }
}

/// The byte index of a 1-based line and byte column, moved back to a character boundary.
fn byte_index(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let mut at = line_start
        .saturating_add(column.saturating_sub(1))
        .min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The 1-based character position of byte index `at`.
fn char_position(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |head| head.chars().count()) + 1
}

/// The start of a refused message, quoted and escaped.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

impl IdempotentProducer {
    /// The producer id.
    pub fn producer_id(&self) -> &str {
        &self.producer_id
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// The sequence number the next batch will get.
    pub fn next_seq(&self) -> u64 {
        self.shared.next_seq.load(Ordering::Acquire)
    }

    /// Messages accepted by `append` and not yet delivered or failed.
    pub fn pending_count(&self) -> u64 {
        let appended = self.shared.next_msg.load(Ordering::Acquire);
        appended.saturating_sub(self.shared.settled_msgs.load(Ordering::Acquire))
    }

    /// Requests in flight (a request waiting to be retried counts).
    pub fn in_flight_count(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Message bytes waiting in the producer (at most `max_buffered_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.shared
            .max_buffered
            .saturating_sub(self.shared.room.available_permits())
    }

    /// The greatest offset the server acknowledged to this producer.
    pub fn last_offset(&self) -> Option<Offset> {
        self.shared.last_offset.lock().ok().and_then(|g| g.clone())
    }

    /// The receipt of an appended message from its number ([`Receipt::message_number`]), for
    /// bindings that hand out message numbers instead of receipts to keep `append` cheap.
    /// Fails with [`Error::InvalidArgument`] for a number not appended yet.
    pub fn receipt(&self, message_number: u64) -> Result<Receipt> {
        if message_number >= self.shared.next_msg.load(Ordering::Acquire) {
            return Err(Error::invalid(format!(
                "message number {message_number} was not appended by this producer"
            )));
        }
        Ok(Receipt {
            no: message_number,
            shared: self.shared.clone(),
        })
    }

    /// A snapshot of the producer's counters.
    pub fn metrics(&self) -> ProducerMetrics {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProducerMetrics {
            appended_messages: self.shared.next_msg.load(Ordering::Relaxed),
            messages: load(&c.messages),
            bytes: load(&c.bytes),
            batches: load(&c.batches),
            requests: load(&c.requests),
            retries: load(&c.retries),
            duplicates: load(&c.duplicates),
            failed_batches: load(&c.failed_batches),
            failed_messages: load(&c.failed_messages),
            in_flight: self.in_flight_count(),
            buffered_bytes: self.buffered_bytes(),
            latency: LatencyStats {
                count: load(&c.latency_count),
                total: Duration::from_micros(load(&c.latency_sum_us)),
                max: Duration::from_micros(load(&c.latency_max_us)),
            },
        }
    }

    fn check_open(&self) -> Result<()> {
        if let Some(e) = self.shared.terminal_error() {
            return Err(e);
        }
        if self.shared.state.load(Ordering::Acquire) != STATE_OPEN {
            return Err(self.shared.closed_error());
        }
        Ok(())
    }

    /// Checks a message before any room is reserved for it.
    fn admit(&self, data: &[u8], trusted: bool) -> Result<(u32, bool)> {
        self.check_open()?;
        self.check_message(data, trusted, 0)
    }

    /// [`admit`](Self::admit) without the open check: the size and, in JSON mode, that the
    /// message is one JSON value. Also says whether it was validated. `ahead` is how many
    /// messages before this one are being appended with it (for the number an error gives).
    #[inline(always)]
    fn check_message(&self, data: &[u8], trusted: bool, ahead: usize) -> Result<(u32, bool)> {
        if data.is_empty() {
            return Err(Error::invalid("cannot append an empty message"));
        }
        if data.len() > self.shared.max_buffered {
            return Err(Error::invalid(format!(
                "a message of {} bytes exceeds max_buffered_bytes ({})",
                data.len(),
                self.shared.max_buffered
            )));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| Error::invalid("a message must be smaller than 4 GiB"))?;
        let skip = trusted || !self.shared.validate_json;
        let validated = match self.shared.is_json() {
            Some(true) if !skip => {
                let no = self.shared.next_msg.load(Ordering::Relaxed);
                validate_json(data, Some(no.saturating_add(ahead as u64)))?;
                true
            }
            Some(_) => true,
            None => skip,
        };
        Ok((size, validated))
    }

    fn lock_acc(&self) -> Result<MutexGuard<'_, Acc>> {
        self.shared
            .acc
            .lock()
            .map_err(|_| self.shared.closed_error())
    }

    /// Hands a sealed batch to the task (called with the accumulator locked, so batches
    /// arrive in order). A batch the task can no longer take gives its room back; its
    /// receipts then fail with [`Error::AlreadyClosed`].
    fn hand_over(&self, batch: Batch) {
        if let Err(mpsc::error::SendError(Cmd::Batch(b))) = self.tx.send(Cmd::Batch(batch)) {
            self.shared.release(b.bytes);
        }
    }

    /// Copies a message (whose room is reserved) into the open batch. The flag says that the
    /// appender should yield to the runtime now: a batch was handed over, or the open batch
    /// grew past another [`YIELD_BYTES`].
    fn enqueue(&self, data: &[u8], validated: bool) -> Result<(Receipt, bool)> {
        let pushed = self.enqueue_numbered(data, validated)?;
        let receipt = Receipt {
            no: pushed.no,
            shared: self.shared.clone(),
        };
        Ok((receipt, pushed.yield_now))
    }

    /// [`enqueue`](Self::enqueue) without the receipt: what was pushed.
    #[inline(always)]
    fn enqueue_numbered(&self, data: &[u8], validated: bool) -> Result<Pushed> {
        let len = data.len();
        let mut acc = match self.lock_open() {
            Ok(acc) => acc,
            Err(e) => {
                self.shared.release(len);
                return Err(e);
            }
        };
        let pushed = match self.push_locked(&mut acc, data, validated) {
            Ok(pushed) => pushed,
            Err(e) => {
                drop(acc);
                self.shared.release(len);
                return Err(e);
            }
        };
        drop(acc);
        if pushed.opened {
            self.shared.wake.notify_one();
        }
        Ok(pushed)
    }

    /// Takes the accumulator lock once the producer is known to be open: checked again under
    /// the lock, since a close or detach takes it before choosing which messages it covers, so
    /// no message can slip in after that.
    #[inline(always)]
    fn lock_open(&self) -> Result<MutexGuard<'_, Acc>> {
        let acc = self.lock_acc()?;
        if self.shared.state.load(Ordering::Acquire) != STATE_OPEN || self.tx.is_closed() {
            drop(acc);
            return Err(self
                .check_open()
                .err()
                .unwrap_or_else(|| self.shared.closed_error()));
        }
        Ok(acc)
    }

    /// Copies a message (whose room is reserved) into the open batch, with the accumulator
    /// locked and the producer open: hands over the open batch first if the message would
    /// overflow it, and after if it is full. On an error nothing was added (the caller gives
    /// the message's room back).
    #[inline(always)]
    fn push_locked(&self, acc: &mut Acc, data: &[u8], validated: bool) -> Result<Pushed> {
        let len = data.len();
        let no = acc.next_no;
        let max = self.shared.max_batch_bytes;
        let mut handed = false;
        if acc
            .open
            .as_ref()
            .is_some_and(|b| b.would_overflow(len, max))
        {
            if let Some(full) = acc.open.take() {
                self.hand_over(full);
                handed = true;
            }
        }
        let opened = acc.open.is_none();
        let json_batch = match &acc.open {
            Some(b) => matches!(b.framing, Framing::Json),
            None => self.shared.is_json() == Some(true),
        };
        if json_batch && !validated {
            // The content type became known between `admit` and here.
            validate_json(data, Some(no))?;
        }
        let batch = acc.open.get_or_insert_with(|| {
            let framing = match self.shared.is_json() {
                Some(true) => Framing::Json,
                Some(false) => Framing::Raw,
                None => Framing::Unknown(Vec::new()),
            };
            Batch::new(no, framing, max, len, &self.shared.spares)
        });
        let before = batch.body.len();
        batch.push(data, validated);
        let crossed = before / YIELD_BYTES != batch.body.len() / YIELD_BYTES;
        if batch.is_full(max, self.shared.max_batch_messages) {
            if let Some(full) = acc.open.take() {
                self.hand_over(full);
                handed = true;
            }
        }
        acc.next_no = no + 1;
        self.shared.next_msg.store(no + 1, Ordering::Release);
        Ok(Pushed {
            no,
            opened,
            yield_now: handed || crossed,
        })
    }

    /// Appends a message if there is room for it now, else fails with [`Error::BufferFull`].
    ///
    /// In JSON mode the message must be one serialized JSON value (checked here, so a bad
    /// message never sinks a batch of good ones); otherwise any non-empty bytes.
    ///
    /// The message is copied into the open batch, so any byte slice will do (`&[u8]`, `&str`,
    /// `Vec<u8>`, `String`, `Bytes` ...).
    pub fn try_append(&self, data: impl AsRef<[u8]>) -> Result<Receipt> {
        let data = data.as_ref();
        let validated = self.reserve_now(data)?;
        self.enqueue(data, validated).map(|(r, _)| r)
    }

    /// Checks a message and reserves its room if there is room now ([`Error::BufferFull`]
    /// otherwise); says whether it was validated.
    #[inline(always)]
    fn reserve_now(&self, data: &[u8]) -> Result<bool> {
        let (size, validated) = self.admit(data, false)?;
        match self.shared.room.try_acquire_many(size) {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(self.buffer_full(data.len())),
        }
        Ok(validated)
    }

    /// [`try_append`](Self::try_append) that returns only the message's number (as
    /// [`Receipt::message_number`] would give it), without making a receipt: for callers that
    /// follow deliveries by number or not at all, such as a binding's one call per message.
    pub fn try_append_numbered(&self, data: impl AsRef<[u8]>) -> Result<u64> {
        let data = data.as_ref();
        let validated = self.reserve_now(data)?;
        self.enqueue_numbered(data, validated).map(|p| p.no)
    }

    /// Appends `messages` in order while there is room for them now, as
    /// [`try_append`](Self::try_append) would one by one, for less: the room is reserved and
    /// the batch locked once per run of up to 256 messages, and only the last message gets a
    /// receipt.
    ///
    /// Stops at the first message that fails (a full buffer gives [`Error::BufferFull`]; a
    /// message that is not one JSON value, an empty one, a closed producer, their errors); the
    /// messages before it stay appended. [`AppendedMany::count`] says how many were.
    pub fn try_append_many<M: AsRef<[u8]>>(&self, messages: &[M]) -> AppendedMany {
        self.append_many_checked(messages, &[])
    }

    /// [`try_append_many`](Self::try_append_many) for `count` messages joined into one text
    /// by `separator`, a byte that none of them holds: NUL for JSON messages, as JSON text
    /// never holds it raw. On a JSON stream one scan of each message both checks it and finds
    /// where it ends. `None`, with nothing appended, when the text does not hold exactly
    /// `count` pieces (a message held the separator).
    ///
    /// A JSON whitespace byte (`\n` for newline-delimited JSON, space, tab, CR) also works as
    /// the separator: the text is then split at every such byte first and each piece checked on
    /// its own, since a scan would take the separator for whitespace around a value.
    pub fn try_append_joined(
        &self,
        joined: &[u8],
        separator: u8,
        count: usize,
    ) -> Option<AppendedMany> {
        let scan = self.shared.validate_json
            && self.shared.is_json() == Some(true)
            && !matches!(separator, b' ' | b'\t' | b'\n' | b'\r');
        // A text of n bytes has at most n + 1 pieces, whatever `count` says.
        let most = count.min(joined.len().saturating_add(1));
        let mut pieces = Vec::with_capacity(most);
        let mut checked = Vec::with_capacity(if scan { most } else { 0 });
        let mut rest = joined;
        // Messages next to each other share the blocks their strings are found in.
        let mut block = json::Block::NONE;
        loop {
            let at = joined.len() - rest.len();
            let known = if scan {
                json::piece_len_in(joined, at, &mut block, separator)
            } else {
                None
            };
            // A message that is not valid JSON is split off at the separator and checked
            // again when appended, for its error.
            let len =
                known.unwrap_or_else(|| memchr::memchr(separator, rest).unwrap_or(rest.len()));
            if pieces.len() == count {
                return None;
            }
            pieces.push(&rest[..len]);
            if scan {
                checked.push(known.is_some());
            }
            match rest.get(len + 1..) {
                Some(next) => rest = next,
                None => break,
            }
        }
        (pieces.len() == count).then(|| self.append_many_checked(&pieces, &checked))
    }

    /// [`try_append_many`](Self::try_append_many), where `trusted[i]` says that message `i`
    /// has been checked already (a shorter `trusted` leaves the rest to be checked).
    fn append_many_checked<M: AsRef<[u8]>>(
        &self,
        messages: &[M],
        trusted: &[bool],
    ) -> AppendedMany {
        let mut done = AppendedMany {
            count: 0,
            last: None,
            stopped: None,
        };
        while done.stopped.is_none() && done.count < messages.len() {
            let rest = &messages[done.count..];
            let run = &rest[..rest.len().min(MANY_RUN)];
            let trusted = trusted.get(done.count..).unwrap_or(&[]);
            match self.check_open() {
                Ok(()) => self.append_run(run, trusted, &mut done),
                Err(e) => done.stopped = Some(e),
            }
        }
        done
    }

    /// One run of [`try_append_many`](Self::try_append_many): checks the messages (but
    /// those `trusted` says were), reserves the room of those that fit in one go, and copies
    /// them in under one lock. Adds what it appended to `done`, and why it stopped when a
    /// message failed.
    fn append_run<M: AsRef<[u8]>>(&self, run: &[M], trusted: &[bool], done: &mut AppendedMany) {
        let mut validated = [false; MANY_RUN];
        let available = self.shared.room.available_permits();
        let mut total = 0usize;
        let mut fits = 0;
        let mut refused = None;
        for (k, (m, checked)) in run.iter().zip(validated.iter_mut()).enumerate() {
            let data = m.as_ref();
            match self.check_message(data, trusted.get(k).copied().unwrap_or(false), k) {
                Ok((size, v)) => {
                    let next = total + size as usize;
                    if next > available || next > u32::MAX as usize {
                        break;
                    }
                    total = next;
                    *checked = v;
                    fits += 1;
                }
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if fits == 0 {
            let requested = run.first().map_or(0, |m| m.as_ref().len());
            done.stopped = Some(refused.unwrap_or_else(|| self.buffer_full(requested)));
            return;
        }
        // `total` fits in u32 (checked above).
        match self.shared.room.try_acquire_many(total as u32) {
            Ok(permit) => permit.forget(),
            // Another appender took the room meanwhile: this run goes one message at a time.
            Err(_) => return self.append_each(run, done),
        }
        let mut acc = match self.lock_open() {
            Ok(acc) => acc,
            Err(e) => {
                self.shared.release(total);
                done.stopped = Some(e);
                return;
            }
        };
        let mut last = None;
        let mut opened = false;
        for (m, &v) in run.iter().zip(validated.iter()).take(fits) {
            let data = m.as_ref();
            match self.push_locked(&mut acc, data, v) {
                Ok(pushed) => {
                    opened |= pushed.opened;
                    last = Some(pushed.no);
                    total -= data.len();
                    done.count += 1;
                }
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        drop(acc);
        // The room of messages not copied in (after a failure under the lock) goes back.
        self.shared.release(total);
        if opened {
            self.shared.wake.notify_one();
        }
        if let Some(no) = last {
            done.last = Some(Receipt {
                no,
                shared: self.shared.clone(),
            });
        }
        done.stopped = refused;
    }

    /// A run whose room could not be reserved at once: one [`try_append`](Self::try_append)
    /// per message until one fails.
    fn append_each<M: AsRef<[u8]>>(&self, run: &[M], done: &mut AppendedMany) {
        for m in run {
            match self.try_append(m) {
                Ok(r) => {
                    done.count += 1;
                    done.last = Some(r);
                }
                Err(e) => {
                    done.stopped = Some(e);
                    return;
                }
            }
        }
    }

    /// The error for a message of `requested` bytes that does not fit in the buffer now.
    fn buffer_full(&self, requested: usize) -> Error {
        Error::BufferFull {
            requested,
            buffered: self.buffered_bytes(),
            limit: self.shared.max_buffered,
        }
    }

    /// Appends a message, waiting (up to the buffer timeout) for room when the producer holds
    /// `max_buffered_bytes` already. Never waits on the network otherwise.
    ///
    /// The message is any bytes (`&str`, `String`, `&[u8]`, `Vec<u8>`, `Bytes`, ...). It is
    /// copied into the open batch before this returns, so a borrowed buffer may be reused at once
    /// (say, one that each message is serialized into) and nothing is allocated per message.
    ///
    /// The returned [`Receipt`] may be dropped, or awaited for the batch's offset.
    pub async fn append(&self, data: impl AsRef<[u8]>) -> Result<Receipt> {
        self.append_checked(data.as_ref(), false).await
    }

    async fn append_checked(&self, data: &[u8], trusted: bool) -> Result<Receipt> {
        if self.shared.yield_due.load(Ordering::Relaxed) {
            // The append before handed a full batch over, or put another YIELD_BYTES into the
            // open one: let the task and its requests run now, even on a current-thread runtime
            // where a tight append loop would otherwise hold the thread until the buffer is
            // full, and the answers that release the next request bodies would wait for it.
            // Yielding here, before anything is appended, and not after the append that made
            // the batch, keeps `append` cancel-safe: a future dropped at any await has appended
            // nothing, and the one that appends returns its receipt in the same poll.
            self.shared.yield_due.store(false, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        let (size, validated) = self.admit(data, trusted)?;
        match self.shared.room.try_acquire_many(size) {
            Ok(permit) => permit.forget(),
            Err(_) => self.acquire_waiting(size).await?,
        }
        let (receipt, yield_now) = self.enqueue(data, validated)?;
        if yield_now {
            self.shared.yield_due.store(true, Ordering::Relaxed);
        }
        Ok(receipt)
    }

    async fn acquire_waiting(&self, size: u32) -> Result<()> {
        let timeout = self.shared.buffer_timeout;
        match tokio::time::timeout(timeout, self.shared.room.acquire_many(size)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(())
            }
            Ok(Err(_)) => Err(self.shared.closed_error()),
            Err(_) => Err(Error::Timeout {
                source: None,
                what: format!(
                    "waiting {timeout:?} for {size} bytes of room in the producer buffer \
                     ({} bytes max)",
                    self.shared.max_buffered
                ),
            }),
        }
    }

    /// [`append`](Self::append) for threads outside any tokio runtime: blocks the thread while
    /// waiting for room. Called from inside a runtime it fails with
    /// [`Error::InvalidArgument`] instead of blocking the runtime. The producer's runtime must
    /// keep running meanwhile (a multi-thread runtime, or one driven by another thread).
    pub fn append_blocking(&self, data: impl AsRef<[u8]>) -> Result<Receipt> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::invalid(
                "append_blocking must not be called inside a tokio runtime: \
                 use append().await or try_append",
            ));
        }
        let data = data.as_ref();
        let (size, validated) = self.admit(data, false)?;
        match self.shared.room.try_acquire_many(size) {
            Ok(permit) => permit.forget(),
            Err(_) => self.shared.runtime.block_on(self.acquire_waiting(size))?,
        }
        self.enqueue(data, validated).map(|(r, _)| r)
    }

    /// Serializes `value` and appends it (see [`append`](Self::append)). The output of
    /// serde_json is not validated again.
    pub async fn append_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<Receipt> {
        let v = serde_json::to_vec(value)
            .map_err(|e| Error::invalid(format!("value cannot be serialized as JSON: {e}")))?;
        self.append_checked(&v, true).await
    }

    /// Waits (up to the buffer timeout) until `bytes` more would fit in the buffer. A
    /// following [`try_append`](Self::try_append) can still find it full if others appended
    /// in between.
    pub async fn wait_for_room(&self, bytes: usize) -> Result<()> {
        self.check_open()?;
        let size = u32::try_from(bytes.min(self.shared.max_buffered))
            .map_err(|_| Error::invalid("a message must be smaller than 4 GiB"))?;
        self.acquire_waiting(size).await?;
        self.shared.release(size as usize);
        Ok(())
    }

    async fn control<T>(
        &self,
        make: impl FnOnce(u64, oneshot::Sender<Result<T>>) -> Cmd,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        {
            // The open batch goes first, then the control covering every message numbered so
            // far: both under the lock, so no append falls between them.
            let mut acc = self.lock_acc()?;
            if let Some(open) = acc.open.take() {
                self.hand_over(open);
            }
            let upto = acc.next_no;
            self.tx
                .send(make(upto, reply))
                .map_err(|_| self.shared.closed_error())?;
        }
        self.shared.wake.notify_one();
        rx.await.map_err(|_| self.shared.closed_error())?
    }

    /// Sends what is batched now and waits until everything appended before this call is
    /// delivered or has failed. Returns the first failure since the previous flush (all of
    /// them went to `on_error` and to their receipts).
    pub async fn flush(&self) -> Result<()> {
        match self.control(|upto, reply| Cmd::Flush { upto, reply }).await {
            Err(Error::AlreadyClosed { .. })
                if self.shared.state.load(Ordering::Acquire) != STATE_OPEN =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Flushes, then starts a new session: epoch + 1 (or the server's epoch + 1 after a
    /// fencing) and sequence 0. Clears the fenced state. Returns the flush's result.
    pub async fn restart(&self) -> Result<()> {
        self.control(|upto, reply| Cmd::Restart { upto, reply })
            .await
    }

    /// Flushes, then closes the stream with this producer's headers, optionally appending a
    /// final message in the same request. Returns the stream's final offset.
    ///
    /// Later appends fail with [`Error::AlreadyClosed`]. Calling it again returns the same
    /// offset. If the flush reports a failure the stream is left open and the failure is
    /// returned; calling `close` again then closes it.
    pub async fn close(&self, final_message: Option<Bytes>) -> Result<Option<Offset>> {
        if let Some(done) = self.shared.close_result.lock().ok().and_then(|g| g.clone()) {
            return Ok(done);
        }
        if let Some(m) = &final_message {
            if m.is_empty() {
                return Err(Error::invalid("the final message must not be empty"));
            }
            if self.shared.is_json() == Some(true) {
                validate_json(m, None)?;
            }
        }
        if self.shared.state.load(Ordering::Acquire) == STATE_DETACHED {
            return Err(self.shared.closed_error());
        }
        self.shared.state.store(STATE_CLOSING, Ordering::Release);
        let result = self
            .control(|upto, reply| Cmd::Close {
                upto,
                body: final_message,
                reply,
            })
            .await;
        match result {
            Err(Error::AlreadyClosed { .. }) => {
                match self.shared.close_result.lock().ok().and_then(|g| g.clone()) {
                    Some(done) => Ok(done),
                    None => Err(self.shared.closed_error()),
                }
            }
            other => other,
        }
    }

    /// Flushes and stops the producer without closing the stream. Later appends fail with
    /// [`Error::AlreadyClosed`]. Returns the flush's result.
    pub async fn detach(&self) -> Result<()> {
        if self.shared.state.load(Ordering::Acquire) == STATE_DETACHED {
            return Ok(());
        }
        self.shared.state.store(STATE_DETACHED, Ordering::Release);
        match self
            .control(|upto, reply| Cmd::Detach { upto, reply })
            .await
        {
            Err(Error::AlreadyClosed { .. }) => Ok(()),
            other => other,
        }
    }
}

/// The outcome of one message, awaitable from its [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream's tail offset after the batch holding the message (`None` when the server
    /// reported a duplicate, which carries no offset).
    pub offset: Option<Offset>,
    /// Whether the server had already stored the batch (a retried request whose first answer
    /// was lost).
    pub duplicate: bool,
    /// The epoch the batch was stored under.
    pub epoch: u64,
    /// The batch's sequence number.
    pub seq: u64,
}

/// What [`IdempotentProducer::try_append_many`] did.
#[derive(Debug)]
pub struct AppendedMany {
    /// How many of the messages were appended: the first `count`.
    pub count: usize,
    /// The receipt of the last message appended (`None` when none was).
    pub last: Option<Receipt>,
    /// Why it stopped before the end (`None` when every message was appended).
    pub stopped: Option<Error>,
}

/// What [`IdempotentProducer::push_locked`] did with one message.
struct Pushed {
    no: u64,
    /// The message opened a new batch (the task is woken once the lock is released).
    opened: bool,
    /// A batch was handed over, or the open one crossed another [`YIELD_BYTES`].
    yield_now: bool,
}

/// A handle to the outcome of one appended message. Dropping it costs nothing; awaiting it
/// (`receipt.await` or [`wait`](Self::wait)) gives the [`Delivery`] or the batch's error.
///
/// Outcomes of the last 65,536 batches are kept; a receipt awaited after its batch fell out
/// of that window fails with [`Error::InvalidArgument`].
#[derive(Clone)]
pub struct Receipt {
    no: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("message", &self.no)
            .finish()
    }
}

impl Receipt {
    /// The message's number in this producer (0 for the first append).
    pub fn message_number(&self) -> u64 {
        self.no
    }

    /// The outcome, if the message's batch has settled.
    pub fn try_result(&self) -> Option<Result<Delivery>> {
        if self.shared.settled_msgs.load(Ordering::Acquire) <= self.no {
            return None;
        }
        Some(self.lookup())
    }

    fn lookup(&self) -> Result<Delivery> {
        match self.shared.outcomes.lock() {
            Ok(log) => log.lookup(self.no),
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Waits for the message's batch to be delivered or to fail.
    pub async fn wait(self) -> Result<Delivery> {
        let mut rx = self.shared.settled_rx.clone();
        let no = self.no;
        if rx.wait_for(|settled| *settled > no).await.is_err()
            && self.shared.settled_msgs.load(Ordering::Acquire) <= no
        {
            return Err(Error::AlreadyClosed {
                what: format!(
                    "idempotent producer for {} (stopped before the message was sent)",
                    self.shared.display
                ),
            });
        }
        self.lookup()
    }
}

impl IntoFuture for Receipt {
    type Output = Result<Delivery>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Delivery>> + Send + 'static>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

/// Request latency: from sending a request to its response (retries count separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyStats {
    /// Requests measured.
    pub count: u64,
    /// Their total duration.
    pub total: Duration,
    /// The longest one.
    pub max: Duration,
}

impl LatencyStats {
    /// The mean latency (zero before the first request).
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let nanos = self.total.as_nanos() / u128::from(self.count);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// A snapshot of an [`IdempotentProducer`]'s counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerMetrics {
    /// Messages accepted by `append`.
    pub appended_messages: u64,
    /// Messages delivered (stored, or reported as duplicates).
    pub messages: u64,
    /// Message bytes delivered.
    pub bytes: u64,
    /// Batches delivered.
    pub batches: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after a retryable failure, a reordering (409) or a claim.
    pub retries: u64,
    /// Batches the server reported as duplicates (204).
    pub duplicates: u64,
    /// Batches that failed for good.
    pub failed_batches: u64,
    /// Messages in those batches (or refused by the task).
    pub failed_messages: u64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Message bytes waiting in the producer now.
    pub buffered_bytes: usize,
    /// Request latency.
    pub latency: LatencyStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(data: &[u8]) -> String {
        match validate_json(data, Some(7)) {
            Err(Error::InvalidArgument { message }) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn invalid_json_is_explained_in_plain_words() {
        let m = refusal(b"{hello}");
        assert!(
            m.starts_with(
                r#"message number 7 is not valid JSON: unexpected 'h' at character 2, in "{hello}""#
            ),
            "{m}"
        );
        assert!(!m.contains("line 1 column"), "{m}");
        let m = refusal(b"nope");
        assert!(
            m.contains(r#"unexpected 'o' at character 2, in "nope""#),
            "{m}"
        );
        let m = refusal(br#"{"a":1} {"b":2}"#);
        assert!(m.contains("a second value starts at character 9"), "{m}");
        let m = refusal(br#"{"a":"#);
        assert!(m.contains("it ends before the value is complete"), "{m}");
        assert!(refusal(b" \n ").contains("it holds only whitespace"));
        assert!(refusal(b"\"\xff\"").contains("not valid UTF-8 (byte 2)"));
        let m = refusal(b"[1,\n 2,\n x]");
        assert!(
            m.contains(r#"unexpected 'x' at character 10, in "[1,\n 2,\n x]""#),
            "{m}"
        );
        let long = format!("[{}", "1,".repeat(100));
        assert!(refusal(long.as_bytes()).contains("…"));
    }
}
