//! napi-rs bindings of `durable-streams-client`: the native half of the npm package
//! `durable-streams-client`.
//!
//! The classes here are deliberately low-level (`Native*`): the package's TypeScript layer
//! (node/src) turns them into the API of `@durable-streams/client` (option objects, error
//! classes, `AbortSignal`, async iterators). Every protocol rule stays in the core.

mod error;
mod fast;
mod producer;
mod response;
mod runtime;
mod stream;
mod subscriptions;
mod text;
mod values;

pub use error::{error_codes, error_for_code};
pub use producer::{producer_append_bytes, NativeProducer};
pub use response::{NativeBatch, NativeReader, NativeResponse};
pub use runtime::CancelToken;
pub use stream::NativeStream;
pub use subscriptions::{
    webhook_done, NativeSubscriptions, NativeWake, NativeWebhookVerifier, NativeWorkQueue,
};

/// The core's default retry policy, in the shape of `BackoffOptions` (`maxRetries` absent:
/// unbounded). `BackoffDefaults` in node/src/constants.ts reads it, so the defaults live only
/// in the core.
#[napi_derive::napi(object)]
pub struct NativeBackoffDefaults {
    /// Upper bound of the first delay, in milliseconds.
    pub initial_delay: f64,
    /// Upper bound of any delay, in milliseconds.
    pub max_delay: f64,
    /// Growth factor of the bound.
    pub multiplier: f64,
    /// Retries after the first attempt; absent when unbounded.
    pub max_retries: Option<u32>,
}

/// See [`NativeBackoffDefaults`].
#[napi_derive::napi]
pub fn backoff_defaults() -> NativeBackoffDefaults {
    let p = durable_streams_client::RetryPolicy::default();
    NativeBackoffDefaults {
        initial_delay: p.initial_delay.as_secs_f64() * 1000.0,
        max_delay: p.max_delay.as_secs_f64() * 1000.0,
        multiplier: p.multiplier,
        max_retries: p.max_retries,
    }
}
