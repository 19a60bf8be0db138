//! The read side: `ReadOptions`, and `StreamResponse` with its pull methods and accumulators.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use durable_streams_client as core;
use durable_streams_client::{Batch, Batches, LiveMode as CoreLiveMode, RetryPolicy};
use serde_json::value::RawValue;

use crate::callbacks::{extras_with, read_hook, HeaderValue, ReadErrorHandler};
use crate::error::DurableStreamError;
use crate::runtime;
use crate::values::RetryOptions;

/// How a read continues once it has caught up with the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LiveMode {
    /// Stop at the tail.
    Off,
    /// Wait for new data with long-poll requests.
    LongPoll,
    /// Wait for new data on a server-sent-events connection.
    Sse,
    /// SSE where the content type allows it, long-poll otherwise.
    Auto,
}

impl From<LiveMode> for CoreLiveMode {
    fn from(m: LiveMode) -> Self {
        match m {
            LiveMode::Off => Self::Off,
            LiveMode::LongPoll => Self::LongPoll,
            LiveMode::Sse => Self::Sse,
            LiveMode::Auto => Self::Auto,
        }
    }
}

/// Where and how to read.
#[derive(Clone, uniffi::Record)]
pub struct ReadOptions {
    /// Where to start: an offset from an earlier read, `"-1"` (the beginning) or `"now"`.
    #[uniffi(default = "-1")]
    pub offset: String,
    /// What to do at the tail (`Auto` when absent).
    #[uniffi(default = None)]
    pub live: Option<LiveMode>,
    /// Parse the body as JSON even if the content type is not `application/json`.
    #[uniffi(default = false)]
    pub json: bool,
    /// Headers for the requests of this read.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Headers computed for every request of this read.
    #[uniffi(default)]
    pub computed_headers: HashMap<String, Arc<dyn HeaderValue>>,
    /// Query parameters for the requests of this read.
    #[uniffi(default)]
    pub params: HashMap<String, String>,
    /// Retries of failed requests (the core's default when absent: unlimited, with backoff).
    #[uniffi(default = None)]
    pub retry: Option<RetryOptions>,
    /// Consulted after every failed attempt of a request of the read: retry it with new headers
    /// (a refreshed token, say), or leave it to the retry policy.
    #[uniffi(default = None)]
    pub on_error: Option<Arc<dyn ReadErrorHandler>>,
    /// The most response data gathered before it is handed on (the core's default, 8 MiB,
    /// when absent): a batch carries at most about this much, and a single JSON message larger
    /// than this fails the read with an error naming `max_chunk_bytes`.
    #[uniffi(default = None)]
    pub max_chunk_bytes: Option<u64>,
    /// The most data `bytes`, `text` and `json` collect (the core's default, 256 MiB, when
    /// absent); past it they fail with an error naming `max_read_bytes`. The batch-by-batch
    /// forms ignore it.
    #[uniffi(default = None)]
    pub max_read_bytes: Option<u64>,
}

/// A byte limit: unset stays unset (the core's default); the core checks a value.
fn byte_limit(value: Option<u64>) -> Option<usize> {
    value.map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

impl ReadOptions {
    pub(crate) fn into_core(self) -> Result<core::ReadOptions, DurableStreamError> {
        let mut o = core::ReadOptions::new().offset(self.offset).json(self.json);
        // Unset: the core's default mode.
        if let Some(live) = self.live {
            o = o.live(live.into());
        }
        o.extras = extras_with(self.headers, self.computed_headers, self.params);
        if let Some(r) = self.retry {
            o = o.retry(RetryPolicy::try_from(r)?);
        }
        if let Some(handler) = self.on_error {
            o = read_hook(o, handler);
        }
        o.max_chunk_bytes = byte_limit(self.max_chunk_bytes);
        o.max_read_bytes = byte_limit(self.max_read_bytes);
        Ok(o)
    }
}

/// Where a batch leaves the reader: the offset to resume from and the stream's state.
#[derive(Debug, Clone, uniffi::Record)]
pub struct BatchPosition {
    /// The offset after this batch: resume here.
    pub offset: String,
    /// The cursor the server sent, if any.
    pub cursor: Option<String>,
    /// Whether the reader has reached the tail.
    pub up_to_date: bool,
    /// Whether the stream is closed and fully read.
    pub stream_closed: bool,
    /// Whether the batch ends where a response (or an SSE control event) ends, so that
    /// `offset` resumes exactly after it. False for a part of a response still arriving, or SSE
    /// data events whose control event has not come yet: `offset` is then the last
    /// checkpoint's (resuming there repeats data, never loses any).
    pub checkpoint: bool,
}

fn position<D>(b: &Batch<D>) -> BatchPosition {
    BatchPosition {
        offset: b.offset.as_str().to_owned(),
        cursor: b.cursor.clone(),
        up_to_date: b.up_to_date,
        stream_closed: b.stream_closed,
        checkpoint: b.checkpoint,
    }
}

/// The bytes one response (or SSE event group) delivered.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ByteBatch {
    /// The data (may be empty, e.g. when only the position changed).
    pub data: Vec<u8>,
    /// Where the reader is after it.
    pub position: BatchPosition,
}

/// The text one response delivered (UTF-8 decoded across batch boundaries).
#[derive(Debug, Clone, uniffi::Record)]
pub struct TextBatch {
    /// The text (may be empty).
    pub text: String,
    /// Where the reader is after it.
    pub position: BatchPosition,
}

/// The JSON messages one response delivered, each as its own JSON text.
#[derive(Debug, Clone, uniffi::Record)]
pub struct JsonBatch {
    /// The messages (may be empty).
    pub items: Vec<String>,
    /// Where the reader is after it.
    pub position: BatchPosition,
}

/// The JSON messages one response delivered, as the texts of JSON arrays (`[m1,m2,...]`): for
/// one parse per array with a JSON library, far cheaper than one parse per message text.
#[derive(Debug, Clone, uniffi::Record)]
pub struct JsonArrayBatch {
    /// The array texts (none when the batch has no messages); every message was checked.
    pub texts: Vec<String>,
    /// Where the reader is after it.
    pub position: BatchPosition,
}

/// What a JSON read keeps of each message, so that only that reaches your JSON library; every
/// message is still checked whole.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum JsonPick {
    /// The value of one top-level member of each message: `null` where a message has no such
    /// member or is not an object.
    Value {
        /// The member's name.
        name: String,
    },
    /// An object of these top-level members that each message has, in the message's order:
    /// `null` for a message that is not an object.
    Members {
        /// The members' names (at least one).
        names: Vec<String>,
    },
}

impl From<JsonPick> for core::JsonPick {
    fn from(p: JsonPick) -> Self {
        match p {
            JsonPick::Value { name } => core::JsonPick::Value(name),
            JsonPick::Members { names } => core::JsonPick::Members(names),
        }
    }
}

type JsonItems = Vec<Box<RawValue>>;

/// The reader a response was first pulled with; a response is consumed one way only.
enum Reader {
    Unstarted,
    Bytes(Box<Batches<Bytes>>),
    Text(Box<Batches<String>>),
    Json(Box<Batches<JsonItems>>),
    JsonArrays(Box<Batches<Vec<String>>>),
    JsonPicked(Box<Batches<Vec<String>>>),
    /// A pull is in progress, or a cancelled pull left the reader behind.
    Busy,
}

/// An open read of a stream: pull batches with `next_batch` / `next_text_batch` /
/// `next_json_batch` / `next_json_array_batch` until they return nothing, or take everything up
/// to the tail with `bytes` / `text` / `json` / `json_arrays`. Only one of these styles can be
/// used per response.
#[derive(uniffi::Object)]
pub struct StreamResponse {
    inner: Arc<core::StreamResponse>,
    reader: Mutex<Reader>,
}

impl std::fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResponse")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl StreamResponse {
    pub(crate) fn new(inner: core::StreamResponse) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(inner),
            reader: Mutex::new(Reader::Unstarted),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Reader>, DurableStreamError> {
        self.reader
            .lock()
            .map_err(|_| DurableStreamError::internal("reader lock poisoned"))
    }

    /// Takes the reader of one style out of its slot (starting it on first use).
    fn take<D>(
        &self,
        start: impl FnOnce(&core::StreamResponse) -> core::Result<Batches<D>>,
        unwrap: impl FnOnce(Reader) -> Result<Box<Batches<D>>, Reader>,
    ) -> Result<Box<Batches<D>>, DurableStreamError> {
        let mut slot = self.lock()?;
        match std::mem::replace(&mut *slot, Reader::Busy) {
            Reader::Unstarted => Ok(Box::new(start(&self.inner)?)),
            Reader::Busy => Err(busy()),
            other => match unwrap(other) {
                Ok(b) => Ok(b),
                Err(other) => {
                    *slot = other;
                    Err(core::Error::AlreadyConsumed.into())
                }
            },
        }
    }

    fn put(&self, reader: Reader) {
        if let Ok(mut slot) = self.reader.lock() {
            *slot = reader;
        }
    }
}

fn busy() -> DurableStreamError {
    DurableStreamError::InvalidState {
        reason: "another call is reading this response, or a cancelled call left it unusable"
            .into(),
        code: "ALREADY_CONSUMED".into(),
        status: None,
        details: crate::error::ErrorDetails::default(),
    }
}

/// Pulls one batch on the runtime. The reader comes back with the outcome unless the call was
/// cancelled, in which case it is dropped with the task.
async fn pull<D: Send + 'static>(
    mut batches: Box<Batches<D>>,
) -> Result<(core::Result<Option<Batch<D>>>, Box<Batches<D>>), DurableStreamError> {
    runtime::run(async move {
        let next = batches.next_batch().await;
        Ok::<_, core::Error>((next, batches))
    })
    .await
}

#[uniffi::export]
impl StreamResponse {
    /// The content type of the stream.
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type().map(str::to_owned)
    }

    /// Whether the body is read as JSON.
    pub fn is_json(&self) -> bool {
        self.inner.is_json()
    }

    /// The offset after the last batch delivered (the start offset before any).
    pub fn offset(&self) -> String {
        self.inner.offset().as_str().to_owned()
    }

    /// The last cursor the server sent.
    pub fn cursor(&self) -> Option<String> {
        self.inner.cursor()
    }

    /// Whether the last batch delivered reached the tail.
    pub fn up_to_date(&self) -> bool {
        self.inner.up_to_date()
    }

    /// Whether the stream is closed and everything was delivered.
    pub fn stream_closed(&self) -> bool {
        self.inner.stream_closed()
    }

    /// Stops the read: a pull in progress and every later one return nothing.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Keeps `offset`, `cursor`, `up_to_date` and `stream_closed` where they are from now on,
    /// until `release_position` moves them; the reads go on as before. For a caller that can
    /// lose a result after the call returned it (a Kotlin coroutine cancelled just as a batch
    /// arrives: the generated code drops the result): it holds the position right after the
    /// response is made and releases it once the data is in its hands, so `offset` never
    /// passes data nobody received. Calling it again changes nothing.
    pub fn hold_position(&self) {
        self.inner.hold_position();
    }

    /// Moves the position past all the data returned so far (see `hold_position`; without
    /// it the position moves by itself and this does nothing).
    pub fn release_position(&self) {
        self.inner.release_position();
    }

    /// The next batch of bytes, or nothing once the read is over (at the tail when not live,
    /// at the end of a closed stream, or after `cancel`).
    pub async fn next_batch(&self) -> Result<Option<ByteBatch>, DurableStreamError> {
        let batches = self.take(
            |r| r.byte_batches(),
            |r| match r {
                Reader::Bytes(b) => Ok(b),
                o => Err(o),
            },
        )?;
        let (next, batches) = pull(batches).await?;
        self.put(Reader::Bytes(batches));
        Ok(next?.map(|mut b| ByteBatch {
            position: position(&b),
            // Taken over without a copy when nothing else holds the bytes.
            data: Vec::from(std::mem::take(&mut b.data)),
        }))
    }

    /// The next batch as text, or nothing once the read is over.
    pub async fn next_text_batch(&self) -> Result<Option<TextBatch>, DurableStreamError> {
        let batches = self.take(
            |r| r.text_batches(),
            |r| match r {
                Reader::Text(b) => Ok(b),
                o => Err(o),
            },
        )?;
        let (next, batches) = pull(batches).await?;
        self.put(Reader::Text(batches));
        Ok(next?.map(|b| TextBatch {
            position: position(&b),
            text: b.data,
        }))
    }

    /// The next batch of JSON messages, or nothing once the read is over.
    pub async fn next_json_batch(&self) -> Result<Option<JsonBatch>, DurableStreamError> {
        let batches = self.take(
            |r| r.json_batches::<Box<RawValue>>(),
            |r| match r {
                Reader::Json(b) => Ok(b),
                o => Err(o),
            },
        )?;
        let (next, batches) = pull(batches).await?;
        self.put(Reader::Json(batches));
        Ok(next?.map(|b| JsonBatch {
            position: position(&b),
            items: b.data.into_iter().map(|v| v.get().to_owned()).collect(),
        }))
    }

    /// The next batch of JSON messages as array texts (see [`JsonArrayBatch`]), or nothing
    /// once the read is over.
    pub async fn next_json_array_batch(
        &self,
    ) -> Result<Option<JsonArrayBatch>, DurableStreamError> {
        let batches = self.take(
            |r| r.json_array_batches(),
            |r| match r {
                Reader::JsonArrays(b) => Ok(b),
                o => Err(o),
            },
        )?;
        let (next, batches) = pull(batches).await?;
        self.put(Reader::JsonArrays(batches));
        Ok(next?.map(|b| JsonArrayBatch {
            position: position(&b),
            texts: b.data,
        }))
    }

    /// The next batch of what `pick` keeps of each JSON message, as array texts (see
    /// [`JsonArrayBatch`]), or nothing once the read is over. The pick of the first call holds
    /// for the whole read.
    pub async fn next_json_picked_array_batch(
        &self,
        pick: JsonPick,
    ) -> Result<Option<JsonArrayBatch>, DurableStreamError> {
        let batches = self.take(
            |r| r.json_picked_array_batches(pick.into()),
            |r| match r {
                Reader::JsonPicked(b) => Ok(b),
                o => Err(o),
            },
        )?;
        let (next, batches) = pull(batches).await?;
        self.put(Reader::JsonPicked(batches));
        Ok(next?.map(|b| JsonArrayBatch {
            position: position(&b),
            texts: b.data,
        }))
    }

    /// Everything up to the tail (or the end of a closed stream), as bytes.
    pub async fn bytes(&self) -> Result<Vec<u8>, DurableStreamError> {
        let r = Arc::clone(&self.inner);
        // `Vec::from` takes the buffer over without a copy when nothing else holds it.
        runtime::run(async move { r.bytes().await.map(Vec::from) }).await
    }

    /// Everything up to the tail, as text.
    pub async fn text(&self) -> Result<String, DurableStreamError> {
        let r = Arc::clone(&self.inner);
        runtime::run(async move { r.text().await }).await
    }

    /// Every JSON message up to the tail, each as its own JSON text.
    pub async fn json(&self) -> Result<Vec<String>, DurableStreamError> {
        let r = Arc::clone(&self.inner);
        runtime::run(async move {
            r.json::<Box<RawValue>>()
                .await
                .map(|items| items.into_iter().map(|v| v.get().to_owned()).collect())
        })
        .await
    }

    /// Every JSON message up to the tail, as the texts of JSON arrays (`[m1,m2,...]`, each at
    /// most 16 MiB unless one message is larger), every message checked: for one parse per
    /// array with a JSON library.
    pub async fn json_arrays(&self) -> Result<Vec<String>, DurableStreamError> {
        let r = Arc::clone(&self.inner);
        runtime::run(async move { r.json_arrays().await }).await
    }

    /// What `pick` keeps of every JSON message up to the tail, as the texts of JSON arrays (as
    /// few as fit in 16 MiB each); every message is checked whole.
    pub async fn json_picked_arrays(
        &self,
        pick: JsonPick,
    ) -> Result<Vec<String>, DurableStreamError> {
        let r = Arc::clone(&self.inner);
        runtime::run(async move { r.json_picked_arrays(pick.into()).await }).await
    }
}
