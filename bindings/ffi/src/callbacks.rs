//! Code the foreign side hands in: header values computed for every request, the read error
//! hook, the producer's error callback, the handle's failed-attempt observer and the chunks of
//! a streamed append.
//!
//! Each is a foreign trait (a Kotlin interface, a Swift protocol). The core calls them from
//! its tokio tasks; the foreign code runs on the runtime's blocking threads instead, so a slow
//! callback never holds up a worker thread, and an exception it throws becomes an error.

use std::collections::HashMap;
use std::sync::Arc;

use durable_streams_client as core;
use durable_streams_client::{RequestExtras, Value};

use crate::error::DurableStreamError;
use crate::runtime;
use crate::values::extras;

/// A header value computed for every request (a token that expires, say).
#[uniffi::export(with_foreign)]
pub trait HeaderValue: Send + Sync {
    /// The value for the next request. Runs on a background thread; an exception fails that
    /// request (with `INVALID_ARGUMENT`, naming the header).
    fn compute(&self) -> Result<String, DurableStreamError>;
}

/// What a read error hook asks for: the failed request again, with these headers and query
/// parameters merged over the read's (they stay for the rest of the read).
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct RetryWith {
    /// Headers to set from now on.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Query parameters to set from now on.
    #[uniffi(default)]
    pub params: HashMap<String, String>,
}

/// Decides what happens after every failed attempt of a read request, live ones included.
#[uniffi::export(with_foreign)]
pub trait ReadErrorHandler: Send + Sync {
    /// Returns `RetryWith` to send the request again (after the retry pause while the retry
    /// policy would retry anyway, otherwise at once), or nothing to leave it to the retry policy,
    /// which ends the read with `error` once it gives up. Runs on a background thread; an
    /// exception ends the read with `error`.
    fn on_error(&self, error: DurableStreamError) -> Result<Option<RetryWith>, DurableStreamError>;
}

/// Told about every producer batch that failed for good.
#[uniffi::export(with_foreign)]
pub trait ProducerErrorHandler: Send + Sync {
    /// Called once per failed batch, on a background thread; the producer does not wait for
    /// it. An exception is ignored.
    fn on_error(&self, error: DurableStreamError) -> Result<(), DurableStreamError>;
}

/// Told about every failed attempt of a handle's requests (create, head, append, close,
/// delete), retried or not: for metrics or a "reconnecting" notice.
#[uniffi::export(with_foreign)]
pub trait FailedAttemptHandler: Send + Sync {
    /// `attempt` counts the request's failed attempts, this one included (1 for the first);
    /// `will_retry` says whether the retry policy tries again; `operation` is `create`, `head`,
    /// `append`, `close` or `delete`. Runs on a background thread before the retry pause (or the
    /// failure), which waits for it; it cannot change what happens next, and an exception is
    /// ignored.
    fn on_failed_attempt(
        &self,
        error: DurableStreamError,
        attempt: u32,
        will_retry: bool,
        operation: String,
    ) -> Result<(), DurableStreamError>;
}

/// The body of a streamed append (`append_stream`), pulled one chunk at a time.
#[uniffi::export(with_foreign)]
pub trait ChunkSource: Send + Sync {
    /// The next chunk, or nothing at the end. Called on a background thread (it may block),
    /// only once the connection has taken the chunk before. An exception aborts the request
    /// before its end, so nothing of it is stored.
    fn next_chunk(&self) -> Result<Option<Vec<u8>>, DurableStreamError>;
}

/// The chunks `source` hands out until its end or its first error; each call runs on a blocking
/// thread. An error ends the body (the core aborts the request with its message).
pub(crate) fn chunk_body(
    source: Arc<dyn ChunkSource>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, String>> + Send + 'static {
    futures_util::stream::unfold(Some(source), |state| async move {
        let source = state?;
        let pulled = match runtime::handle() {
            Ok(handle) => {
                let s = Arc::clone(&source);
                match handle.spawn_blocking(move || s.next_chunk()).await {
                    Ok(Ok(chunk)) => Ok(chunk),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the source's call did not finish: {e}")),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match pulled {
            Ok(Some(chunk)) => Some((Ok(bytes::Bytes::from(chunk)), Some(source))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// The handle's failed-attempt observer, calling `handler` on a blocking thread.
pub(crate) fn attempt_observer(handler: Arc<dyn FailedAttemptHandler>) -> core::AttemptObserver {
    core::AttemptObserver::new(move |failed: core::FailedAttempt| {
        let handler = handler.clone();
        async move {
            let Ok(handle) = runtime::handle() else {
                return;
            };
            let op = failed.operation.as_str().to_owned();
            // The outcome (an exception included) changes nothing.
            let _ = handle
                .spawn_blocking(move || {
                    handler.on_failed_attempt(
                        failed.error.into(),
                        failed.attempt,
                        failed.will_retry,
                        op,
                    )
                })
                .await;
        }
    })
}

/// Fixed and computed headers, and query parameters, as core extras.
pub(crate) fn extras_with(
    headers: HashMap<String, String>,
    computed: HashMap<String, Arc<dyn HeaderValue>>,
    params: HashMap<String, String>,
) -> RequestExtras {
    let mut out = extras(headers, params);
    for (name, value) in computed {
        out.set_header(name.clone(), computed_value(name, value));
    }
    out
}

fn computed_value(name: String, value: Arc<dyn HeaderValue>) -> Value {
    let name: Arc<str> = Arc::from(name);
    Value::computed(move || {
        let value = value.clone();
        let name = name.clone();
        async move {
            let failed = |reason: String| core::Error::InvalidArgument {
                message: format!("computing the header {name} failed: {reason}"),
            };
            let handle = runtime::handle().map_err(|e| failed(e.to_string()))?;
            match handle.spawn_blocking(move || value.compute()).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(failed(e.to_string())),
                Err(e) => Err(failed(e.to_string())),
            }
        }
    })
}

/// The read options' error hook, calling `handler` on a blocking thread.
pub(crate) fn read_hook(
    options: core::ReadOptions,
    handler: Arc<dyn ReadErrorHandler>,
) -> core::ReadOptions {
    let mut options = options;
    options.on_error = Some(core::ErrorHook::decide(
        move |failed: core::FailedAttempt| {
            let handler = handler.clone();
            async move {
                let Ok(handle) = runtime::handle() else {
                    return core::ErrorDecision::Stop;
                };
                let asked = handle
                    .spawn_blocking(move || handler.on_error(failed.error.into()))
                    .await;
                match asked {
                    Ok(Ok(Some(retry))) => {
                        core::ErrorDecision::Retry(extras(retry.headers, retry.params))
                    }
                    Ok(Ok(None)) => core::ErrorDecision::Default,
                    _ => core::ErrorDecision::Stop,
                }
            }
        },
    ));
    options
}

/// The producer's error callback: hands each error to `handler` on a blocking thread.
pub(crate) fn producer_callback(
    handler: Arc<dyn ProducerErrorHandler>,
) -> impl Fn(&core::Error) + Send + Sync + 'static {
    move |error: &core::Error| {
        let handler = handler.clone();
        let error = DurableStreamError::from(error.clone());
        if let Ok(handle) = runtime::handle() {
            // The outcome (an exception included) is of no use to the producer.
            drop(handle.spawn_blocking(move || handler.on_error(error)));
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for DurableStreamError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        DurableStreamError::internal(format!("a callback threw: {}", e.reason))
    }
}
