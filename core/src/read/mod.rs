//! Reading a stream: catch-up, long-poll and SSE, with resumable offsets.
//!
//! [`stream()`](stream()) (or [`DurableStream::stream`]) sends the first request and returns a
//! [`StreamResponse`], which is then consumed once in one of three styles: everything at once
//! ([`StreamResponse::bytes`], [`text`](StreamResponse::text), [`json`](StreamResponse::json)),
//! a `Stream` of chunks ([`byte_stream`](StreamResponse::byte_stream),
//! [`text_stream`](StreamResponse::text_stream), [`json_stream`](StreamResponse::json_stream)),
//! or [`Batches`] that each carry the offset to resume from
//! ([`byte_batches`](StreamResponse::byte_batches), [`text_batches`](StreamResponse::text_batches),
//! [`json_batches`](StreamResponse::json_batches)).

mod decode;
mod engine;
pub(crate) mod fast_de;
mod numbers;
mod sse;

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use url::Url;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::is_json_content_type;
use crate::offset::Offset;
use crate::retry::RetryPolicy;
use crate::stream::DurableStream;
use crate::values::{RequestExtras, Value};

pub use decode::JsonPick;
use decode::{concat, ArrayTexts, Elements, JsonSplitter, Parsed, PickedTexts, Utf8Decoder};
pub use engine::DEFAULT_CATCH_UP_RETRIES;
use engine::{Chunk, Config, Engine, Framing};
pub use numbers::JsonNumbers;

/// The default of [`ReadOptions::max_chunk_bytes`]: 8 MiB.
pub const DEFAULT_MAX_CHUNK_BYTES: usize = 8 << 20;

/// The default of [`ReadOptions::max_read_bytes`]: 256 MiB.
pub const DEFAULT_MAX_READ_BYTES: usize = 256 << 20;

/// How a read continues once it has caught up with the stream.
///
/// Every mode starts with plain (cacheable) catch-up requests until the server says the reader
/// is up to date; the mode decides what happens then. In every mode the read ends when the
/// stream is closed and all of its data was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiveMode {
    /// Stop at the first up-to-date response.
    Off,
    /// Wait for new data with long-poll requests (`live=long-poll`).
    LongPoll,
    /// Receive new data over server-sent events (`live=sse`), reconnecting from the last
    /// control event, and falling back to long-polls when connections keep ending at once.
    Sse,
    /// SSE for JSON streams, long-poll for all others (the default).
    ///
    /// SSE framing turns every CR and CRLF in a text payload into LF, so a `text/*` stream
    /// could arrive altered; binary streams would travel base64-encoded (a third larger).
    /// JSON keeps its meaning across that framing, so only JSON streams use SSE.
    #[default]
    Auto,
}

impl LiveMode {
    /// The name used in documentation and logs: `off`, `long-poll`, `sse` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::LongPoll => "long-poll",
            Self::Sse => "sse",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for LiveMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When SSE connections count as broken, and how reconnections are paced.
///
/// A connection that ends (without the stream being closed) after less than
/// `min_connection_duration` is *short*; after `max_short_connections` short connections in a
/// row the read switches to long-polls for good, since something between client and server
/// (typically a buffering proxy) keeps SSE from working. Between short connections the read
/// waits a random delay of up to `backoff_base_delay * 2^(n-1)`, capped at
/// `backoff_max_delay`. A connection that lasted long enough is reopened at once.
///
/// A connection that stays silent for longer than the client's long-poll timeout
/// ([`ClientBuilder::long_poll_timeout`](crate::ClientBuilder::long_poll_timeout), 90 s by
/// default) counts as lost and is reopened; servers send control events while idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseResilience {
    /// A connection shorter than this is a short connection (default 1 s).
    pub min_connection_duration: Duration,
    /// Short connections in a row before falling back to long-polls (default 3, at least 1).
    pub max_short_connections: u32,
    /// The first reconnection delay bound (default 100 ms).
    pub backoff_base_delay: Duration,
    /// The largest reconnection delay bound (default 5 s).
    pub backoff_max_delay: Duration,
}

impl Default for SseResilience {
    fn default() -> Self {
        Self {
            min_connection_duration: Duration::from_secs(1),
            max_short_connections: 3,
            backoff_base_delay: Duration::from_millis(100),
            backoff_max_delay: Duration::from_secs(5),
        }
    }
}

impl SseResilience {
    /// Checks the values: at least one short connection, and a base delay not above the
    /// maximum.
    pub fn validate(&self) -> Result<()> {
        if self.max_short_connections == 0 {
            return Err(Error::invalid("max_short_connections must be at least 1"));
        }
        if self.backoff_base_delay > self.backoff_max_delay {
            return Err(Error::invalid(format!(
                "SSE backoff base delay ({:?}) exceeds the maximum delay ({:?})",
                self.backoff_base_delay, self.backoff_max_delay
            )));
        }
        Ok(())
    }
}

/// The future an [`ErrorHook::new`] function returns.
pub type ErrorHookFuture = Pin<Box<dyn Future<Output = Option<RequestExtras>> + Send + 'static>>;

type DecisionFuture = Pin<Box<dyn Future<Output = ErrorDecision> + Send + 'static>>;

pub use crate::retry::FailedAttempt;

/// What an [`ErrorHook`] wants after a failed attempt.
#[derive(Debug, Clone)]
pub enum ErrorDecision {
    /// Leave it to the retry policy: retry when it would, otherwise end the read with the
    /// error.
    Default,
    /// Try again with these extras merged over the read's headers and parameters (they stay
    /// for the rest of the read): after the usual pause when the retry policy would retry
    /// anyway, otherwise at once with the retry count reset.
    Retry(RequestExtras),
    /// End the read now with the error.
    Stop,
}

/// Consulted after every failed attempt of a read request (the first request, and every later
/// catch-up, long-poll or SSE connection, including a response body lost in the middle).
///
/// [`ErrorHook::new`] takes the reference client's form, an async function of the error:
/// `Some(extras)` asks for another attempt with `extras` merged over the read's headers and
/// parameters (they stay for the rest of the read); `None` leaves the decision to the retry
/// policy, so the read goes on while the policy retries and ends with the error once it gives
/// up or the error is not retryable. (The reference client calls its hook only once its own
/// retries are over, where `None` ends the read; it does here too.) [`ErrorHook::decide`]
/// sees the attempt count and whether the policy would retry, and can also stop the read at
/// once ([`ErrorDecision::Stop`]).
///
/// A hook that always asks for another attempt retries forever; the pauses of the retry
/// policy still apply while it would retry, but not after it has given up, so such a hook
/// should look at the error and pace itself.
///
/// ```
/// use durable_streams_client::{Error, ErrorHook, RequestExtras};
/// let hook = ErrorHook::new(|err: Error| async move {
///     match err {
///         Error::Unauthorized { .. } => {
///             let token = "fresh-token"; // fetch a new one here
///             Some(RequestExtras::new().header("Authorization", format!("Bearer {token}")))
///         }
///         _ => None,
///     }
/// });
/// # let _ = hook;
/// ```
#[derive(Clone)]
pub struct ErrorHook(Arc<dyn Fn(FailedAttempt) -> DecisionFuture + Send + Sync + 'static>);

impl ErrorHook {
    /// A hook from an async function of the error; see the type's documentation.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(Error) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<RequestExtras>> + Send + 'static,
    {
        Self(Arc::new(move |failed: FailedAttempt| {
            let fut = f(failed.error);
            Box::pin(async move {
                match fut.await {
                    Some(extras) => ErrorDecision::Retry(extras),
                    None => ErrorDecision::Default,
                }
            }) as DecisionFuture
        }))
    }

    /// A hook that decides with the whole picture of the failed attempt.
    ///
    /// ```
    /// use durable_streams_client::{ErrorDecision, ErrorHook, FailedAttempt};
    /// // Give up after three failures in a row, whatever the retry policy says.
    /// let hook = ErrorHook::decide(|f: FailedAttempt| async move {
    ///     if f.attempt >= 3 { ErrorDecision::Stop } else { ErrorDecision::Default }
    /// });
    /// # let _ = hook;
    /// ```
    pub fn decide<F, Fut>(f: F) -> Self
    where
        F: Fn(FailedAttempt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ErrorDecision> + Send + 'static,
    {
        Self(Arc::new(move |failed| {
            Box::pin(f(failed)) as DecisionFuture
        }))
    }

    pub(crate) async fn call(&self, failed: FailedAttempt) -> ErrorDecision {
        (self.0)(failed).await
    }
}

impl fmt::Debug for ErrorHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorHook(..)")
    }
}

/// Options of a read.
///
/// ```
/// use durable_streams_client::{LiveMode, Offset, ReadOptions};
/// let opts = ReadOptions::new()
///     .offset(Offset::now())
///     .live(LiveMode::LongPoll)
///     .header("Authorization", "Bearer token");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Where to start: [`Offset::beginning`] (the default), [`Offset::now`] or a saved offset.
    pub offset: Offset,
    /// What to do after catching up (default [`LiveMode::Auto`]).
    pub live: LiveMode,
    /// Treat the stream as JSON whatever its content type (default: only `application/json`).
    pub json: bool,
    /// Headers and parameters of this read, over the handle's.
    pub extras: RequestExtras,
    /// Retries of failed requests: network errors, timeouts, 5xx and 429, with full-jitter
    /// backoff and `Retry-After` honoured (up to [`RetryPolicy::max_retry_after`], 60 s by
    /// default). Default: [`RetryPolicy::default`]. When its `max_retries` is `None`, live
    /// requests (long-polls and SSE connections) are retried without limit, each failure
    /// logged as a `tracing` warning, while requests that are not live (catch-up requests,
    /// and every request of a [`LiveMode::Off`] read) stop after
    /// [`DEFAULT_CATCH_UP_RETRIES`] retries with the last failure; set `max_retries` to bound
    /// both (`Some(u32::MAX)` retries catch-ups for ever too).
    pub retry: RetryPolicy,
    /// Consulted after every failed attempt of a request; see [`ErrorHook`].
    pub on_error: Option<ErrorHook>,
    /// The most response data gathered before it is handed on (`None`: the default,
    /// [`DEFAULT_MAX_CHUNK_BYTES`], 8 MiB; `Some(0)` is refused as an invalid argument): a batch of the streaming
    /// consumers carries at most about this much (one network read over), and a single JSON
    /// message larger than this is an [`Error::Parse`] that names this option. SSE data events
    /// are handed on once this much (at most 64 KiB) has gathered, without waiting for their
    /// control event, and one SSE event or line may take at most twice this (base64 takes a
    /// third more than the data). Memory of an incremental read stays within a small multiple
    /// of it, whatever the response size or the number of events before a control event.
    pub max_chunk_bytes: Option<usize>,
    /// The most data [`StreamResponse::bytes`], [`text`](StreamResponse::text) and
    /// [`json`](StreamResponse::json) collect (`None`: the default, [`DEFAULT_MAX_READ_BYTES`],
    /// 256 MiB; `Some(0)` is refused as an invalid argument); past it they fail with an [`Error::Parse`] that names this option.
    /// For JSON the limit counts the response bytes. The streaming consumers ignore it.
    pub max_read_bytes: Option<usize>,
    /// SSE reconnection and fallback settings.
    pub sse: SseResilience,
    /// The client to use; default: the handle's ([`Client::shared`] for [`stream()`](stream())).
    pub client: Option<Client>,
}

impl ReadOptions {
    /// The default options: from the beginning, [`LiveMode::Auto`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the start offset.
    pub fn offset(mut self, offset: impl Into<Offset>) -> Self {
        self.offset = offset.into();
        self
    }

    /// Sets the live mode.
    pub fn live(mut self, live: LiveMode) -> Self {
        self.live = live;
        self
    }

    /// Forces (or stops forcing) JSON mode.
    pub fn json(mut self, yes: bool) -> Self {
        self.json = yes;
        self
    }

    /// Adds a header, fixed or computed once per request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_header(name, value);
        self
    }

    /// Adds a query parameter, fixed or computed once per request.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_param(name, value);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the error hook from an async function; see [`ErrorHook`].
    pub fn on_error<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Error) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<RequestExtras>> + Send + 'static,
    {
        self.on_error = Some(ErrorHook::new(f));
        self
    }

    /// Sets [`max_chunk_bytes`](Self::max_chunk_bytes).
    pub fn max_chunk_bytes(mut self, bytes: usize) -> Self {
        self.max_chunk_bytes = Some(bytes);
        self
    }

    /// Sets [`max_read_bytes`](Self::max_read_bytes).
    pub fn max_read_bytes(mut self, bytes: usize) -> Self {
        self.max_read_bytes = Some(bytes);
        self
    }

    /// Sets the SSE resilience settings.
    pub fn sse_resilience(mut self, sse: SseResilience) -> Self {
        self.sse = sse;
        self
    }

    /// Uses this client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }
}

/// Reads the stream at `url`: sends the first request and returns the response to consume.
///
/// Errors of the first request (after retries and the error hook) are returned here, e.g.
/// [`Error::NotFound`]. See [`DurableStream::stream`].
///
/// ```no_run
/// # async fn demo() -> durable_streams_client::Result<()> {
/// use durable_streams_client::{stream, LiveMode, ReadOptions};
/// let resp = stream(
///     "http://127.0.0.1:4437/v1/stream/events",
///     ReadOptions::new().live(LiveMode::Off),
/// )
/// .await?;
/// let events: Vec<serde_json::Value> = resp.json().await?;
/// println!("{} events, resume from {}", events.len(), resp.offset());
/// # Ok(()) }
/// ```
pub async fn stream(url: impl Into<String>, options: ReadOptions) -> Result<StreamResponse> {
    let mut builder = DurableStream::builder(url);
    if let Some(c) = &options.client {
        builder = builder.client(c.clone());
    }
    builder.build()?.stream(options).await
}

impl DurableStream {
    /// Reads this stream: sends the first (catch-up) request and returns the response.
    ///
    /// The handle's headers and parameters apply, with the read's own over them. Offsets are
    /// sent URL-encoded; the server's cursor is echoed on every live request. The read ends
    /// when the stream is closed, in every live mode.
    ///
    /// ```no_run
    /// # async fn demo() -> durable_streams_client::Result<()> {
    /// use durable_streams_client::{DurableStream, LiveMode, Offset, ReadOptions};
    /// let stream = DurableStream::new("http://127.0.0.1:4437/v1/stream/events")?;
    /// let saved = Offset::beginning(); // or an offset stored by an earlier run
    /// let resp = stream.stream(ReadOptions::new().offset(saved).live(LiveMode::LongPoll)).await?;
    /// let mut batches = resp.json_batches::<serde_json::Value>()?;
    /// while let Some(batch) = batches.next_batch().await? {
    ///     for item in &batch.data {
    ///         println!("{item}");
    ///     }
    ///     // store batch.offset: a later read resumes from there.
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream(&self, options: ReadOptions) -> Result<StreamResponse> {
        options.retry.validate()?;
        options.sse.validate()?;
        let max_chunk_bytes = byte_limit(
            "max_chunk_bytes (maxChunkBytes)",
            options.max_chunk_bytes,
            DEFAULT_MAX_CHUNK_BYTES,
        )?;
        let max_read_bytes = byte_limit(
            "max_read_bytes (maxReadBytes)",
            options.max_read_bytes,
            DEFAULT_MAX_READ_BYTES,
        )?;
        let client = match &options.client {
            Some(c) => c.clone(),
            None => self.inner.client.clone(),
        };
        let cfg = Config {
            http: client.http().clone(),
            request_timeout: client.request_timeout(),
            long_poll_timeout: client.long_poll_timeout(),
            url: self.inner.url.clone(),
            display: self.inner.display.clone(),
            extras: self.inner.extras.merged(&options.extras),
            retry: options.retry,
            on_error: options.on_error,
            sse: options.sse,
            live: options.live,
            json: options.json,
            max_chunk_bytes,
        };
        let (cancel, cancelled) = watch::channel(false);
        let engine = Engine::start(cfg, options.offset.clone(), cancelled).await?;
        let content_type = engine.content_type().map(str::to_owned);
        let head = engine.first_head();
        self.set_content_type(content_type.as_deref());
        Ok(StreamResponse {
            shared: Arc::new(Shared {
                position: Mutex::new(Positions {
                    handed: Position {
                        offset: options.offset.clone(),
                        cursor: None,
                        up_to_date: false,
                        stream_closed: false,
                    },
                    held: None,
                }),
                cancel,
            }),
            engine: Mutex::new(Some(engine)),
            url: self.inner.url.clone(),
            head,
            content_type,
            live: options.live,
            start_offset: options.offset,
            json: options.json,
            max_chunk_bytes,
            max_read_bytes,
        })
    }
}

/// The first response of a read as it arrived, before its body is handed to a consumer: what
/// a caller can look at right after [`DurableStream::stream`] returns.
///
/// Its `offset` is where the first response's data ends; [`StreamResponse::offset`] stays at
/// the start until that data is consumed (the point that is safe to resume from).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseHead {
    /// The HTTP status.
    pub status: u16,
    /// The status's standard reason phrase (`"OK"`), empty for a status without one.
    pub status_text: String,
    /// The response headers in order, names lower-case, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// `Stream-Next-Offset`: the offset after this response's data.
    pub offset: Option<Offset>,
    /// `Stream-Cursor`.
    pub cursor: Option<String>,
    /// `Stream-Up-To-Date`.
    pub up_to_date: bool,
    /// `Stream-Closed`.
    pub stream_closed: bool,
}

/// A byte limit option: `default` when unset; zero is refused, naming the option.
fn byte_limit(option: &str, value: Option<usize>, default: usize) -> Result<usize> {
    match value {
        None => Ok(default),
        Some(0) => Err(Error::invalid(format!(
            "{option} must be at least 1 byte, got 0"
        ))),
        Some(n) => Ok(n),
    }
}

/// A byte count given as a plain number (as Node and configuration files carry numbers): a
/// whole number from 0 up, else an invalid-argument error naming `option` and the value as
/// JavaScript writes it. Numbers past 2^53 are taken too (every one of them is whole, and
/// none is a limit memory could reach), `Infinity` and any past `usize` as the largest. Zero
/// passes here; the read refuses it with its own error.
///
/// ```
/// use durable_streams_client::byte_count;
/// assert_eq!(byte_count("max_read_bytes (maxReadBytes)", 4096.0).unwrap(), 4096);
/// assert_eq!(byte_count("max_read_bytes (maxReadBytes)", f64::INFINITY).unwrap(), usize::MAX);
/// assert!(byte_count("max_read_bytes (maxReadBytes)", -1.0).unwrap_err().to_string().contains("max_read_bytes"));
/// ```
pub fn byte_count(option: &str, value: f64) -> Result<usize> {
    if value >= 0.0 && (value.fract() == 0.0 || value.is_infinite()) {
        // `as` saturates: infinity and anything past u64 become u64::MAX.
        Ok(usize::try_from(value as u64).unwrap_or(usize::MAX))
    } else {
        let shown = if value.is_nan() {
            "NaN".to_owned()
        } else if value.is_infinite() {
            "-Infinity".to_owned()
        } else {
            value.to_string()
        };
        Err(Error::invalid(format!(
            "{option} must be a whole number of bytes, at least 1, got {shown}"
        )))
    }
}

#[derive(Debug, Clone)]
struct Position {
    offset: Offset,
    cursor: Option<String>,
    up_to_date: bool,
    stream_closed: bool,
}

/// The position the accessors show, and with [`StreamResponse::hold_position`] the one the
/// consumers have reached since.
#[derive(Debug)]
struct Positions {
    handed: Position,
    held: Option<Position>,
}

struct Shared {
    position: Mutex<Positions>,
    cancel: watch::Sender<bool>,
}

impl Shared {
    fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    fn position(&self) -> Option<Position> {
        self.position.lock().ok().map(|p| p.handed.clone())
    }

    fn advance<D>(&self, batch: &Batch<D>) {
        if let Ok(mut p) = self.position.lock() {
            let reached = Position {
                offset: batch.offset.clone(),
                cursor: batch.cursor.clone(),
                up_to_date: batch.up_to_date,
                stream_closed: batch.stream_closed,
            };
            match &mut p.held {
                Some(held) => *held = reached,
                None => p.handed = reached,
            }
        }
    }

    fn hold(&self) {
        if let Ok(mut p) = self.position.lock() {
            if p.held.is_none() {
                p.held = Some(p.handed.clone());
            }
        }
    }

    fn release(&self) {
        if let Ok(mut p) = self.position.lock() {
            if let Some(held) = &p.held {
                p.handed = held.clone();
            }
        }
    }
}

/// A read in progress: its metadata, and its data to consume exactly once.
///
/// The position accessors ([`offset`](Self::offset), [`cursor`](Self::cursor),
/// [`up_to_date`](Self::up_to_date), [`stream_closed`](Self::stream_closed)) describe the point
/// after the data already handed to the consumer, so `offset()` is always safe to resume from
/// (a binding that passes the data on holds them back until its own caller has it:
/// [`hold_position`](Self::hold_position)).
///
/// Only one consumer method may be used; a second one fails with [`Error::AlreadyConsumed`].
/// The accumulating ones (`bytes`, `text`, `json`) return at the first up-to-date point even
/// in a live mode; the others follow the live mode until the stream is closed, the consumer
/// stops, or the read is cancelled. Dropping whatever owns the read (the response before it
/// is consumed, or the stream or [`Batches`] made from it) ends the HTTP request in flight;
/// [`cancel`](Self::cancel) does so from anywhere.
///
/// Data is handed on as it arrives: a response body in parts of at most about
/// [`ReadOptions::max_chunk_bytes`], JSON messages as soon as each is complete, so memory
/// does not grow with the response. Offsets to resume from exist only where a response (or,
/// with SSE, the data events before one control event) ends; batches that end inside a
/// response have [`Batch::checkpoint`] false and carry the last such offset. So do SSE data
/// events handed on before their control event (once about `max_chunk_bytes`, at most
/// 64 KiB, has gathered, or the connection pauses): a long run of data events streams with
/// bounded memory, and a reconnection from the last control event drops the data it repeats.
pub struct StreamResponse {
    shared: Arc<Shared>,
    engine: Mutex<Option<Engine>>,
    url: Url,
    head: Option<ResponseHead>,
    content_type: Option<String>,
    live: LiveMode,
    start_offset: Offset,
    json: bool,
    max_chunk_bytes: usize,
    max_read_bytes: usize,
}

impl fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamResponse")
            .field("content_type", &self.content_type)
            .field("live", &self.live)
            .field("start_offset", &self.start_offset)
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

/// One step of a read with the position after it: a response body or a part of one, or the
/// data of the SSE events before one control event.
///
/// `data` is [`Bytes`], a `String`, or a `Vec<T>` of JSON messages. When `checkpoint` is true,
/// storing `offset` once the data is processed makes a later read resume exactly after it,
/// with nothing lost and nothing repeated. A batch that ends inside a response, or SSE data
/// events handed on before their control event (`checkpoint` false), carries the offset where
/// that response (or those events) started instead: resuming from it loses nothing but repeats
/// the data handed on since. SSE batches hold whole data events, so JSON messages are never
/// cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<D> {
    /// The data (possibly empty when the batch only reports progress or closure).
    pub data: D,
    /// The offset to resume from after this batch (see `checkpoint`).
    pub offset: Offset,
    /// The server's cursor, echoed by the client on live requests.
    pub cursor: Option<String>,
    /// Whether the reader had caught up with the stream at this point.
    pub up_to_date: bool,
    /// Whether the stream is closed and this batch holds its last data.
    pub stream_closed: bool,
    /// Whether the batch ends where a response (or an SSE control event) ends, so that
    /// `offset` resumes exactly after it. False for a part of a response still arriving, or
    /// SSE data events whose control event has not come yet: `up_to_date` and `stream_closed`
    /// are then false too, and `offset` is the last checkpoint's.
    pub checkpoint: bool,
}

type DecodeFn<D> = Box<dyn FnMut(Vec<Bytes>, Framing, bool) -> Result<D> + Send + Sync + 'static>;

/// A pull-based reader of [`Batch`]es: call [`next_batch`](Self::next_batch) until it returns
/// `None`, or turn it into a `Stream` with [`into_stream`](Self::into_stream).
///
/// Batches are only produced when they carry data or change the position, so idle keep-alive
/// answers of the server do not show up. After an error, or once the read is over or
/// cancelled, `next_batch` returns `Ok(None)`.
pub struct Batches<D> {
    engine: Option<Engine>,
    decode: DecodeFn<D>,
    shared: Arc<Shared>,
    /// Response bytes handed on so far.
    raw_bytes: usize,
}

impl<D> fmt::Debug for Batches<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches")
            .field("finished", &self.engine.is_none())
            .finish_non_exhaustive()
    }
}

impl<D: Send + 'static> Batches<D> {
    /// The next batch, or `None` when the read is over (stream closed, caught up in
    /// [`LiveMode::Off`], or cancelled).
    pub async fn next_batch(&mut self) -> Result<Option<Batch<D>>> {
        match self.next_inner().await {
            Err(Error::Cancelled) if self.shared.is_cancelled() => Ok(None),
            other => other,
        }
    }

    /// Like `next_batch`, but a cancellation is reported as [`Error::Cancelled`].
    async fn next_inner(&mut self) -> Result<Option<Batch<D>>> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(None);
        };
        let chunk = match engine.next_chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                self.engine = None;
                return Ok(None);
            }
            Err(e) => {
                self.engine = None;
                return Err(e);
            }
        };
        let Chunk {
            segments,
            offset,
            cursor,
            up_to_date,
            stream_closed,
            framing,
        } = chunk;
        let size = segments.iter().map(Bytes::len).sum::<usize>();
        self.raw_bytes = self.raw_bytes.saturating_add(size);
        let data = match (self.decode)(segments, framing, stream_closed) {
            Ok(d) => d,
            Err(e) => {
                self.engine = None;
                return Err(e);
            }
        };
        let batch = Batch {
            data,
            offset,
            cursor,
            up_to_date,
            stream_closed,
            checkpoint: framing.checkpoint,
        };
        self.shared.advance(&batch);
        Ok(Some(batch))
    }

    /// Stops the read: the request in flight is abandoned and `next_batch` returns `None`.
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// The batches as a `Stream`; it ends after the first error.
    pub fn into_stream(self) -> BoxStream<'static, Result<Batch<D>>> {
        stream::unfold(self, |mut batches| async move {
            match batches.next_batch().await {
                Ok(Some(b)) => Some((Ok(b), batches)),
                Ok(None) => None,
                Err(e) => Some((Err(e), batches)),
            }
        })
        .boxed()
    }
}

impl StreamResponse {
    /// The stream URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The stream's content type, from the first response.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Whether the JSON consumers apply: the content type is JSON or [`ReadOptions::json`]
    /// forced it.
    pub fn is_json(&self) -> bool {
        self.json
            || self
                .content_type
                .as_deref()
                .is_some_and(is_json_content_type)
    }

    /// The live mode this read was started with.
    pub fn live(&self) -> LiveMode {
        self.live
    }

    /// The offset the read started from.
    pub fn start_offset(&self) -> &Offset {
        &self.start_offset
    }

    /// The first response's status, headers and position (before its data is consumed).
    pub fn first_response(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// The offset after the data handed to the consumer so far (the start offset before any).
    pub fn offset(&self) -> Offset {
        self.shared
            .position()
            .map(|p| p.offset)
            .unwrap_or_else(|| self.start_offset.clone())
    }

    /// The last cursor the server sent, as of the data handed to the consumer.
    pub fn cursor(&self) -> Option<String> {
        self.shared.position().and_then(|p| p.cursor)
    }

    /// Whether the consumer has caught up with the stream.
    pub fn up_to_date(&self) -> bool {
        self.shared.position().is_some_and(|p| p.up_to_date)
    }

    /// Whether the consumer has received the last data of a closed stream.
    pub fn stream_closed(&self) -> bool {
        self.shared.position().is_some_and(|p| p.stream_closed)
    }

    /// Stops the read from anywhere: the request in flight is abandoned, streams and batch
    /// readers end, and accumulating consumers fail with [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Keeps the position accessors ([`offset`](Self::offset) and the others) where they are
    /// from now on, until [`release_position`](Self::release_position) moves them; the
    /// consumers read on as before.
    ///
    /// For a binding that hands the data on to a caller who may stop waiting after the data
    /// was read and before it arrived (an asyncio task cancelled just then): the binding
    /// releases the position once the caller holds the data, so `offset()` never passes data
    /// that nobody received, and stays safe to resume from. Once is enough; calling it again
    /// changes nothing.
    ///
    /// ```no_run
    /// # async fn demo() -> durable_streams_client::Result<()> {
    /// use durable_streams_client::{stream, LiveMode, ReadOptions};
    /// let resp = stream(
    ///     "http://127.0.0.1:4437/v1/stream/events",
    ///     ReadOptions::new().live(LiveMode::Off),
    /// )
    /// .await?;
    /// resp.hold_position();
    /// let data = resp.bytes().await?;
    /// assert_eq!(resp.offset(), *resp.start_offset()); // not released yet
    /// // ... hand `data` to its consumer, then:
    /// resp.release_position();
    /// # let _ = data;
    /// # Ok(()) }
    /// ```
    pub fn hold_position(&self) {
        self.shared.hold();
    }

    /// Moves the position accessors past all the data the consumers have returned so far
    /// (see [`hold_position`](Self::hold_position); without it they move by themselves and
    /// this does nothing).
    pub fn release_position(&self) {
        self.shared.release();
    }

    fn take(&self, stop_at_up_to_date: bool) -> Result<Engine> {
        let mut engine = self
            .engine
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or(Error::AlreadyConsumed)?;
        if stop_at_up_to_date {
            engine.stop_at_up_to_date();
        }
        Ok(engine)
    }

    fn check_json(&self) -> Result<()> {
        if self.is_json() {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "JSON consumers need an application/json stream, this one is {}; set ReadOptions::json to force JSON parsing",
            self.content_type
                .as_deref()
                .map_or_else(|| "of unknown type".to_owned(), |ct| crate::http::escape_server_text(ct, 120))
        )))
    }

    fn batches<D>(&self, stop_at_up_to_date: bool, decode: DecodeFn<D>) -> Result<Batches<D>> {
        Ok(Batches {
            engine: Some(self.take(stop_at_up_to_date)?),
            decode,
            shared: self.shared.clone(),
            raw_bytes: 0,
        })
    }

    fn check_read_size<D>(&self, batches: &Batches<D>) -> Result<()> {
        if batches.raw_bytes <= self.max_read_bytes {
            return Ok(());
        }
        Err(Error::parse(
            "read",
            format!(
                "the data up to the first up-to-date point is larger than max_read_bytes ({} bytes); raise the read option max_read_bytes, or consume the read incrementally (a stream or batches)",
                self.max_read_bytes
            ),
        ))
    }

    /// Reads up to the first up-to-date point, within `max_read_bytes`, handing each batch's
    /// data to `take`: what [`bytes`](Self::bytes), [`json`](Self::json) and
    /// [`json_arrays`](Self::json_arrays) collect.
    async fn collect<D: Send + 'static>(
        &self,
        decode: DecodeFn<D>,
        mut take: impl FnMut(D),
    ) -> Result<()> {
        self.collect_until(decode, |data| {
            take(data);
            ControlFlow::Continue(())
        })
        .await
    }

    /// [`collect`](Self::collect), whose `take` may stop the read early (`Break`).
    async fn collect_until<D: Send + 'static>(
        &self,
        decode: DecodeFn<D>,
        mut take: impl FnMut(D) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut batches = self.batches(true, decode)?;
        while let Some(b) = batches.next_inner().await? {
            self.check_read_size(&batches)?;
            if take(b.data).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The JSON decoder of a read: messages as soon as each is complete.
    fn json_decoder<T: DeserializeOwned + Send + 'static>(&self) -> DecodeFn<Vec<T>> {
        self.array_decoder(|_| Parsed(Vec::new()), |items| Ok(items.0))
    }

    /// A decoder that feeds the pieces of JSON arrays to a fresh sink per batch.
    fn array_decoder<S: Elements + 'static, D: 'static>(
        &self,
        new: impl Fn(&[Bytes]) -> S + Send + Sync + 'static,
        finish: fn(S) -> Result<D>,
    ) -> DecodeFn<D> {
        let mut splitter = JsonSplitter::new(self.max_chunk_bytes);
        Box::new(move |segments: Vec<Bytes>, framing: Framing, _| {
            let mut sink = new(&segments);
            for s in &segments {
                splitter.feed_into(s, &mut sink)?;
                if framing.whole_pieces {
                    splitter.end()?;
                }
            }
            if framing.checkpoint && !framing.whole_pieces {
                splitter.end()?;
            }
            finish(sink)
        })
    }

    /// The decoder of [`json_array_batches`](Self::json_array_batches).
    fn json_array_decoder(&self) -> DecodeFn<Vec<String>> {
        self.array_decoder(
            |segments| ArrayTexts::with_capacity(segments.iter().map(Bytes::len).sum()),
            ArrayTexts::finish,
        )
    }

    /// The decoder of [`json_picked_array_batches`](Self::json_picked_array_batches), once the
    /// stream is known to be JSON and the pick to name a member.
    fn json_picked_decoder(&self, pick: JsonPick) -> Result<DecodeFn<Vec<String>>> {
        self.check_json()?;
        pick.validate()?;
        let pick = Arc::new(pick);
        Ok(self.array_decoder(
            move |segments| {
                PickedTexts::new(
                    Arc::clone(&pick),
                    segments.iter().map(Bytes::len).sum::<usize>() / 4,
                )
            },
            PickedTexts::finish,
        ))
    }

    /// All bytes up to the first up-to-date point (or the end of a closed stream), within
    /// `max_read_bytes` (past it an [`Error::Parse`] naming the option).
    ///
    /// Each piece is appended to one buffer as it arrives and then dropped, so the read holds
    /// about the data once (not its pieces and their join together), and each byte is copied
    /// once; data that arrives as one piece is returned as it is, without a copy.
    pub async fn bytes(&self) -> Result<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        self.collect(Box::new(|s, _, _| Ok(s)), |pieces: Vec<Bytes>| {
            for data in pieces.into_iter().filter(|p| !p.is_empty()) {
                if let Some(f) = first.take() {
                    joined.reserve(f.len().saturating_add(data.len()));
                    joined.extend_from_slice(&f);
                    joined.extend_from_slice(&data);
                } else if joined.is_empty() {
                    first = Some(data);
                } else {
                    joined.extend_from_slice(&data);
                }
            }
        })
        .await?;
        Ok(first.unwrap_or_else(|| joined.freeze()))
    }

    /// All text up to the first up-to-date point; invalid UTF-8 is an [`Error::Parse`].
    pub async fn text(&self) -> Result<String> {
        let bytes = self.bytes().await?;
        // `Vec::from` takes the buffer over without a copy when nothing else holds it.
        String::from_utf8(Vec::from(bytes))
            .map_err(|e| Error::parse("text", format!("invalid UTF-8: {}", e.utf8_error())))
    }

    /// All JSON messages up to the first up-to-date point, each deserialized as `T`.
    ///
    /// Fails with [`Error::InvalidArgument`] on a stream that is not JSON (unless
    /// [`ReadOptions::json`] is set) and with [`Error::Parse`] on malformed JSON.
    pub async fn json<T: DeserializeOwned + Send + 'static>(&self) -> Result<Vec<T>> {
        self.check_json()?;
        let mut items = Vec::new();
        self.collect(self.json_decoder::<T>(), |mut data| items.append(&mut data))
            .await?;
        Ok(items)
    }

    /// All JSON messages up to the first up-to-date point, unchanged, as the texts of JSON
    /// arrays (`[m1,m2,...]`, each at most 16 MiB unless one message is larger): for callers
    /// that parse a whole array at once in another language. Every message is checked (JSON
    /// syntax, UTF-8) as in [`json`](Self::json), but not converted.
    pub async fn json_arrays(&self) -> Result<Vec<String>> {
        self.check_json()?;
        let mut texts = Vec::new();
        self.collect(self.json_array_decoder(), |mut data| {
            texts.append(&mut data)
        })
        .await?;
        Ok(texts)
    }

    /// What [`json_arrays`](Self::json_arrays) reads, handed to `take` batch by batch as the
    /// read goes on (texts in order, none held once handed over) instead of all at the end: a
    /// binding builds its values meanwhile, never holding the texts of the whole read. `take`
    /// returning `Break` ends the read there (and this returns `Ok`).
    pub async fn json_arrays_each(
        &self,
        take: impl FnMut(Vec<String>) -> ControlFlow<()>,
    ) -> Result<()> {
        self.check_json()?;
        self.collect_until(self.json_array_decoder(), take).await
    }

    /// Batches of JSON messages as array texts (see [`json_arrays`](Self::json_arrays)); a
    /// batch without messages has no texts. Same checks as [`json`](Self::json).
    pub fn json_array_batches(&self) -> Result<Batches<Vec<String>>> {
        self.check_json()?;
        self.batches(false, self.json_array_decoder())
    }

    /// Like [`json_arrays`](Self::json_arrays), with only what `pick` keeps of each message:
    /// for bindings whose consumer asked for some members of each message, so that only those
    /// values are built in their language. Every message is still checked whole. Fails with
    /// [`Error::InvalidArgument`] on a pick that names no member.
    pub async fn json_picked_arrays(&self, pick: JsonPick) -> Result<Vec<String>> {
        let decoder = self.json_picked_decoder(pick)?;
        // The small texts of the batches joined into few large ones: one string and one parse
        // in the binding's language instead of one per batch.
        let mut texts = Vec::new();
        self.collect(decoder, |data| {
            for text in data {
                decode::join_array_text(&mut texts, text);
            }
        })
        .await?;
        Ok(texts)
    }

    /// What [`json_picked_arrays`](Self::json_picked_arrays) reads, handed to `take` batch by
    /// batch as [`json_arrays_each`](Self::json_arrays_each) does.
    pub async fn json_picked_arrays_each(
        &self,
        pick: JsonPick,
        take: impl FnMut(Vec<String>) -> ControlFlow<()>,
    ) -> Result<()> {
        let decoder = self.json_picked_decoder(pick)?;
        self.collect_until(decoder, take).await
    }

    /// Batches of what `pick` keeps of each JSON message, as array texts (see
    /// [`json_picked_arrays`](Self::json_picked_arrays)).
    pub fn json_picked_array_batches(&self, pick: JsonPick) -> Result<Batches<Vec<String>>> {
        self.batches(false, self.json_picked_decoder(pick)?)
    }

    /// Batches of raw bytes.
    pub fn byte_batches(&self) -> Result<Batches<Bytes>> {
        self.batches(false, Box::new(|s, _, _| Ok(concat(s))))
    }

    /// Batches of text. A UTF-8 character split between two batches is delivered whole with the
    /// second one; invalid UTF-8 is an [`Error::Parse`]. A batch's offset counts bytes the
    /// server stored, so resuming from the offset of a batch that ended inside a character
    /// starts in its middle: checkpoint text streams only where writers append whole text.
    pub fn text_batches(&self) -> Result<Batches<String>> {
        let mut decoder = Utf8Decoder::default();
        self.batches(
            false,
            Box::new(move |segments, _, closed| {
                let mut text = String::new();
                for s in &segments {
                    text.push_str(&decoder.decode(s)?);
                }
                if closed {
                    decoder.finish()?;
                }
                Ok(text)
            }),
        )
    }

    /// Batches of JSON messages, each deserialized as `T`. Same checks as
    /// [`json`](Self::json).
    pub fn json_batches<T: DeserializeOwned + Send + 'static>(&self) -> Result<Batches<Vec<T>>> {
        self.check_json()?;
        self.batches(false, self.json_decoder::<T>())
    }

    /// The data as a `Stream` of byte chunks (empty chunks are skipped).
    pub fn byte_stream(&self) -> Result<BoxStream<'static, Result<Bytes>>> {
        Ok(self
            .byte_batches()?
            .into_stream()
            .try_filter_map(|b| async move { Ok((!b.data.is_empty()).then_some(b.data)) })
            .boxed())
    }

    /// The data as a `Stream` of text chunks (empty chunks are skipped).
    pub fn text_stream(&self) -> Result<BoxStream<'static, Result<String>>> {
        Ok(self
            .text_batches()?
            .into_stream()
            .try_filter_map(|b| async move { Ok((!b.data.is_empty()).then_some(b.data)) })
            .boxed())
    }

    /// The JSON messages one by one as a `Stream`.
    pub fn json_stream<T: DeserializeOwned + Send + 'static>(
        &self,
    ) -> Result<BoxStream<'static, Result<T>>> {
        Ok(self
            .json_batches::<T>()?
            .into_stream()
            .map_ok(|b| stream::iter(b.data.into_iter().map(Ok)))
            .try_flatten()
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn readers_can_move_between_threads() {
        // Bindings keep responses and readers behind Arcs and move them across threads.
        send_sync::<StreamResponse>();
        send_sync::<Batches<Bytes>>();
        send_sync::<Batches<String>>();
        send_sync::<Batches<Vec<serde_json::Value>>>();
        send_sync::<ReadOptions>();
        send_sync::<ErrorHook>();
    }

    #[test]
    fn live_modes_and_resilience_defaults() {
        assert_eq!(LiveMode::default(), LiveMode::Auto);
        assert_eq!(LiveMode::LongPoll.to_string(), "long-poll");
        let d = SseResilience::default();
        assert_eq!(d.min_connection_duration, Duration::from_secs(1));
        assert_eq!(d.max_short_connections, 3);
        assert_eq!(d.backoff_base_delay, Duration::from_millis(100));
        assert_eq!(d.backoff_max_delay, Duration::from_secs(5));
        assert!(d.validate().is_ok());
        let o = ReadOptions::new();
        assert_eq!(o.offset, Offset::beginning());
        assert_eq!(o.retry, RetryPolicy::default());
    }
}

/// Entry points for the cargo-fuzz targets in `core/fuzz`: the parsers that read what a server
/// sends. Only built with the `fuzzing` feature; not part of the supported API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::VecDeque;

    use super::{decode, engine, sse};

    /// Parses an SSE body fed in the given pieces; returns the events as `(type, data)`.
    pub fn sse_events(pieces: &[&[u8]]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut parser =
            sse::SseParser::new(super::DEFAULT_MAX_CHUNK_BYTES * sse::EVENT_LIMIT_FACTOR);
        let mut out = VecDeque::new();
        for p in pieces {
            parser.feed(p, &mut out).map_err(|e| e.to_string())?;
        }
        Ok(out
            .into_iter()
            .map(|e| (e.event, e.data.to_vec()))
            .collect())
    }

    /// Parses a control event: `(offset, cursor, up_to_date, stream_closed)`.
    pub fn control_event(data: &[u8]) -> Result<(String, Option<String>, bool, bool), String> {
        sse::parse_control(data)
            .map(|c| {
                (
                    c.next_offset.as_str().to_owned(),
                    c.cursor,
                    c.up_to_date,
                    c.stream_closed,
                )
            })
            .map_err(|e| e.to_string())
    }

    /// Decodes a base64 data event.
    pub fn base64_data(data: &[u8]) -> Result<Vec<u8>, String> {
        sse::decode_base64_data(data)
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }

    /// Reads the protocol headers (and `Retry-After`) of a response built from raw pairs;
    /// pairs that are not valid HTTP headers are skipped. Returns a description.
    pub fn response_headers(pairs: &[(&[u8], &[u8])]) -> String {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(n, v);
            }
        }
        let meta = engine::parse_meta(&map);
        let retry_after =
            crate::http::header_str(&map, "retry-after").and_then(crate::retry::parse_retry_after);
        format!("{meta:?} {retry_after:?}")
    }

    /// Parses a body as a JSON array of messages and decodes it as text in two pieces cut at
    /// `cut`; returns the number of messages and the text.
    pub fn json_and_text(
        body: &[u8],
        cut: usize,
    ) -> (Result<usize, String>, Result<String, String>) {
        let items = decode::json_items::<serde_json::Value>(&[bytes::Bytes::copy_from_slice(body)])
            .map(|v| v.len())
            .map_err(|e| e.to_string());
        let cut = cut.min(body.len());
        let mut d = decode::Utf8Decoder::default();
        let text = (|| {
            let mut t = d.decode(&body[..cut])?;
            t += &d.decode(&body[cut..])?;
            d.finish()?;
            Ok::<_, crate::Error>(t)
        })()
        .map_err(|e| e.to_string());
        (items, text)
    }
}
