//! `IdempotentProducer`: batched, pipelined, exactly-once appends, and its receipts.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use durable_streams_client as core;
use durable_streams_client::RetryPolicy;

use crate::callbacks::{extras_with, producer_callback, HeaderValue, ProducerErrorHandler};
use crate::error::DurableStreamError;
use crate::runtime;
use crate::stream::DurableStream;
use crate::values::{offset_string, RetryOptions};

/// How a producer batches, pipelines and retries. The defaults are the core's.
#[derive(Clone, uniffi::Record)]
pub struct ProducerOptions {
    /// The epoch to start with; every session of a producer id needs a higher one.
    #[uniffi(default = 0)]
    pub epoch: u64,
    /// On a stale epoch, take the server's epoch plus one and resend instead of failing.
    #[uniffi(default = false)]
    pub auto_claim: bool,
    /// How long a batch stays open for more messages, in milliseconds.
    #[uniffi(default = 5)]
    pub linger_ms: u64,
    /// The body size at which a batch is closed.
    #[uniffi(default = 1048576)]
    pub max_batch_bytes: u64,
    /// The message count at which a batch is closed (no limit when absent).
    #[uniffi(default = None)]
    pub max_batch_messages: Option<u64>,
    /// How many batches may be in flight at once.
    #[uniffi(default = 5)]
    pub max_in_flight: u32,
    /// How many message bytes may wait in the producer.
    #[uniffi(default = 33554432)]
    pub max_buffered_bytes: u64,
    /// How long `append` waits for room, in milliseconds.
    #[uniffi(default = 60000)]
    pub buffer_timeout_ms: u64,
    /// How long a batch may take, retries included, in milliseconds.
    #[uniffi(default = 120000)]
    pub delivery_timeout_ms: u64,
    /// Whether each message of a JSON stream is checked to be one JSON value.
    #[uniffi(default = true)]
    pub validate_json: bool,
    /// The backoff between retries (the core's producer default when absent).
    #[uniffi(default = None)]
    pub retry: Option<RetryOptions>,
    /// Headers for every request of this producer.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Headers computed for every request of this producer.
    #[uniffi(default)]
    pub computed_headers: HashMap<String, Arc<dyn HeaderValue>>,
    /// Told about every batch that failed for good (on a background thread).
    #[uniffi(default = None)]
    pub on_error: Option<Arc<dyn ProducerErrorHandler>>,
}

fn size(name: &str, v: u64) -> Result<usize, DurableStreamError> {
    usize::try_from(v).map_err(|_| DurableStreamError::invalid(format!("{name} is too large")))
}

impl ProducerOptions {
    fn builder(
        self,
        stream: &core::DurableStream,
        producer_id: String,
    ) -> Result<core::IdempotentProducerBuilder, DurableStreamError> {
        let mut b = stream
            .producer(producer_id)
            .epoch(self.epoch)
            .auto_claim(self.auto_claim)
            .linger(Duration::from_millis(self.linger_ms))
            .max_batch_bytes(size("max_batch_bytes", self.max_batch_bytes)?)
            .max_in_flight(size("max_in_flight", u64::from(self.max_in_flight))?)
            .max_buffered_bytes(size("max_buffered_bytes", self.max_buffered_bytes)?)
            .buffer_timeout(Duration::from_millis(self.buffer_timeout_ms))
            .delivery_timeout(Duration::from_millis(self.delivery_timeout_ms))
            .validate_json(self.validate_json)
            .extras(extras_with(
                self.headers,
                self.computed_headers,
                HashMap::new(),
            ))
            .runtime(runtime::handle()?);
        if let Some(n) = self.max_batch_messages {
            b = b.max_batch_messages(size("max_batch_messages", n)?);
        }
        if let Some(r) = self.retry {
            b = b.retry(RetryPolicy::try_from(r)?);
        }
        if let Some(handler) = self.on_error {
            b = b.on_error(producer_callback(handler));
        }
        Ok(b)
    }
}

/// The outcome of one message.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Delivery {
    /// The tail offset after the batch holding the message (absent for a duplicate).
    pub offset: Option<String>,
    /// Whether the server had already stored the batch.
    pub duplicate: bool,
    /// The epoch the batch was stored under.
    pub epoch: u64,
    /// The batch's sequence number.
    pub seq: u64,
}

impl From<core::Delivery> for Delivery {
    fn from(d: core::Delivery) -> Self {
        Self {
            offset: offset_string(d.offset),
            duplicate: d.duplicate,
            epoch: d.epoch,
            seq: d.seq,
        }
    }
}

/// A snapshot of a producer's counters.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ProducerMetrics {
    /// Messages accepted by `append`.
    pub appended_messages: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Message bytes delivered.
    pub bytes: u64,
    /// Batches delivered.
    pub batches: u64,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Retried requests.
    pub retries: u64,
    /// Batches the server reported as duplicates.
    pub duplicates: u64,
    /// Batches that failed for good.
    pub failed_batches: u64,
    /// Messages in batches that failed for good.
    pub failed_messages: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Message bytes buffered now.
    pub buffered_bytes: u64,
    /// Answered requests.
    pub latency_count: u64,
    /// Mean request latency, in microseconds.
    pub latency_mean_us: u64,
    /// Largest request latency, in microseconds.
    pub latency_max_us: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A handle to the outcome of one appended message.
#[derive(Debug, uniffi::Object)]
pub struct Receipt {
    inner: core::Receipt,
}

#[uniffi::export]
impl Receipt {
    /// The message's number in this producer (0, 1, 2, ... in append order).
    pub fn message_number(&self) -> u64 {
        self.inner.message_number()
    }

    /// The outcome if it is known already, without waiting.
    pub fn try_result(&self) -> Result<Option<Delivery>, DurableStreamError> {
        self.inner
            .try_result()
            .transpose()
            .map(|d| d.map(Delivery::from))
            .map_err(Into::into)
    }

    /// Waits for the batch holding the message to be delivered or to fail.
    pub async fn wait(&self) -> Result<Delivery, DurableStreamError> {
        let r = self.inner.clone();
        runtime::run(async move { r.wait().await.map(Delivery::from) }).await
    }
}

/// Appends to one stream exactly once under a producer id: messages are batched, batches are
/// pipelined and retried with the same epoch and sequence until the delivery timeout.
#[derive(Debug, uniffi::Object)]
pub struct IdempotentProducer {
    inner: core::IdempotentProducer,
    /// Its slot in the table of `dsc_producer_try_append` (src/fast.rs), once asked for.
    slot: OnceLock<u64>,
}

impl Drop for IdempotentProducer {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.get() {
            crate::fast::unregister(*slot);
        }
    }
}

#[uniffi::export]
impl DurableStream {
    /// An idempotent producer writing to this stream under `producer_id`. Sends nothing yet.
    #[uniffi::method(default(options))]
    pub fn producer(
        &self,
        producer_id: String,
        options: ProducerOptions,
    ) -> Result<Arc<IdempotentProducer>, DurableStreamError> {
        let inner = options.builder(self.core(), producer_id)?.build()?;
        Ok(Arc::new(IdempotentProducer {
            inner,
            slot: OnceLock::new(),
        }))
    }
}

/// Checks producer options without building a producer.
#[uniffi::export]
pub fn validate_producer_options(
    producer_id: String,
    options: ProducerOptions,
) -> Result<(), DurableStreamError> {
    let _entered = runtime::handle()?.enter();
    let stream = core::DurableStream::new("http://localhost/validate")?;
    // Building starts the producer's task; dropping the only handle right away ends it.
    options.builder(&stream, producer_id)?.build().map(drop)?;
    Ok(())
}

#[uniffi::export]
impl IdempotentProducer {
    /// The producer id.
    pub fn producer_id(&self) -> String {
        self.inner.producer_id().to_owned()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch()
    }

    /// The sequence number the next batch will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    /// Messages accepted and not yet delivered or failed.
    pub fn pending_count(&self) -> u64 {
        self.inner.pending_count()
    }

    /// The greatest offset the server acknowledged to this producer.
    pub fn last_offset(&self) -> Option<String> {
        offset_string(self.inner.last_offset())
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> ProducerMetrics {
        let m = self.inner.metrics();
        ProducerMetrics {
            appended_messages: m.appended_messages,
            messages: m.messages,
            bytes: m.bytes,
            batches: m.batches,
            requests: m.requests,
            retries: m.retries,
            duplicates: m.duplicates,
            failed_batches: m.failed_batches,
            failed_messages: m.failed_messages,
            in_flight: m.in_flight as u64,
            buffered_bytes: m.buffered_bytes as u64,
            latency_count: m.latency.count,
            latency_mean_us: micros(m.latency.mean()),
            latency_max_us: micros(m.latency.max),
        }
    }

    /// This producer's slot for `dsc_producer_try_append`, the plain C function a binding calls
    /// once per message (no uniffi call status, no receipt object); taken on the first call and
    /// given back when the producer is freed (never handed out again).
    pub fn fast_slot(&self) -> u64 {
        *self
            .slot
            .get_or_init(|| crate::fast::register(self.inner.clone()))
    }

    /// The receipt of message `message_number`, one this producer has accepted (for a caller
    /// that kept only the number `dsc_producer_try_append` returned).
    pub fn receipt(&self, message_number: u64) -> Result<Arc<Receipt>, DurableStreamError> {
        let inner = self.inner.receipt(message_number)?;
        Ok(Arc::new(Receipt { inner }))
    }

    /// Appends a message if there is room now (fails with `BUFFER_FULL` otherwise). On a JSON
    /// stream the message is one JSON value.
    pub fn try_append(&self, data: Vec<u8>) -> Result<Arc<Receipt>, DurableStreamError> {
        let inner = self.inner.try_append(data)?;
        Ok(Arc::new(Receipt { inner }))
    }

    /// Appends `messages` in order while there is room now, reserving the room and locking the
    /// open batch once per run of 256 (cheaper per message than `try_append`, and no receipts);
    /// returns how many were appended: all of them, or those before the first that did not fit.
    /// Any other failure of a message (not one JSON value on a JSON stream, empty, producer
    /// closed) is thrown when it is the first one; otherwise the call returns its index and a
    /// call from there throws it.
    pub fn try_append_many(&self, messages: Vec<Vec<u8>>) -> Result<u64, DurableStreamError> {
        let done = self.inner.try_append_many(&messages);
        match done.stopped {
            Some(core::Error::BufferFull { .. }) | None => Ok(done.count as u64),
            Some(e) if done.count == 0 => Err(e.into()),
            Some(_) => Ok(done.count as u64),
        }
    }

    /// Appends a message, blocking the calling thread (up to the buffer timeout) while the
    /// buffer is full: the form for callers that are not coroutines or tasks. Never waits on
    /// the network otherwise.
    pub fn append_blocking(&self, data: Vec<u8>) -> Result<Arc<Receipt>, DurableStreamError> {
        let inner = self.inner.append_blocking(data)?;
        Ok(Arc::new(Receipt { inner }))
    }

    /// Appends a message, waiting (up to the buffer timeout) for room. Never waits on the
    /// network otherwise: wait on the receipt, or `flush`, for the outcome.
    pub async fn append(&self, data: Vec<u8>) -> Result<Arc<Receipt>, DurableStreamError> {
        let p = self.inner.clone();
        let inner = runtime::run(async move { p.append(data).await }).await?;
        Ok(Arc::new(Receipt { inner }))
    }

    /// Waits (up to the buffer timeout) until `bytes` more would fit in the buffer, taking no
    /// room: a following `try_append` can still find it full if others appended in between.
    /// Cancelling it has no effect on the producer, so a caller that must never see a
    /// cancellation for a message that went in (a Kotlin coroutine) appends with `try_append`
    /// and waits here when the buffer is full.
    pub async fn wait_for_room(&self, bytes: u64) -> Result<(), DurableStreamError> {
        let p = self.inner.clone();
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        runtime::run(async move { p.wait_for_room(bytes).await }).await
    }

    /// Sends what is batched and waits for everything appended before; returns the first
    /// failure since the previous flush.
    pub async fn flush(&self) -> Result<(), DurableStreamError> {
        let p = self.inner.clone();
        runtime::run(async move { p.flush().await }).await
    }

    /// Flushes, then starts a new session (epoch + 1, sequence 0).
    pub async fn restart(&self) -> Result<(), DurableStreamError> {
        let p = self.inner.clone();
        runtime::run(async move { p.restart().await }).await
    }

    /// Flushes, then closes the stream (optionally with a final message); returns the final
    /// offset. Calling it again returns the same offset.
    #[uniffi::method(default(final_message = None))]
    pub async fn close_stream(
        &self,
        final_message: Option<Vec<u8>>,
    ) -> Result<Option<String>, DurableStreamError> {
        let p = self.inner.clone();
        runtime::run(async move {
            p.close(final_message.map(Bytes::from))
                .await
                .map(offset_string)
        })
        .await
    }

    /// Flushes and stops the producer without closing the stream.
    pub async fn detach(&self) -> Result<(), DurableStreamError> {
        let p = self.inner.clone();
        runtime::run(async move { p.detach().await }).await
    }
}
