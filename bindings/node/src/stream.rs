//! `NativeStream`: a handle on one stream URL (create, append, head, close, delete, read).

use durable_streams_client::{
    AppendOptions, AppendResult, CloseOptions, CreateOptions, CreateStatus, DurableStream,
    LiveMode, Offset, ReadOptions, SseResilience,
};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use std::time::Duration;

use crate::error;
use crate::response::NativeResponse;
use crate::runtime::{spawn, CancelToken};
use crate::values::{self, Backoff, Extras, HookFn};
use napi::bindgen_prelude::{Buffer, Either};

/// Options of a handle.
#[napi(object, object_to_js = false)]
pub struct HandleOptions {
    /// The stream's content type, when known in advance.
    pub content_type: Option<String>,
    /// Headers and parameters sent with every request of the handle.
    pub extras: Option<Extras>,
    /// Retries of the handle's idempotent requests (create, head, delete, close, reads).
    pub backoff: Option<Backoff>,
    /// Retries of plain appends (none by default: a retried append can be stored twice).
    pub append_backoff: Option<Backoff>,
    /// Called with the operation's name (`create`, `head`, `append`, `close`, `delete`) after
    /// every failed attempt of the handle's requests; reads have their own hook.
    #[napi(ts_type = "(operation: string) => void")]
    pub on_failed_attempt: Option<values::ObserverFn>,
}

/// Options of `create`.
#[napi(object, object_to_js = false)]
pub struct NativeCreateOptions {
    /// The content type (default: the handle's, else `application/octet-stream`).
    pub content_type: Option<String>,
    /// Sliding time-to-live in seconds: a whole number, at least 0.
    pub ttl_seconds: Option<f64>,
    /// Absolute expiry, RFC 3339.
    pub expires_at: Option<String>,
    /// Create the stream closed.
    pub closed: Option<bool>,
    /// Initial content.
    pub body: Option<Either<String, Buffer>>,
    /// Headers and parameters of this request.
    pub extras: Option<Extras>,
}

/// The result of `create`.
#[napi(object)]
pub struct CreateInfo {
    /// `true` when the stream was created (201), `false` when an identical one existed (200).
    pub created: bool,
    /// The content type the server reported.
    pub content_type: Option<String>,
    /// The tail offset.
    pub offset: Option<String>,
    /// Whether the stream is closed.
    pub closed: bool,
}

/// Stream metadata.
#[napi(object)]
pub struct HeadInfo {
    /// The content type.
    pub content_type: Option<String>,
    /// The tail offset.
    pub offset: Option<String>,
    /// The sliding TTL in seconds.
    pub ttl_seconds: Option<f64>,
    /// The absolute expiry.
    pub expires_at: Option<String>,
    /// Whether the stream is closed.
    pub stream_closed: bool,
    /// The ETag.
    pub etag: Option<String>,
}

/// Options of `append` and `close`.
#[napi(object, object_to_js = false)]
pub struct NativeAppendOptions {
    /// `Stream-Seq` (append only).
    pub seq: Option<String>,
    /// The content type sent.
    pub content_type: Option<String>,
    /// Headers and parameters of this request.
    pub extras: Option<Extras>,
}

/// The result of an append.
#[napi(object)]
pub struct AppendInfo {
    /// The tail offset after the append.
    pub offset: Option<String>,
    /// Whether the stream is now closed.
    pub stream_closed: bool,
}

/// The result of a close.
#[napi(object)]
pub struct CloseInfo {
    /// The final offset.
    pub final_offset: Option<String>,
}

/// SSE reconnection settings (milliseconds).
#[napi(object, object_to_js = false)]
pub struct NativeSseResilience {
    /// A connection shorter than this counts as short.
    pub min_connection_duration: Option<f64>,
    /// Short connections in a row before falling back to long-poll.
    pub max_short_connections: Option<f64>,
    /// The first reconnection delay's upper bound.
    pub backoff_base_delay: Option<f64>,
    /// The largest reconnection delay.
    pub backoff_max_delay: Option<f64>,
}

/// Options of a read.
#[napi(object, object_to_js = false)]
pub struct NativeReadOptions {
    /// Where to start (`-1`, `now` or a saved offset).
    pub offset: Option<String>,
    /// `off`, `auto`, `long-poll` or `sse`.
    pub live: Option<String>,
    /// Treat the stream as JSON whatever its content type.
    pub json: Option<bool>,
    /// Headers and parameters of this read.
    pub extras: Option<Extras>,
    /// Retries of failed requests.
    pub backoff: Option<Backoff>,
    /// SSE reconnection settings.
    pub sse_resilience: Option<NativeSseResilience>,
    /// Consulted after every failed attempt of a request.
    #[napi(ts_type = "(error: string) => Promise<string | null>")]
    pub on_error: Option<HookFn>,
    /// The most response data held before it is handed on (bytes).
    pub max_chunk_bytes: Option<f64>,
    /// The most data the accumulating consumers collect (bytes).
    pub max_read_bytes: Option<f64>,
}

/// A handle on one stream URL. Creating it sends nothing.
#[napi]
pub struct NativeStream {
    inner: DurableStream,
}

fn ms(name: &str, v: Option<f64>, default: Duration) -> napi::Result<Duration> {
    match v {
        None => Ok(default),
        Some(v) if (0.0..=1e12).contains(&v) => Ok(Duration::from_secs_f64(v / 1000.0)),
        Some(v) => Err(error::invalid(format!(
            "{name} must be a non-negative number of milliseconds, got {v}"
        ))),
    }
}

pub(crate) fn read_options(o: Option<NativeReadOptions>) -> napi::Result<ReadOptions> {
    let mut out = ReadOptions::new();
    let Some(o) = o else { return Ok(out) };
    if let Some(offset) = o.offset {
        out.offset = Offset::from(offset);
    }
    // Unset: the core's default (not copied here).
    match o.live.as_deref() {
        None => {}
        Some("auto") => out.live = LiveMode::Auto,
        Some("off") => out.live = LiveMode::Off,
        Some("long-poll") => out.live = LiveMode::LongPoll,
        Some("sse") => out.live = LiveMode::Sse,
        Some(other) => {
            return Err(error::invalid(format!(
                "live must be false, true, \"long-poll\" or \"sse\", got {other:?}"
            )))
        }
    }
    out.json = o.json.unwrap_or(false);
    out.extras = values::extras(o.extras)?;
    if let Some(policy) = values::retry(o.backoff)? {
        out.retry = policy;
    }
    if let Some(s) = o.sse_resilience {
        let d = SseResilience::default();
        out.sse = SseResilience {
            min_connection_duration: ms(
                "minConnectionDuration",
                s.min_connection_duration,
                d.min_connection_duration,
            )?,
            max_short_connections: s
                .max_short_connections
                .map(short_connections)
                .transpose()?
                .unwrap_or(d.max_short_connections),
            backoff_base_delay: ms(
                "backoffBaseDelay",
                s.backoff_base_delay,
                d.backoff_base_delay,
            )?,
            backoff_max_delay: ms("backoffMaxDelay", s.backoff_max_delay, d.backoff_max_delay)?,
        };
    }
    out.on_error = o.on_error.map(values::hook);
    out.max_chunk_bytes = byte_limit("max_chunk_bytes (maxChunkBytes)", o.max_chunk_bytes)?;
    out.max_read_bytes = byte_limit("max_read_bytes (maxReadBytes)", o.max_read_bytes)?;
    Ok(out)
}

/// A TTL from a JavaScript number: a whole number of seconds, at least 0 (a negative or
/// fractional one would otherwise be wrapped or cut by the number conversion).
fn ttl_seconds(v: f64) -> napi::Result<u64> {
    if v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(error::invalid(format!(
            "ttlSeconds must be a whole number of seconds, at least 0, got {v}"
        )))
    }
}

/// `maxShortConnections` from a JavaScript number: a whole number from 1 (a negative or
/// fractional one would otherwise be wrapped or cut by the number conversion).
fn short_connections(v: f64) -> napi::Result<u32> {
    if v >= 1.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
        Ok(v as u32)
    } else {
        Err(error::invalid(format!(
            "sseResilience.maxShortConnections must be a whole number, at least 1, got {v}"
        )))
    }
}

/// The options of an append or a streamed append.
fn append_options(options: Option<NativeAppendOptions>) -> napi::Result<AppendOptions> {
    let mut opts = AppendOptions::default();
    if let Some(o) = options {
        opts.seq = o.seq;
        opts.content_type = o.content_type;
        opts.extras = values::extras(o.extras)?;
    }
    Ok(opts)
}

impl From<AppendResult> for AppendInfo {
    fn from(r: AppendResult) -> Self {
        AppendInfo {
            offset: r.next_offset.map(|o| o.to_string()),
            stream_closed: r.closed,
        }
    }
}

/// A size limit in bytes: a positive integer, or absent for the core's default (0).
/// A byte limit as Node passes it: unset stays unset (the core's default); a value is checked
/// by the core, whose error names the option.
fn byte_limit(name: &str, v: Option<f64>) -> napi::Result<Option<usize>> {
    v.map(|v| durable_streams_client::byte_count(name, v))
        .transpose()
        .map_err(error::to_napi)
}

impl NativeStream {
    pub(crate) fn inner(&self) -> &DurableStream {
        &self.inner
    }
}

#[napi]
impl NativeStream {
    /// A handle for `url`.
    #[napi(constructor)]
    pub fn new(url: String, options: Option<HandleOptions>) -> napi::Result<Self> {
        let mut b = DurableStream::builder(url);
        if let Some(o) = options {
            if let Some(ct) = o.content_type {
                b = b.content_type(ct);
            }
            b = b.extras(values::extras(o.extras)?);
            if let Some(policy) = values::retry(o.backoff)? {
                b = b.retry(policy);
            }
            if let Some(policy) = values::retry(o.append_backoff)? {
                b = b.append_retry(policy);
            }
            if let Some(f) = o.on_failed_attempt {
                b = b.on_failed_attempt(values::observer(f));
            }
        }
        Ok(Self {
            inner: b.build().map_err(error::to_napi)?,
        })
    }

    /// The stream URL.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.url().to_string()
    }

    /// The content type, when known (from the options, create, head or a read).
    #[napi(getter)]
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type()
    }

    /// Creates the stream (`PUT`).
    #[napi(ts_return_type = "Promise<CreateInfo>")]
    pub fn create<'e>(
        &self,
        env: &'e Env,
        options: Option<NativeCreateOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, CreateInfo>> {
        let mut opts = CreateOptions::default();
        if let Some(o) = options {
            opts.content_type = o.content_type;
            opts.ttl_seconds = o.ttl_seconds.map(ttl_seconds).transpose()?;
            opts.expires_at = o.expires_at;
            opts.closed = o.closed.unwrap_or(false);
            opts.body = o.body.map(values::body);
            opts.extras = values::extras(o.extras)?;
        }
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            let r = s.create(opts).await?;
            Ok(CreateInfo {
                created: r.status == CreateStatus::Created,
                content_type: r.content_type,
                offset: r.next_offset.map(|o| o.to_string()),
                closed: r.closed,
            })
        })
    }

    /// The stream's metadata (`HEAD`).
    #[napi(ts_return_type = "Promise<HeadInfo>")]
    pub fn head<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, HeadInfo>> {
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            let h = s.head().await?;
            Ok(HeadInfo {
                content_type: h.content_type,
                offset: h.next_offset.map(|o| o.to_string()),
                ttl_seconds: h.ttl_seconds.map(|t| t as f64),
                expires_at: h.expires_at,
                stream_closed: h.closed,
                etag: h.etag,
            })
        })
    }

    /// Appends one message (`POST`).
    #[napi(ts_return_type = "Promise<AppendInfo>")]
    pub fn append<'e>(
        &self,
        env: &'e Env,
        body: Either<String, Buffer>,
        options: Option<NativeAppendOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, AppendInfo>> {
        let opts = append_options(options)?;
        let body = values::body(body);
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            Ok(AppendInfo::from(s.append_with(body, opts).await?))
        })
    }

    /// Appends what `pull` yields as one streamed request: `pull` is called for the next
    /// chunk only when the connection has taken the previous one, and resolves to `null` at
    /// the end; a rejection aborts the request (nothing is stored). Never retried.
    #[napi(ts_return_type = "Promise<AppendInfo>")]
    pub fn append_stream<'e>(
        &self,
        env: &'e Env,
        #[napi(ts_arg_type = "() => Promise<Uint8Array | null>")] pull: values::PullFn,
        options: Option<NativeAppendOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, AppendInfo>> {
        let opts = append_options(options)?;
        let body = values::pulled(pull);
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            Ok(AppendInfo::from(s.append_stream(body, opts).await?))
        })
    }

    /// Closes the stream, with an optional final message.
    #[napi(ts_return_type = "Promise<CloseInfo>")]
    pub fn close<'e>(
        &self,
        env: &'e Env,
        body: Option<Either<String, Buffer>>,
        options: Option<NativeAppendOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, CloseInfo>> {
        let mut opts = CloseOptions {
            body: body.map(values::body),
            ..CloseOptions::default()
        };
        if let Some(o) = options {
            opts.content_type = o.content_type;
            opts.extras = values::extras(o.extras)?;
        }
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            let r = s.close_with(opts).await?;
            Ok(CloseInfo {
                final_offset: r.final_offset.map(|o| o.to_string()),
            })
        })
    }

    /// Deletes the stream.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let s = self.inner.clone();
        spawn(env, cancel, async move { s.delete().await })
    }

    /// Starts a read: sends the first request and resolves to the response to consume.
    #[napi(ts_return_type = "Promise<NativeResponse>")]
    pub fn stream<'e>(
        &self,
        env: &'e Env,
        options: Option<NativeReadOptions>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, NativeResponse>> {
        let opts = read_options(options)?;
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            s.stream(opts).await.map(NativeResponse::new)
        })
    }
}
