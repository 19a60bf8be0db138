//! `DurableStream`: a handle to one stream URL, and the records its operations take and return.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use durable_streams_client as core;
use durable_streams_client::{CreateStatus, ForkOptions, Offset, RetryPolicy};

use crate::callbacks::{
    attempt_observer, chunk_body, extras_with, ChunkSource, FailedAttemptHandler, HeaderValue,
};
use crate::error::DurableStreamError;
use crate::read::{ReadOptions, StreamResponse};
use crate::runtime;
use crate::values::{extras, offset_string, RetryOptions};

/// How a handle is built: its content type, the headers and parameters sent with every
/// request, and its retry policies.
#[derive(Clone, uniffi::Record)]
pub struct StreamOptions {
    /// The stream's content type, when known (otherwise learned from the server).
    #[uniffi(default = None)]
    pub content_type: Option<String>,
    /// Headers sent with every request of this handle.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Headers computed for every request of this handle (over `headers` of the same name).
    #[uniffi(default)]
    pub computed_headers: HashMap<String, Arc<dyn HeaderValue>>,
    /// Query parameters sent with every request of this handle.
    #[uniffi(default)]
    pub params: HashMap<String, String>,
    /// Retries of the idempotent requests (create, head, delete, close); the core's default
    /// when absent (5 retries, 100 ms to 5 s).
    #[uniffi(default = None)]
    pub retry: Option<RetryOptions>,
    /// Retries of plain appends; none when absent, since a retried plain append may be stored
    /// twice (use an idempotent producer for exactly-once retries).
    #[uniffi(default = None)]
    pub append_retry: Option<RetryOptions>,
    /// Told about every failed attempt of create, head, append, close and delete.
    #[uniffi(default = None)]
    pub on_failed_attempt: Option<Arc<dyn FailedAttemptHandler>>,
}

/// How a stream is created.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CreateOptions {
    /// The content type (the handle's when absent).
    #[uniffi(default = None)]
    pub content_type: Option<String>,
    /// Time to live in seconds (exclusive with `expires_at`).
    #[uniffi(default = None)]
    pub ttl_seconds: Option<u64>,
    /// Absolute expiry as an RFC 3339 timestamp.
    #[uniffi(default = None)]
    pub expires_at: Option<String>,
    /// Creates the stream already closed.
    #[uniffi(default = false)]
    pub closed: bool,
    /// The initial body.
    #[uniffi(default = None)]
    pub body: Option<Vec<u8>>,
    /// Creates a fork of this stream (a path on the same server, or a full URL).
    #[uniffi(default = None)]
    pub fork_from: Option<String>,
    /// Where the fork branches off (the source's tail when absent).
    #[uniffi(default = None)]
    pub fork_offset: Option<String>,
    /// Headers for this request only.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
}

/// What `create` found or made.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CreateResult {
    /// True when the stream was created, false when an identical one already existed.
    pub created: bool,
    /// The stream's content type.
    pub content_type: Option<String>,
    /// The tail offset.
    pub next_offset: Option<String>,
    /// Whether the stream is closed.
    pub closed: bool,
}

/// Options of one append.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AppendOptions {
    /// `Stream-Seq`: a writer sequence that must increase (lexicographically) per append.
    #[uniffi(default = None)]
    pub seq: Option<String>,
    /// The content type (the handle's when absent).
    #[uniffi(default = None)]
    pub content_type: Option<String>,
    /// Headers for this request only.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
}

/// What an append returned.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AppendResult {
    /// The tail offset after the append.
    pub next_offset: Option<String>,
    /// Whether the stream is now closed.
    pub closed: bool,
}

impl From<core::AppendResult> for AppendResult {
    fn from(r: core::AppendResult) -> Self {
        Self {
            next_offset: offset_string(r.next_offset),
            closed: r.closed,
        }
    }
}

/// What a stream's metadata says.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HeadResult {
    /// The content type.
    pub content_type: Option<String>,
    /// The tail offset.
    pub next_offset: Option<String>,
    /// Time to live in seconds, if set.
    pub ttl_seconds: Option<u64>,
    /// Absolute expiry, if set.
    pub expires_at: Option<String>,
    /// Whether the stream is closed.
    pub closed: bool,
    /// The entity tag.
    pub etag: Option<String>,
}

/// A handle to one stream URL. Building it does no I/O.
#[derive(Debug, uniffi::Object)]
pub struct DurableStream {
    inner: core::DurableStream,
}

fn policy(o: Option<RetryOptions>) -> Result<Option<RetryPolicy>, DurableStreamError> {
    o.map(RetryPolicy::try_from).transpose()
}

impl DurableStream {
    pub(crate) fn core(&self) -> &core::DurableStream {
        &self.inner
    }
}

#[uniffi::export]
impl DurableStream {
    /// A handle to `url`.
    #[uniffi::constructor(default(options))]
    pub fn new(url: String, options: StreamOptions) -> Result<Arc<Self>, DurableStreamError> {
        // The shared HTTP client must be built inside the runtime it will run on.
        let _entered = runtime::handle()?.enter();
        let mut b = core::DurableStream::builder(url).extras(extras_with(
            options.headers,
            options.computed_headers,
            options.params,
        ));
        if let Some(ct) = options.content_type {
            b = b.content_type(ct);
        }
        if let Some(p) = policy(options.retry)? {
            b = b.retry(p);
        }
        if let Some(p) = policy(options.append_retry)? {
            b = b.append_retry(p);
        }
        if let Some(handler) = options.on_failed_attempt {
            b = b.on_failed_attempt(attempt_observer(handler));
        }
        Ok(Arc::new(Self { inner: b.build()? }))
    }

    /// The stream URL.
    pub fn url(&self) -> String {
        self.inner.url().to_string()
    }

    /// The content type, once known (given, or learned by create, head, connect or a read).
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type()
    }

    /// Creates the stream (PUT). Creating an identical stream again succeeds with
    /// `created == false`.
    #[uniffi::method(default(options))]
    pub async fn create(&self, options: CreateOptions) -> Result<CreateResult, DurableStreamError> {
        if options.fork_from.is_none() && options.fork_offset.is_some() {
            return Err(DurableStreamError::invalid("fork_offset needs fork_from"));
        }
        let opts = core::CreateOptions {
            content_type: options.content_type,
            ttl_seconds: options.ttl_seconds,
            expires_at: options.expires_at,
            closed: options.closed,
            body: options.body.map(Bytes::from),
            fork: options.fork_from.map(|source| ForkOptions {
                source,
                offset: options.fork_offset.map(Offset::from),
                sub_offset: None,
            }),
            extras: extras(options.headers, HashMap::new()),
        };
        let s = self.inner.clone();
        runtime::run(async move {
            let r = s.create(opts).await?;
            Ok::<_, core::Error>(CreateResult {
                created: r.status == CreateStatus::Created,
                content_type: r.content_type,
                next_offset: offset_string(r.next_offset),
                closed: r.closed,
            })
        })
        .await
    }

    /// The stream's metadata (HEAD); also learns its content type.
    pub async fn head(&self) -> Result<HeadResult, DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move {
            let h = s.head().await?;
            Ok::<_, core::Error>(HeadResult {
                content_type: h.content_type,
                next_offset: offset_string(h.next_offset),
                ttl_seconds: h.ttl_seconds,
                expires_at: h.expires_at,
                closed: h.closed,
                etag: h.etag,
            })
        })
        .await
    }

    /// Whether the stream exists.
    pub async fn exists(&self) -> Result<bool, DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.exists().await }).await
    }

    /// Deletes the stream.
    pub async fn delete(&self) -> Result<(), DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.delete().await }).await
    }

    /// Appends one message. On a JSON stream `data` is one JSON value (sent as a one-element
    /// array); otherwise it is appended as it is.
    #[uniffi::method(default(options))]
    pub async fn append(
        &self,
        data: Vec<u8>,
        options: AppendOptions,
    ) -> Result<AppendResult, DurableStreamError> {
        let s = self.inner.clone();
        let opts = append_options(options);
        runtime::run(async move { s.append_with(data, opts).await.map(AppendResult::from) }).await
    }

    /// Appends several messages in one request: one JSON array on a JSON stream, the
    /// concatenated bytes otherwise.
    #[uniffi::method(default(options))]
    pub async fn append_batch(
        &self,
        messages: Vec<Vec<u8>>,
        options: AppendOptions,
    ) -> Result<AppendResult, DurableStreamError> {
        let s = self.inner.clone();
        let opts = append_options(options);
        runtime::run(async move { s.append_batch(messages, opts).await.map(AppendResult::from) })
            .await
    }

    /// Appends a body of unknown length as one streamed request (the reference's
    /// `appendStream`): the chunks `source` hands out, sent as they come, as raw bytes (on a
    /// JSON stream they must together be one JSON value or an array of messages). Never
    /// retried. An exception from `source` aborts the request before its end, so nothing of it
    /// is stored, and fails with `INVALID_ARGUMENT` carrying its message.
    #[uniffi::method(default(options))]
    pub async fn append_stream(
        &self,
        source: Arc<dyn ChunkSource>,
        options: AppendOptions,
    ) -> Result<AppendResult, DurableStreamError> {
        let s = self.inner.clone();
        let opts = append_options(options);
        let body = chunk_body(source);
        runtime::run(async move { s.append_stream(body, opts).await.map(AppendResult::from) }).await
    }

    /// Closes the stream (no more appends), optionally with a last message; returns the final
    /// offset. Closing a closed stream again succeeds.
    #[uniffi::method(default(final_message = None, content_type = None))]
    pub async fn close_stream(
        &self,
        final_message: Option<Vec<u8>>,
        content_type: Option<String>,
    ) -> Result<Option<String>, DurableStreamError> {
        let s = self.inner.clone();
        let opts = core::CloseOptions {
            body: final_message.map(Bytes::from),
            content_type,
            extras: Default::default(),
        };
        runtime::run(async move {
            s.close_with(opts)
                .await
                .map(|r| offset_string(r.final_offset))
        })
        .await
    }

    /// Starts reading (the first request is sent before this returns, so a missing stream
    /// fails here); consume the response with its pull methods or all at once.
    #[uniffi::method(default(options))]
    pub async fn stream(
        &self,
        options: ReadOptions,
    ) -> Result<Arc<StreamResponse>, DurableStreamError> {
        let s = self.inner.clone();
        let opts = options.into_core()?;
        runtime::run(async move { s.stream(opts).await })
            .await
            .map(StreamResponse::new)
    }
}

/// Builds a handle and checks that the stream exists (HEAD), learning its content type.
#[uniffi::export(default(options))]
pub async fn connect(
    url: String,
    options: StreamOptions,
) -> Result<Arc<DurableStream>, DurableStreamError> {
    let s = DurableStream::new(url, options)?;
    s.head().await?;
    Ok(s)
}

fn append_options(o: AppendOptions) -> core::AppendOptions {
    core::AppendOptions {
        seq: o.seq,
        content_type: o.content_type,
        extras: extras(o.headers, HashMap::new()),
    }
}
