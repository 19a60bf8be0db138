//! `NativeProducer`: the core's idempotent producer.

use std::time::Duration;

use durable_streams_client::{Delivery, IdempotentProducer};
use napi::bindgen_prelude::{
    within_runtime_if_available, Array, Either, PromiseRaw, Uint8ArraySlice,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;

use crate::error;
use crate::fast;
use crate::runtime::{spawn, CancelToken};
use crate::stream::NativeStream;
use crate::values::{self, Backoff, Extras, Message};

/// Receives the JSON description of every batch that fails for good (weak: never keeps Node
/// alive).
pub type ErrorSink = ThreadsafeFunction<String, (), String, Status, false, true>;

/// Options of a producer; absent values keep the core's defaults.
#[napi(object, object_to_js = false)]
pub struct NativeProducerOptions {
    /// The epoch to start with (default 0).
    pub epoch: Option<f64>,
    /// On a 403, take the server's epoch + 1 and resend (default false).
    pub auto_claim: Option<bool>,
    /// How long a batch waits for more messages, in milliseconds (default 5).
    pub linger_ms: Option<f64>,
    /// The largest batch in bytes (default 1 MiB).
    pub max_batch_bytes: Option<f64>,
    /// The most messages in a batch (default: no limit).
    pub max_batch_messages: Option<f64>,
    /// Batches in flight at once (default 5).
    pub max_in_flight: Option<f64>,
    /// The most bytes the producer holds before appends must wait (default 32 MiB).
    pub max_buffered_bytes: Option<f64>,
    /// How long `waitForRoom` waits, in milliseconds (default 60000).
    pub buffer_timeout_ms: Option<f64>,
    /// How long a batch is retried before it fails, in milliseconds (default 120000).
    pub delivery_timeout_ms: Option<f64>,
    /// Retries of failed batches.
    pub backoff: Option<Backoff>,
    /// The producer's own headers and parameters.
    pub extras: Option<Extras>,
    /// Called with the JSON description of each batch that fails for good.
    #[napi(ts_type = "(error: string) => void")]
    pub on_error: Option<ErrorSink>,
}

/// Where a message was stored.
#[napi(object)]
pub struct DeliveryInfo {
    /// The tail offset after the batch (absent for a duplicate).
    pub offset: Option<String>,
    /// Whether the server had already stored the batch.
    pub duplicate: bool,
    /// The epoch the batch was stored under.
    pub epoch: f64,
    /// The batch's sequence number.
    pub seq: f64,
}

impl From<Delivery> for DeliveryInfo {
    fn from(d: Delivery) -> Self {
        Self {
            offset: d.offset.map(|o| o.to_string()),
            duplicate: d.duplicate,
            epoch: d.epoch as f64,
            seq: d.seq as f64,
        }
    }
}

/// Producer counters.
#[napi(object)]
pub struct NativeProducerMetrics {
    /// Messages appended.
    pub appended_messages: f64,
    /// Messages delivered.
    pub messages: f64,
    /// Bytes delivered.
    pub bytes: f64,
    /// Batches delivered.
    pub batches: f64,
    /// Requests sent.
    pub requests: f64,
    /// Requests retried.
    pub retries: f64,
    /// Batches the server reported as duplicates.
    pub duplicates: f64,
    /// Batches that failed for good.
    pub failed_batches: f64,
    /// Messages in failed batches.
    pub failed_messages: f64,
    /// Batches in flight.
    pub in_flight: f64,
    /// Bytes held.
    pub buffered_bytes: f64,
    /// Mean request latency in milliseconds.
    pub mean_latency_ms: f64,
    /// Longest request latency in milliseconds.
    pub max_latency_ms: f64,
}

/// An idempotent, batching producer (exactly-once appends under retries).
#[napi]
pub struct NativeProducer {
    inner: IdempotentProducer,
    /// Where `producerAppendText` finds the producer (src/fast.rs); emptied on drop.
    slot: u32,
}

impl Drop for NativeProducer {
    fn drop(&mut self) {
        fast::unregister(self.slot);
    }
}

fn count(name: &str, v: Option<f64>) -> napi::Result<Option<usize>> {
    match v {
        None => Ok(None),
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 => {
            Ok(Some(v as usize))
        }
        Some(v) => Err(error::invalid(format!(
            "{name} must be a whole number >= 0, got {v}"
        ))),
    }
}

fn millis(name: &str, v: Option<f64>) -> napi::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(v) if (0.0..=1e12).contains(&v) => Ok(Some(Duration::from_secs_f64(v / 1000.0))),
        Some(v) => Err(error::invalid(format!(
            "{name} must be a non-negative number of milliseconds, got {v}"
        ))),
    }
}

#[napi]
impl NativeProducer {
    /// A producer appending to `stream` as `producer_id`. Sends nothing yet.
    #[napi(constructor)]
    pub fn new(
        stream: &NativeStream,
        producer_id: String,
        options: Option<NativeProducerOptions>,
    ) -> napi::Result<Self> {
        let mut b = stream.inner().producer(producer_id);
        if let Some(o) = options {
            if let Some(epoch) = o.epoch {
                if !(epoch >= 0.0 && epoch.fract() == 0.0 && epoch <= 9_007_199_254_740_991.0) {
                    return Err(error::invalid(format!(
                        "epoch must be a whole number >= 0, got {epoch}"
                    )));
                }
                b = b.epoch(epoch as u64);
            }
            if let Some(yes) = o.auto_claim {
                b = b.auto_claim(yes);
            }
            if let Some(d) = millis("lingerMs", o.linger_ms)? {
                b = b.linger(d);
            }
            if let Some(n) = count("maxBatchBytes", o.max_batch_bytes)? {
                b = b.max_batch_bytes(n);
            }
            if let Some(n) = count("maxBatchMessages", o.max_batch_messages)? {
                b = b.max_batch_messages(n);
            }
            if let Some(n) = count("maxInFlight", o.max_in_flight)? {
                b = b.max_in_flight(n);
            }
            if let Some(n) = count("maxBufferedBytes", o.max_buffered_bytes)? {
                b = b.max_buffered_bytes(n);
            }
            if let Some(d) = millis("bufferTimeoutMs", o.buffer_timeout_ms)? {
                b = b.buffer_timeout(d);
            }
            if let Some(d) = millis("deliveryTimeoutMs", o.delivery_timeout_ms)? {
                b = b.delivery_timeout(d);
            }
            if let Some(policy) = values::retry(o.backoff)? {
                b = b.retry(policy);
            }
            b = b.extras(values::extras(o.extras)?);
            if let Some(sink) = o.on_error {
                b = b.on_error(move |e| {
                    sink.call(error::describe(e), ThreadsafeFunctionCallMode::NonBlocking);
                });
            }
        }
        let inner = within_runtime_if_available(|| b.build()).map_err(error::to_napi)?;
        let slot = fast::register(inner.clone())?;
        Ok(Self { inner, slot })
    }

    /// Appends a message if there is room now (else fails at once with code `BUFFER_FULL`)
    /// and returns its message number. Never waits and sends nothing itself: the producer's
    /// task batches and sends. (The TypeScript layer calls `producerAppend`, which does the
    /// same for less.)
    #[napi]
    pub fn append(&self, body: Either<String, Uint8ArraySlice<'_>>) -> napi::Result<f64> {
        try_append(&self.inner, body)
    }

    /// Appends `bodies[start..]` in order while there is room, in one call; returns the index
    /// of the first message not appended (`bodies.length` when all were).
    ///
    /// Stops early, without an error, at a message that does not fit (`BUFFER_FULL`): wait
    /// for room and call again from the returned index. Any other failure of a message (not a
    /// string or `Uint8Array`, not one JSON value, producer closed) is thrown when it is the
    /// first message of the call; otherwise the call returns its index, so the next call
    /// throws it.
    ///
    /// `end` (default `bodies.length`) stops before that index; with `throwFirst` false
    /// (default true) a failure of the first message is returned as its index too.
    #[napi(
        ts_args_type = "bodies: ReadonlyArray<string | Uint8Array>, start: number, end?: number, throwFirst?: boolean"
    )]
    pub fn append_many(
        &self,
        bodies: Array<'_>,
        start: u32,
        end: Option<u32>,
        throw_first: Option<bool>,
    ) -> napi::Result<u32> {
        let end = end.map_or(bodies.len(), |e| e.min(bodies.len()));
        let throw_first = throw_first.unwrap_or(true);
        let mut i = start;
        // Runs of up to RUN messages: read from the array, then appended in one core call.
        const RUN: u32 = 256;
        // Each message's bytes are copied out as soon as it is read: reading the next element
        // can run JavaScript (a getter, a Proxy trap) that detaches or frees an earlier
        // `Uint8Array`'s memory, so no pointer into one is kept past its own read.
        let mut bytes: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        while i < end {
            let first = i;
            let run_end = end.min(i.saturating_add(RUN));
            bytes.clear();
            ends.clear();
            let mut refused = None;
            for k in i..run_end {
                match bodies.get::<Message<'_>>(k) {
                    Ok(Some(body)) => {
                        bytes.extend_from_slice(message_bytes(&body));
                        ends.push(bytes.len());
                    }
                    Ok(None) => break,
                    Err(_) => {
                        refused = Some(k);
                        break;
                    }
                }
            }
            let mut from = 0;
            let slices: Vec<&[u8]> = ends
                .iter()
                .map(|&to| {
                    let piece = bytes.get(from..to).unwrap_or_default();
                    from = to;
                    piece
                })
                .collect();
            let done = self.inner.try_append_many(&slices);
            i += done.count as u32;
            if let Some(e) = done.stopped {
                return stop(e, i == start && throw_first).map(|()| i);
            }
            if let Some(k) = refused {
                let e = durable_streams_client::Error::InvalidArgument {
                    message: format!("message {k} is neither a string nor a Uint8Array"),
                };
                return stop(e, k == start && throw_first).map(|()| k);
            }
            if slices.len() < (run_end - first) as usize {
                // The array ended early: nothing more to append.
                break;
            }
        }
        Ok(i)
    }

    /// The producer's slot on this thread, for `producerAppendText` (src/fast.rs).
    #[napi(getter)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Waits for the batch of message number `message_number` to be delivered or to fail.
    #[napi(ts_return_type = "Promise<DeliveryInfo>")]
    pub fn delivery<'e>(
        &self,
        env: &'e Env,
        message_number: f64,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, DeliveryInfo>> {
        let receipt = self
            .inner
            .receipt(message_number as u64)
            .map_err(error::to_napi)?;
        spawn(env, cancel, async move {
            receipt.wait().await.map(DeliveryInfo::from)
        })
    }

    /// Resolves once `bytes` more would fit in the buffer (up to the buffer timeout).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn wait_for_room<'e>(
        &self,
        env: &'e Env,
        bytes: f64,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let bytes = count("bytes", Some(bytes))?.unwrap_or(0);
        let p = self.inner.clone();
        spawn(env, cancel, async move { p.wait_for_room(bytes).await })
    }

    /// Sends what is batched and waits for everything appended before; rejects with the first
    /// failure since the previous flush.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let p = self.inner.clone();
        spawn(env, cancel, async move { p.flush().await })
    }

    /// Flushes, then starts a new session (epoch + 1, sequence 0).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn restart<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let p = self.inner.clone();
        spawn(env, cancel, async move { p.restart().await })
    }

    /// Flushes, then closes the stream (with an optional final message); resolves to the final
    /// offset.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn close<'e>(
        &self,
        env: &'e Env,
        final_message: Option<Either<String, Uint8ArraySlice<'_>>>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, Option<String>>> {
        let p = self.inner.clone();
        let body = final_message.map(values::message);
        spawn(env, cancel, async move {
            Ok(p.close(body).await?.map(|o| o.to_string()))
        })
    }

    /// Flushes and stops the producer without closing the stream.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn detach<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let p = self.inner.clone();
        spawn(env, cancel, async move { p.detach().await })
    }

    /// The current epoch.
    #[napi(getter)]
    pub fn epoch(&self) -> f64 {
        self.inner.epoch() as f64
    }

    /// The sequence number of the next batch.
    #[napi(getter)]
    pub fn next_seq(&self) -> f64 {
        self.inner.next_seq() as f64
    }

    /// Messages appended but not yet settled.
    #[napi(getter)]
    pub fn pending_count(&self) -> f64 {
        self.inner.pending_count() as f64
    }

    /// Batches in flight.
    #[napi(getter)]
    pub fn in_flight_count(&self) -> f64 {
        self.inner.in_flight_count() as f64
    }

    /// The offset after the last delivered batch.
    #[napi(getter)]
    pub fn last_offset(&self) -> Option<String> {
        self.inner.last_offset().map(|o| o.to_string())
    }

    /// A snapshot of the producer's counters.
    #[napi]
    pub fn metrics(&self) -> NativeProducerMetrics {
        let m = self.inner.metrics();
        NativeProducerMetrics {
            appended_messages: m.appended_messages as f64,
            messages: m.messages as f64,
            bytes: m.bytes as f64,
            batches: m.batches as f64,
            requests: m.requests as f64,
            retries: m.retries as f64,
            duplicates: m.duplicates as f64,
            failed_batches: m.failed_batches as f64,
            failed_messages: m.failed_messages as f64,
            in_flight: m.in_flight as f64,
            buffered_bytes: m.buffered_bytes as f64,
            mean_latency_ms: m.latency.mean().as_secs_f64() * 1000.0,
            max_latency_ms: m.latency.max.as_secs_f64() * 1000.0,
        }
    }
}

/// How a failing message ends an `appendMany` call: a full buffer ends it without an error (the
/// caller returns the message's index), and so does any other failure unless `throw` (the
/// call's first message): then it is thrown.
fn stop(e: durable_streams_client::Error, throw: bool) -> napi::Result<()> {
    match e {
        durable_streams_client::Error::BufferFull { .. } => Ok(()),
        e if throw => Err(error::to_napi(e)),
        _ => Ok(()),
    }
}

fn try_append(p: &IdempotentProducer, body: Message<'_>) -> napi::Result<f64> {
    p.try_append_numbered(message_bytes(&body))
        .map(|no| no as f64)
        .map_err(error::to_napi)
}

/// A message's bytes (a string's UTF-8).
fn message_bytes<'a>(body: &'a Message<'_>) -> &'a [u8] {
    match body {
        Either::A(s) => s.as_bytes(),
        Either::B(bytes) => bytes,
    }
}

/// `IdempotentProducer.append` of a `Uint8Array`: appends it to the producer in `slot` (see
/// `NativeProducer.slot`) and returns its message number. A string goes to `producerAppendText`
/// (src/fast.rs).
#[napi]
// The lib test build has no Node registration to call it (the addon has no Rust tests).
#[cfg_attr(test, allow(dead_code))]
pub fn producer_append_bytes(slot: u32, body: Uint8ArraySlice<'_>) -> napi::Result<f64> {
    fast::with_producer(slot, |p| p.try_append_numbered(body))
        .map(|no| no as f64)
        .map_err(error::to_napi)
}

/// `appendMany` for a run of `count` string messages joined by NUL characters, once the text is
/// UTF-8 (`producerAppendJoined`, src/fast.rs): appends the pieces in order while there is room
/// and returns how many were appended, with `appendMany`'s rules for a failing message (thrown
/// if it is the first and `throw_first`, else its index is returned). Returns -1, appending
/// nothing, when the text does not hold exactly `count` pieces: a message contained a NUL
/// itself (never in a JSON text; a byte stream may have one), so the caller appends that run
/// one message at a time.
pub(crate) fn append_pieces(
    p: &IdempotentProducer,
    bytes: &[u8],
    count: u32,
    throw_first: bool,
) -> napi::Result<i64> {
    let Some(done) = p.try_append_joined(bytes, 0, count as usize) else {
        return Ok(-1);
    };
    match done.stopped {
        None => Ok(i64::from(count)),
        Some(e) => stop(e, done.count == 0 && throw_first).map(|()| done.count as i64),
    }
}
