//! `DurableStream`: a handle to one stream URL and its write and lifecycle operations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{
    display_url, error_from_response, header_offset, header_str, header_true, header_u64,
    headers as h, is_json_content_type, prepare, transport_error, Body, Op, Sender,
};
use crate::offset::Offset;
use crate::retry::{AttemptObserver, FailedAttempt, Operation, RetryPolicy};
use crate::values::{RequestExtras, Value};

/// A handle to one stream. Creating it sends nothing; cloning it is cheap.
///
/// Write operations: [`create`](Self::create), [`append`](Self::append),
/// [`append_json`](Self::append_json), [`append_batch`](Self::append_batch),
/// [`append_stream`](Self::append_stream), [`close`](Self::close), [`delete`](Self::delete),
/// [`head`](Self::head).
///
/// ```no_run
/// # async fn demo() -> durable_streams_client::Result<()> {
/// use durable_streams_client::{CreateOptions, DurableStream};
/// let stream = DurableStream::builder("http://127.0.0.1:4437/v1/stream/chat-1")
///     .header("Authorization", "Bearer token")
///     .build()?;
/// stream.create(CreateOptions::json()).await?;
/// let r = stream.append_json(&serde_json::json!({"role": "user", "text": "hi"})).await?;
/// println!("next offset: {:?}", r.next_offset);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DurableStream {
    pub(crate) inner: Arc<StreamInner>,
}

pub(crate) struct StreamInner {
    pub(crate) url: Url,
    pub(crate) display: String,
    pub(crate) client: Client,
    pub(crate) extras: RequestExtras,
    pub(crate) content_type: Mutex<Option<String>>,
    /// Retries for idempotent operations (create, head, delete, close without a body).
    pub(crate) retry: RetryPolicy,
    /// Retries for plain appends: `None` unless the caller opts in.
    pub(crate) append_retry: Option<RetryPolicy>,
    /// Told about every failed attempt of the handle's requests.
    pub(crate) observer: Option<AttemptObserver>,
}

impl std::fmt::Debug for DurableStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStream")
            .field("url", &self.inner.display)
            .field("content_type", &self.content_type())
            .finish_non_exhaustive()
    }
}

/// Builds a [`DurableStream`] handle.
#[derive(Debug)]
pub struct DurableStreamBuilder {
    url: String,
    client: Option<Client>,
    extras: RequestExtras,
    content_type: Option<String>,
    retry: RetryPolicy,
    append_retry: Option<RetryPolicy>,
    observer: Option<AttemptObserver>,
}

/// The default retry policy of idempotent operations (create, head, delete, close):
/// up to 5 retries, 100 ms to 5 s.
pub fn default_idempotent_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(5),
        multiplier: 2.0,
        max_retries: Some(5),
        max_retry_after: crate::retry::DEFAULT_MAX_RETRY_AFTER,
    }
}

impl DurableStreamBuilder {
    /// Uses this client (default: [`Client::shared`]).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// A header sent with every request of this handle: fixed, or computed per request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_header(name, value);
        self
    }

    /// A query parameter sent with every request of this handle.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_param(name, value);
        self
    }

    /// Replaces all handle headers and parameters.
    pub fn extras(mut self, extras: RequestExtras) -> Self {
        self.extras = extras;
        self
    }

    /// The stream's content type, when known without asking the server. It decides JSON mode.
    pub fn content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }

    /// Retry policy of idempotent operations (create, head, delete, close without a final
    /// message). Default: [`default_idempotent_retry`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Opts plain appends into retries.
    ///
    /// A plain append is **not idempotent**: if a connection drops after the server stored the
    /// data but before the answer arrived, a retry stores it twice. Only opt in when duplicates
    /// are acceptable, or use an [`IdempotentProducer`](crate::IdempotentProducer), which
    /// retries safely.
    pub fn append_retry(mut self, policy: RetryPolicy) -> Self {
        self.append_retry = Some(policy);
        self
    }

    /// Tells `observer` about every failed attempt of the handle's requests (create, head,
    /// append, streamed append, close, delete; reads have their own
    /// [`ErrorHook`](crate::ErrorHook)), retried or not. See [`AttemptObserver`].
    pub fn on_failed_attempt(mut self, observer: AttemptObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the handle. Fails on a URL that is not absolute http(s) or an invalid policy.
    pub fn build(self) -> Result<DurableStream> {
        let url = Url::parse(&self.url)
            .map_err(|e| Error::invalid(format!("invalid stream URL {:?}: {e}", self.url)))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Error::invalid(format!(
                "stream URL must be http or https, got {:?}",
                url.scheme()
            )));
        }
        self.retry.validate()?;
        if let Some(p) = &self.append_retry {
            p.validate()?;
        }
        let client = match self.client {
            Some(c) => c,
            None => Client::shared()?,
        };
        Ok(DurableStream {
            inner: Arc::new(StreamInner {
                display: display_url(&url),
                url,
                client,
                extras: self.extras,
                content_type: Mutex::new(self.content_type),
                retry: self.retry,
                append_retry: self.append_retry,
                observer: self.observer,
            }),
        })
    }
}

/// Options of [`DurableStream::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The stream's content type (`application/json` selects JSON mode). When `None` the
    /// handle's content type is used, and the server's default (`application/octet-stream`)
    /// when the handle has none; a fork inherits its source's.
    pub content_type: Option<String>,
    /// Sliding time-to-live in seconds. Exclusive with `expires_at`.
    pub ttl_seconds: Option<u64>,
    /// Absolute expiry, an RFC 3339 timestamp. Exclusive with `ttl_seconds`.
    pub expires_at: Option<String>,
    /// Create the stream already closed (its body, if any, is its whole content).
    pub closed: bool,
    /// Initial content, sent as is (in JSON mode an array body stores one message per element).
    pub body: Option<Bytes>,
    /// Create a fork of another stream.
    pub fork: Option<ForkOptions>,
    /// Headers and parameters for this request only.
    pub extras: RequestExtras,
}

impl CreateOptions {
    /// Options for a JSON-mode stream.
    pub fn json() -> Self {
        Self::with_content_type("application/json")
    }

    /// Options for a stream of the given content type.
    pub fn with_content_type(ct: impl Into<String>) -> Self {
        Self {
            content_type: Some(ct.into()),
            ..Self::default()
        }
    }
}

/// Where a fork starts: a source stream, and a point in it.
#[derive(Debug, Clone)]
pub struct ForkOptions {
    /// The source stream: its path on the same server (`/v1/stream/a`) or its full URL (which
    /// must have the fork's origin).
    pub source: String,
    /// The divergence offset; `None` forks at the source's current tail.
    pub offset: Option<Offset>,
    /// Messages (JSON mode) or bytes (other types) past `offset` that the fork also inherits.
    pub sub_offset: Option<u64>,
}

impl ForkOptions {
    /// A fork of `source` at its tail.
    pub fn of(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            offset: None,
            sub_offset: None,
        }
    }

    /// Sets the divergence offset.
    pub fn at(mut self, offset: impl Into<Offset>) -> Self {
        self.offset = Some(offset.into());
        self
    }

    /// Sets the sub-offset.
    pub fn sub_offset(mut self, n: u64) -> Self {
        self.sub_offset = Some(n);
        self
    }
}

/// What a create request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateStatus {
    /// 201: the stream was created.
    Created,
    /// 200: a stream with the same configuration already existed.
    AlreadyExists,
}

/// The result of [`DurableStream::create`].
#[derive(Debug, Clone)]
pub struct CreateResult {
    /// Created, or already there with the same configuration.
    pub status: CreateStatus,
    /// The stream's content type, as the server reported it.
    pub content_type: Option<String>,
    /// The tail offset after any initial content.
    pub next_offset: Option<Offset>,
    /// Whether the stream is closed.
    pub closed: bool,
}

/// Options of an append.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// `Stream-Seq`: a writer sequence that must increase (byte-wise) from append to append.
    pub seq: Option<String>,
    /// Overrides the content type sent (it must match the stream's).
    pub content_type: Option<String>,
    /// Headers and parameters for this request only.
    pub extras: RequestExtras,
}

/// The result of an append.
#[derive(Debug, Clone)]
pub struct AppendResult {
    /// The tail offset after this append (`None` only if the server omitted it).
    pub next_offset: Option<Offset>,
    /// Whether the stream is now closed.
    pub closed: bool,
}

/// Options of [`DurableStream::close_with`].
#[derive(Debug, Clone, Default)]
pub struct CloseOptions {
    /// A final message appended atomically with the close (in JSON mode: one JSON value).
    pub body: Option<Bytes>,
    /// Overrides the content type sent with the final message.
    pub content_type: Option<String>,
    /// Headers and parameters for this request only.
    pub extras: RequestExtras,
}

/// The result of a close.
#[derive(Debug, Clone)]
pub struct CloseResult {
    /// The stream's final offset.
    pub final_offset: Option<Offset>,
}

/// Stream metadata from `HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadResult {
    /// The stream's content type.
    pub content_type: Option<String>,
    /// The tail offset.
    pub next_offset: Option<Offset>,
    /// The sliding TTL in seconds, if any.
    pub ttl_seconds: Option<u64>,
    /// The absolute expiry (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// Whether the stream is closed.
    pub closed: bool,
    /// The `ETag`, if any.
    pub etag: Option<String>,
}

impl DurableStream {
    /// A handle for `url` with default settings. Sends nothing.
    pub fn new(url: impl Into<String>) -> Result<Self> {
        Self::builder(url).build()
    }

    /// A builder for a handle with headers, parameters, a client or retry settings.
    pub fn builder(url: impl Into<String>) -> DurableStreamBuilder {
        DurableStreamBuilder {
            url: url.into(),
            client: None,
            extras: RequestExtras::default(),
            content_type: None,
            retry: default_idempotent_retry(),
            append_retry: None,
            observer: None,
        }
    }

    /// A handle for an existing stream: one `HEAD` request learns its content type.
    /// Fails with [`Error::NotFound`] when there is no stream at `url`.
    pub async fn connect(url: impl Into<String>) -> Result<Self> {
        let s = Self::new(url)?;
        s.head().await?;
        Ok(s)
    }

    /// The stream URL.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The client this handle uses.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The handle's headers and parameters.
    pub fn extras(&self) -> &RequestExtras {
        &self.inner.extras
    }

    /// The content type, if known (from the builder, create, head or a read).
    pub fn content_type(&self) -> Option<String> {
        self.inner
            .content_type
            .lock()
            .map(|g| g.clone())
            .unwrap_or(None)
    }

    /// Whether the stream is known to be JSON mode.
    pub fn is_json(&self) -> bool {
        self.content_type()
            .as_deref()
            .is_some_and(is_json_content_type)
    }

    pub(crate) fn set_content_type(&self, ct: Option<&str>) {
        if let Some(ct) = ct {
            if let Ok(mut g) = self.inner.content_type.lock() {
                *g = Some(ct.to_owned());
            }
        }
    }

    /// The content type, asking the server once (`HEAD`) when it is not known yet.
    pub async fn resolve_content_type(&self) -> Result<String> {
        if let Some(ct) = self.content_type() {
            return Ok(ct);
        }
        let head = self.head().await?;
        Ok(head
            .content_type
            .unwrap_or_else(|| "application/octet-stream".to_owned()))
    }

    fn sender<'a>(
        &'a self,
        method: Method,
        extras: &'a RequestExtras,
        headers: &'a [(&'a str, &'a str)],
        body: Body,
        retry: Option<&'a RetryPolicy>,
        op: Op,
    ) -> Sender<'a> {
        Sender {
            client: self.inner.client.http(),
            method,
            base: &self.inner.url,
            display: &self.inner.display,
            extras,
            protocol_params: &[],
            protocol_headers: headers,
            body,
            timeout: self.inner.client.request_timeout(),
            retry,
            op,
            observer: self.inner.observer.as_ref(),
        }
    }

    /// Creates the stream (`PUT`).
    ///
    /// Returns [`CreateStatus::Created`] (201) or [`CreateStatus::AlreadyExists`] (200, same
    /// configuration). A stream with another configuration gives [`Error::ConflictExists`];
    /// `ttl_seconds` together with `expires_at` gives [`Error::InvalidArgument`] before any
    /// request.
    pub async fn create(&self, opts: CreateOptions) -> Result<CreateResult> {
        if opts.ttl_seconds.is_some() && opts.expires_at.is_some() {
            return Err(Error::invalid(
                "ttl_seconds and expires_at are mutually exclusive: set one of them",
            ));
        }
        let content_type = match (&opts.content_type, &opts.fork) {
            (Some(ct), _) => Some(ct.clone()),
            (None, None) => self.content_type(),
            (None, Some(_)) => None,
        };
        let ttl = opts.ttl_seconds.map(|t| t.to_string());
        let sub = opts
            .fork
            .as_ref()
            .and_then(|f| f.sub_offset)
            .map(|s| s.to_string());
        let source = match &opts.fork {
            Some(f) => Some(self.fork_source_path(&f.source)?),
            None => None,
        };
        let mut hs: Vec<(&str, &str)> = Vec::new();
        if let Some(ct) = &content_type {
            hs.push(("Content-Type", ct));
        }
        if let Some(t) = &ttl {
            hs.push((h::STREAM_TTL, t));
        }
        if let Some(e) = &opts.expires_at {
            hs.push((h::STREAM_EXPIRES_AT, e));
        }
        if opts.closed {
            hs.push((h::STREAM_CLOSED, "true"));
        }
        if let (Some(f), Some(src)) = (&opts.fork, &source) {
            hs.push((h::STREAM_FORKED_FROM, src));
            if let Some(o) = &f.offset {
                hs.push((h::STREAM_FORK_OFFSET, o.as_str()));
            }
            if let Some(s) = &sub {
                hs.push((h::STREAM_FORK_SUB_OFFSET, s));
            }
        }
        let extras = self.inner.extras.merged(&opts.extras);
        let body = match opts.body {
            Some(b) => Body::Bytes(b),
            None => Body::Empty,
        };
        let sent = self
            .sender(
                Method::PUT,
                &extras,
                &hs,
                body,
                Some(&self.inner.retry),
                Op::Create,
            )
            .send()
            .await;
        let resp = match sent {
            Err(Error::ConflictExists { url, message, .. }) => {
                // The 409 does not say what differs; the most common surprise is a stream that
                // was closed (by an earlier run, say), so look.
                let existing_closed = match self.head().await {
                    Ok(head) if head.closed != opts.closed => Some(head.closed),
                    _ => None,
                };
                return Err(Error::ConflictExists {
                    url,
                    message,
                    existing_closed,
                });
            }
            sent => sent?,
        };
        let status = match resp.status() {
            StatusCode::CREATED => CreateStatus::Created,
            StatusCode::OK => CreateStatus::AlreadyExists,
            s => {
                return Err(Error::UnexpectedStatus {
                    status: s.as_u16(),
                    url: self.inner.display.clone(),
                    message: Some("create expects 201 or 200".into()),
                })
            }
        };
        let headers = resp.headers();
        let ct = header_str(headers, "content-type")
            .map(str::to_owned)
            .or(content_type);
        self.set_content_type(ct.as_deref());
        Ok(CreateResult {
            status,
            next_offset: header_offset(headers),
            closed: header_true(headers, h::STREAM_CLOSED),
            content_type: ct,
        })
    }

    fn fork_source_path(&self, source: &str) -> Result<String> {
        if source.starts_with('/') {
            return Ok(source.to_owned());
        }
        let u = Url::parse(source).map_err(|_| {
            Error::invalid(format!(
                "fork source {source:?} must be a path starting with '/' or a full URL"
            ))
        })?;
        if u.origin() != self.inner.url.origin() {
            return Err(Error::invalid(
                "fork source must be on the same server as the fork",
            ));
        }
        Ok(u.path().to_owned())
    }

    /// Stream metadata (`HEAD`). Also records the content type on this handle.
    /// A missing stream gives [`Error::NotFound`].
    pub async fn head(&self) -> Result<HeadResult> {
        let resp = self
            .sender(
                Method::HEAD,
                &self.inner.extras,
                &[],
                Body::Empty,
                Some(&self.inner.retry),
                Op::Head,
            )
            .send()
            .await?;
        let headers = resp.headers();
        let result = HeadResult {
            content_type: header_str(headers, "content-type").map(str::to_owned),
            next_offset: header_offset(headers),
            ttl_seconds: header_u64(headers, h::STREAM_TTL)?,
            expires_at: header_str(headers, h::STREAM_EXPIRES_AT).map(str::to_owned),
            closed: header_true(headers, h::STREAM_CLOSED),
            etag: header_str(headers, "etag").map(str::to_owned),
        };
        self.set_content_type(result.content_type.as_deref());
        Ok(result)
    }

    /// Whether the stream exists (`HEAD`; 404 is `false`, other errors are errors).
    pub async fn exists(&self) -> Result<bool> {
        match self.head().await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the stream (`DELETE`).
    pub async fn delete(&self) -> Result<()> {
        self.sender(
            Method::DELETE,
            &self.inner.extras,
            &[],
            Body::Empty,
            Some(&self.inner.retry),
            Op::Delete,
        )
        .send()
        .await?;
        Ok(())
    }

    /// Appends one message: bytes for a byte stream, one JSON value (already serialized) for a
    /// JSON stream, where it is sent wrapped in an array so an array value stays one message.
    ///
    /// An empty body is refused before any request. A closed stream gives
    /// [`Error::StreamClosed`] with its final offset.
    pub async fn append(&self, body: impl Into<Bytes>) -> Result<AppendResult> {
        self.append_with(body, AppendOptions::default()).await
    }

    /// [`append`](Self::append) with options (`Stream-Seq`, content type, extras).
    pub async fn append_with(
        &self,
        body: impl Into<Bytes>,
        opts: AppendOptions,
    ) -> Result<AppendResult> {
        let body = body.into();
        let ct = self.append_content_type(&opts).await?;
        let payload = if is_json_content_type(&ct) {
            json_batch(std::iter::once(body))?
        } else {
            if body.is_empty() {
                return Err(Error::invalid("cannot append an empty body"));
            }
            body
        };
        self.post(payload, &ct, &opts, false).await
    }

    /// Serializes `value` and appends it as one JSON message.
    pub async fn append_json<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<AppendResult> {
        let v = serde_json::to_vec(value)
            .map_err(|e| Error::invalid(format!("value cannot be serialized as JSON: {e}")))?;
        self.append(v).await
    }

    /// Appends several messages in one request: one JSON array in JSON mode (the messages are
    /// joined as they are, without parsing them again), their concatenation otherwise.
    /// An empty batch, or an empty message in JSON mode, is refused before any request.
    pub async fn append_batch<I, B>(&self, messages: I, opts: AppendOptions) -> Result<AppendResult>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let ct = self.append_content_type(&opts).await?;
        let payload = if is_json_content_type(&ct) {
            json_batch(messages.into_iter().map(Into::into))?
        } else {
            let mut buf = BytesMut::new();
            for m in messages {
                buf.put(m.into());
            }
            if buf.is_empty() {
                return Err(Error::invalid("cannot append an empty batch"));
            }
            buf.freeze()
        };
        self.post(payload, &ct, &opts, false).await
    }

    /// Appends a body of unknown length as one streamed (chunked) request: the reference's
    /// `appendStream`. The body is sent as it is produced, as raw bytes: in JSON mode it must
    /// itself be one JSON value or an array of messages. Memory stays bounded: the next item
    /// is taken from `body` only when the connection has taken the previous one.
    ///
    /// Never retried, whatever the retry policies say: a stream cannot be replayed, and
    /// sending a part of it again could store that part twice. Any failure (an error status,
    /// the connection, an error item from `body`) ends the append with that error, and the
    /// handle's [`AttemptObserver`] is told of it. An error item aborts the request before its
    /// end, so the server stores nothing of it, and gives [`Error::InvalidArgument`] with the
    /// item's message. Once the body has ended, the response must begin within the client's
    /// request timeout.
    ///
    /// ```no_run
    /// # async fn demo(stream: durable_streams_client::DurableStream) -> durable_streams_client::Result<()> {
    /// use bytes::Bytes;
    /// let lines = futures_util::stream::iter((0..1000).map(|i| {
    ///     Ok::<_, std::io::Error>(Bytes::from(format!("line {i}\n")))
    /// }));
    /// stream.append_stream(lines, Default::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn append_stream<S, E>(&self, body: S, opts: AppendOptions) -> Result<AppendResult>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let ct = self.append_content_type(&opts).await?;
        let r = self.send_stream(body, &ct, &opts).await;
        if let (Err(e), Some(observer)) = (&r, &self.inner.observer) {
            observer
                .call(FailedAttempt {
                    error: e.clone(),
                    attempt: 1,
                    will_retry: false,
                    operation: Operation::Append,
                })
                .await;
        }
        r
    }

    async fn send_stream<S, E>(
        &self,
        body: S,
        ct: &str,
        opts: &AppendOptions,
    ) -> Result<AppendResult>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let extras = self.inner.extras.merged(&opts.extras);
        let mut hs: Vec<(&str, &str)> = vec![("Content-Type", ct)];
        if let Some(s) = &opts.seq {
            hs.push((h::STREAM_SEQ, s));
        }
        let prepared = prepare(&self.inner.url, &extras, &[], &hs).await?;
        let source = Arc::new(SourceState::default());
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        let body = reqwest::Body::wrap_stream(source_body(body, Arc::clone(&source), ended_tx));
        let send = self
            .inner
            .client
            .http()
            .post(prepared.url)
            .headers(prepared.headers)
            .body(body)
            .send();
        let timeout = self.inner.client.request_timeout();
        let head_deadline = async move {
            match ended_rx.await {
                Ok(()) => tokio::time::sleep(timeout).await,
                // The body did not end (it failed, or the request ended first).
                Err(_) => std::future::pending().await,
            }
        };
        let sent = tokio::select! {
            sent = send => sent,
            () = head_deadline => {
                return Err(Error::Timeout {
                    what: format!("the answer to a streamed append to {}", self.inner.display),
                })
            }
        };
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                return Err(match source.failure() {
                    Some(message) => Error::invalid(format!(
                        "the body of a streamed append failed after {} bytes were sent, so the \
                         request was aborted before its end and nothing of it is stored: {message}",
                        source.sent.load(Ordering::Relaxed)
                    )),
                    None => transport_error(e, &self.inner.display),
                })
            }
        };
        if !resp.status().is_success() {
            return Err(error_from_response(
                resp,
                &self.inner.display,
                Op::Append {
                    with_seq: opts.seq.is_some(),
                },
            )
            .await);
        }
        let headers = resp.headers();
        Ok(AppendResult {
            next_offset: header_offset(headers),
            closed: header_true(headers, h::STREAM_CLOSED),
        })
    }

    async fn append_content_type(&self, opts: &AppendOptions) -> Result<String> {
        match &opts.content_type {
            Some(ct) => Ok(ct.clone()),
            None => self.resolve_content_type().await,
        }
    }

    async fn post(
        &self,
        payload: Bytes,
        ct: &str,
        opts: &AppendOptions,
        close: bool,
    ) -> Result<AppendResult> {
        let extras = self.inner.extras.merged(&opts.extras);
        let mut hs: Vec<(&str, &str)> = Vec::with_capacity(3);
        if !payload.is_empty() {
            hs.push(("Content-Type", ct));
        }
        if let Some(s) = &opts.seq {
            hs.push((h::STREAM_SEQ, s));
        }
        if close {
            hs.push((h::STREAM_CLOSED, "true"));
        }
        let op = if close && payload.is_empty() {
            Op::Close
        } else {
            Op::Append {
                with_seq: opts.seq.is_some(),
            }
        };
        // Only a close without a body is idempotent; appends retry only when opted in.
        let retry = if op == Op::Close {
            Some(&self.inner.retry)
        } else {
            self.inner.append_retry.as_ref()
        };
        let resp = self
            .sender(Method::POST, &extras, &hs, Body::Bytes(payload), retry, op)
            .send()
            .await?;
        let headers = resp.headers();
        Ok(AppendResult {
            next_offset: header_offset(headers),
            closed: header_true(headers, h::STREAM_CLOSED),
        })
    }

    /// Closes the stream (`POST` with `Stream-Closed: true`). Closing a closed stream succeeds.
    pub async fn close(&self) -> Result<CloseResult> {
        self.close_with(CloseOptions::default()).await
    }

    /// Closes the stream, optionally appending a final message in the same request.
    ///
    /// With a final message on an already closed stream the message cannot be stored, so the
    /// result is [`Error::StreamClosed`].
    pub async fn close_with(&self, opts: CloseOptions) -> Result<CloseResult> {
        let append_opts = AppendOptions {
            seq: None,
            content_type: opts.content_type.clone(),
            extras: opts.extras,
        };
        let (payload, ct) = match opts.body {
            Some(b) => {
                let ct = self.append_content_type(&append_opts).await?;
                let payload = if is_json_content_type(&ct) {
                    json_batch(std::iter::once(b))?
                } else {
                    b
                };
                (payload, ct)
            }
            None => (Bytes::new(), String::new()),
        };
        let r = self.post(payload, &ct, &append_opts, true).await?;
        Ok(CloseResult {
            final_offset: r.next_offset,
        })
    }
}

/// What a streamed append's body did: bytes handed to the connection, and the message of the
/// error item that ended it, if one did.
#[derive(Default)]
struct SourceState {
    sent: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl SourceState {
    fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|g| g.clone())
    }
}

/// The body of a streamed append: `body` without its empty items (an empty chunk would end a
/// chunked body early), recording into `state`, and signalling `ended` at its end.
fn source_body<S, E>(
    body: S,
    state: Arc<SourceState>,
    ended: tokio::sync::oneshot::Sender<()>,
) -> impl Stream<Item = std::result::Result<Bytes, Box<dyn std::error::Error + Send + Sync>>> + Send
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    futures_util::stream::unfold(
        (Box::pin(body), state, Some(ended)),
        |(mut body, state, mut ended)| async move {
            loop {
                match body.next().await {
                    Some(Ok(b)) if b.is_empty() => continue,
                    Some(Ok(b)) => {
                        state.sent.fetch_add(b.len() as u64, Ordering::Relaxed);
                        return Some((Ok(b), (body, state, ended)));
                    }
                    Some(Err(e)) => {
                        let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                        if let Ok(mut g) = state.failure.lock() {
                            *g = Some(e.to_string());
                        }
                        return Some((Err(e), (body, state, None)));
                    }
                    None => {
                        if let Some(tx) = ended.take() {
                            let _ = tx.send(());
                        }
                        return None;
                    }
                }
            }
        },
    )
}

/// Joins pre-serialized JSON messages into one array body without parsing them.
pub(crate) fn json_batch<I: IntoIterator<Item = Bytes>>(messages: I) -> Result<Bytes> {
    let messages = messages.into_iter();
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u8(b'[');
    let mut n = 0usize;
    for m in messages {
        if m.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid(format!(
                "JSON message {n} is empty: each message must be one JSON value"
            )));
        }
        if n > 0 {
            buf.put_u8(b',');
        }
        buf.put(m);
        n += 1;
    }
    if n == 0 {
        return Err(Error::invalid("cannot append an empty batch"));
    }
    buf.put_u8(b']');
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_batches() {
        let b = json_batch([
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(b"[1,2]"),
        ])
        .unwrap();
        assert_eq!(&b[..], b"[{\"a\":1},[1,2]]");
        assert!(json_batch(Vec::<Bytes>::new()).is_err());
        assert!(json_batch([Bytes::from_static(b"  ")]).is_err());
    }

    #[test]
    fn builder_refuses_bad_urls() {
        assert!(matches!(
            DurableStream::new("not a url"),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            DurableStream::new("ftp://h/x"),
            Err(Error::InvalidArgument { .. })
        ));
        let s = DurableStream::builder("http://127.0.0.1:1/s")
            .content_type("application/json")
            .build()
            .unwrap();
        assert!(s.is_json());
    }
}
