//! JavaScript option values into core values: bodies, headers and parameters (fixed or
//! computed by a JavaScript function for every request), retry policies and error hooks.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use durable_streams_client::{
    AttemptObserver, Error, ErrorDecision, ErrorHook, FailedAttempt, RequestExtras, RetryPolicy,
    Value,
};
use futures_util::Stream;
use napi::bindgen_prelude::{Buffer, Either, Promise, Uint8Array, Uint8ArraySlice};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

use crate::error;

/// The bytes of a body (a `Buffer`'s are copied: its memory belongs to JavaScript).
pub(crate) fn body(b: Either<String, Buffer>) -> Bytes {
    match b {
        Either::A(s) => text(s),
        Either::B(buf) => Bytes::from(Vec::<u8>::from(buf)),
    }
}

/// A producer message: a string, or any `Uint8Array` (a `Buffer` is one).
///
/// The typed array is only borrowed for the call, so taking it costs no napi reference (a
/// `Buffer` argument creates and deletes one per call); either way the bytes are copied once.
pub(crate) type Message<'a> = Either<String, Uint8ArraySlice<'a>>;

/// The bytes of a producer message.
pub(crate) fn message(m: Message<'_>) -> Bytes {
    match m {
        Either::A(s) => text(s),
        Either::B(bytes) => Bytes::copy_from_slice(&bytes),
    }
}

/// A string's bytes, taken over by `Bytes` as they are: the buffer is first shrunk to the
/// length (napi-rs leaves one spare byte for a NUL), since `Bytes::from(Vec)` allocates a
/// shared header when capacity and length differ.
fn text(s: String) -> Bytes {
    Bytes::from(s.into_bytes().into_boxed_slice())
}

/// Calls the TypeScript layer's function number `n` (weakly: it never keeps Node alive).
pub type Resolver = ThreadsafeFunction<u32, Promise<String>, u32, Status, false, true>;

/// Called with an error's JSON description; resolves to `null` (give up) or the JSON of
/// `{headers?, params?}` to retry with.
pub type HookFn = ThreadsafeFunction<String, Promise<Option<String>>, String, Status, false, true>;

/// Called with an operation's name after each failed attempt of a handle's request.
pub type ObserverFn = ThreadsafeFunction<String, (), String, Status, false, true>;

/// Resolves to a streamed body's next chunk, or `null` at its end.
pub type PullFn = ThreadsafeFunction<(), Promise<Option<Uint8Array>>, (), Status, false, true>;

/// The core observer calling `f` (awaited, so it runs before the request goes on; the
/// TypeScript layer's function never throws).
pub(crate) fn observer(f: ObserverFn) -> AttemptObserver {
    let f = Arc::new(f);
    AttemptObserver::new(move |failed: FailedAttempt| {
        let f = Arc::clone(&f);
        async move {
            let _ = f
                .call_async_catch(failed.operation.as_str().to_owned())
                .await;
        }
    })
}

/// A streamed body pulled from JavaScript one chunk at a time: the next call happens only when
/// the core asks for the next chunk. A rejected pull ends the body with its message.
pub(crate) fn pulled(
    pull: PullFn,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some(pull), |pull| async move {
        let f = pull?;
        let next = match f.call_async_catch(()).await {
            Ok(promise) => promise.await,
            Err(e) => Err(e),
        };
        match next {
            Ok(Some(chunk)) => Some((Ok(Bytes::copy_from_slice(&chunk)), Some(f))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.reason)), None)),
        }
    })
}

/// One header or parameter: a fixed `value`, or the index of the function computing it.
#[napi(object, object_to_js = false)]
pub struct Entry {
    /// The header or parameter name.
    pub name: String,
    /// A fixed value.
    pub value: Option<String>,
    /// The argument passed to `resolve` to compute the value for each request.
    pub computed: Option<u32>,
}

/// Headers and parameters of a handle, a read or a single request.
#[napi(object, object_to_js = false)]
pub struct Extras {
    /// Headers.
    pub headers: Option<Vec<Entry>>,
    /// Query parameters.
    pub params: Option<Vec<Entry>>,
    /// Computes the values of computed entries.
    #[napi(ts_type = "(n: number) => Promise<string>")]
    pub resolve: Option<Resolver>,
}

/// Core extras from the JavaScript description.
pub(crate) fn extras(spec: Option<Extras>) -> napi::Result<RequestExtras> {
    let mut out = RequestExtras::new();
    let Some(spec) = spec else { return Ok(out) };
    let resolve = spec.resolve.map(Arc::new);
    for e in spec.headers.unwrap_or_default() {
        let v = value(&e, resolve.as_ref())?;
        out.set_header(e.name, v);
    }
    for e in spec.params.unwrap_or_default() {
        let v = value(&e, resolve.as_ref())?;
        out.set_param(e.name, v);
    }
    Ok(out)
}

fn value(e: &Entry, resolve: Option<&Arc<Resolver>>) -> napi::Result<Value> {
    match (&e.value, e.computed, resolve) {
        (Some(v), _, _) => Ok(Value::Fixed(v.clone())),
        (None, Some(n), Some(f)) => {
            let (f, name) = (Arc::clone(f), Arc::<str>::from(e.name.as_str()));
            Ok(Value::computed(move || {
                let (f, name) = (Arc::clone(&f), Arc::clone(&name));
                async move {
                    let failed = |e: napi::Error| Error::InvalidArgument {
                        message: format!("the function computing {name:?} failed: {}", e.reason),
                    };
                    f.call_async(n).await.map_err(failed)?.await.map_err(failed)
                }
            }))
        }
        _ => Err(error::invalid(format!(
            "{:?} needs a string value or a function",
            e.name
        ))),
    }
}

/// Retry (backoff) options; missing values keep the core's defaults.
#[napi(object, object_to_js = false)]
pub struct Backoff {
    /// The first delay's upper bound in milliseconds (default 100).
    pub initial_delay: Option<f64>,
    /// The largest delay in milliseconds (default 60000).
    pub max_delay: Option<f64>,
    /// The growth factor, at least 1 (default 1.3).
    pub multiplier: Option<f64>,
    /// Retries after the first attempt; `Infinity` or absent for no limit.
    pub max_retries: Option<f64>,
}

/// The core retry policy for `b`, checked.
pub(crate) fn retry(b: Option<Backoff>) -> napi::Result<Option<RetryPolicy>> {
    let Some(b) = b else { return Ok(None) };
    let d = RetryPolicy::default();
    let max_retries = match b.max_retries {
        Some(n) if n.is_finite() => Some(if n.fract() == 0.0 {
            n as i64
        } else {
            return Err(error::invalid(format!(
                "maxRetries must be a whole number, got {n}"
            )));
        }),
        Some(n) if n < 0.0 => Some(-1),
        _ => None,
    };
    RetryPolicy::from_millis(
        b.initial_delay
            .unwrap_or(d.initial_delay.as_secs_f64() * 1000.0),
        b.max_delay.unwrap_or(d.max_delay.as_secs_f64() * 1000.0),
        b.multiplier.unwrap_or(d.multiplier),
        max_retries,
    )
    .map(Some)
    .map_err(error::to_napi)
}

/// The core error hook calling `f` after every failed attempt: an answer retries with its
/// extras, `null` leaves it to the retry policy, and a hook that throws ends the read with the
/// original error.
pub(crate) fn hook(f: HookFn) -> ErrorHook {
    let f = Arc::new(f);
    ErrorHook::decide(move |failed: FailedAttempt| {
        let f = Arc::clone(&f);
        async move {
            let answer = match f.call_async(error::describe(&failed.error)).await {
                Ok(promise) => match promise.await {
                    Ok(Some(answer)) => answer,
                    Ok(None) => return ErrorDecision::Default,
                    Err(_) => return ErrorDecision::Stop,
                },
                Err(_) => return ErrorDecision::Stop,
            };
            let Ok(parsed) = serde_json::from_str::<HookAnswer>(&answer) else {
                return ErrorDecision::Stop;
            };
            let mut out = RequestExtras::new();
            for (k, v) in parsed.headers.unwrap_or_default() {
                out.set_header(k, v);
            }
            for (k, v) in parsed.params.unwrap_or_default() {
                out.set_param(k, v);
            }
            ErrorDecision::Retry(out)
        }
    })
}

#[derive(serde::Deserialize)]
struct HookAnswer {
    headers: Option<HashMap<String, String>>,
    params: Option<HashMap<String, String>>,
}
