//! A fast, exactly-once client for the [Durable Streams] protocol.
//!
//! A stream is a URL. [`DurableStream`] creates, appends to, closes, inspects and deletes it;
//! reads resume from any [`Offset`]. Everything is async on tokio; one [`Client`] (an HTTP
//! connection pool) is shared by every handle unless you pass your own.
//!
//! ```no_run
//! # async fn demo() -> durable_streams_client::Result<()> {
//! use durable_streams_client::{CreateOptions, DurableStream};
//! let stream = DurableStream::new("http://127.0.0.1:4437/v1/stream/events")?;
//! stream.create(CreateOptions::json()).await?;
//! stream.append(r#"{"type":"started"}"#).await?;
//! stream.append_batch([r#"{"n":1}"#, r#"{"n":2}"#], Default::default()).await?;
//! let head = stream.head().await?;
//! println!("tail is at {:?}", head.next_offset);
//! # Ok(()) }
//! ```
//!
//! Logging: every request, retry and failure is a [`tracing`] event under the target
//! `durable_streams_client`; nothing is printed unless the application installs a subscriber.
//! Header values never appear in events or errors, and URLs are shown without credentials or
//! query strings.
//!
//! [Durable Streams]: https://github.com/durable-streams/durable-streams

mod client;
mod error;
mod http;
mod offset;
mod producer;
mod read;
mod retry;
mod stream;
mod subscriptions;
mod values;

pub use client::{Client, ClientBuilder};
pub use error::{Cause, CauseKind, Error, ErrorCode, Result};
pub use http::{escape_server_text, headers, is_json_content_type};
pub use offset::Offset;
pub use producer::{
    default_producer_retry, AppendedMany, Delivery, ErrorCallback, IdempotentProducer,
    IdempotentProducerBuilder, LatencyStats, ProducerMetrics, Receipt,
};
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use read::fuzzing;
pub use read::{
    byte_count, stream, Batch, Batches, ErrorDecision, ErrorHook, ErrorHookFuture, FailedAttempt,
    JsonNumbers, JsonPick, LiveMode, ReadOptions, ResponseHead, SseResilience, StreamResponse,
    DEFAULT_CATCH_UP_RETRIES, DEFAULT_MAX_CHUNK_BYTES, DEFAULT_MAX_READ_BYTES,
};
pub use retry::{AttemptObserver, Operation, RetryPolicy, DEFAULT_MAX_RETRY_AFTER};
pub use stream::{
    default_idempotent_retry, AppendOptions, AppendResult, CloseOptions, CloseResult,
    CreateOptions, CreateResult, CreateStatus, DurableStream, DurableStreamBuilder, ForkOptions,
    HeadResult,
};
pub use subscriptions::{
    Ack, AckResult, DeliveryMode, Job, LinkType, PullWakeWorker, SignatureCheck, SigningInfo,
    StopSignal, StreamLink, Subscription, SubscriptionConfig, SubscriptionErrorCode,
    SubscriptionStatus, Subscriptions, SubscriptionsBuilder, Token, Wake, WakeEvent, WakeOutcome,
    WakeStream, WebhookInfo, WorkItem, WorkQueue,
};
#[cfg(feature = "webhooks")]
pub use subscriptions::{WebhookVerifier, WEBHOOK_DONE};
pub use values::{RequestExtras, Value, ValueFuture};

/// For bindings that build their language's values from the JSON texts of a read: the JSON
/// string whose opening quote is at `pos` in `text`, and the position after its closing quote.
/// Borrowed from `text` when it has no escape, else unescaped; `None` on a control character,
/// an unknown or short escape, a lone surrogate or a missing end. Not part of the supported
/// API.
#[doc(hidden)]
#[inline]
pub fn json_string_at(text: &str, pos: usize) -> Option<(std::borrow::Cow<'_, str>, usize)> {
    read::fast_de::string_at(text, pos)
}

/// The README's Rust snippets, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
