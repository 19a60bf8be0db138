//! Records shared by several objects: retry policies and extra headers or parameters.

use std::collections::HashMap;

use durable_streams_client::{RequestExtras, RetryPolicy};

use crate::error::DurableStreamError;

/// How failed requests are retried: full-jitter exponential backoff that honours
/// `Retry-After`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RetryOptions {
    /// The first delay, in milliseconds.
    #[uniffi(default = 100.0)]
    pub initial_delay_ms: f64,
    /// The largest delay, in milliseconds.
    #[uniffi(default = 60000.0)]
    pub max_delay_ms: f64,
    /// The factor between two delays (at least 1).
    #[uniffi(default = 1.3)]
    pub multiplier: f64,
    /// How many retries at most; none means no limit.
    #[uniffi(default = None)]
    pub max_retries: Option<i64>,
}

impl TryFrom<RetryOptions> for RetryPolicy {
    type Error = DurableStreamError;

    fn try_from(o: RetryOptions) -> Result<Self, Self::Error> {
        Ok(RetryPolicy::from_millis(
            o.initial_delay_ms,
            o.max_delay_ms,
            o.multiplier,
            o.max_retries,
        )?)
    }
}

/// Checks retry options without using them (what a settings screen or a test needs).
#[uniffi::export]
pub fn validate_retry_options(options: RetryOptions) -> Result<(), DurableStreamError> {
    RetryPolicy::try_from(options).map(drop)
}

/// Fixed headers and query parameters as core extras.
pub(crate) fn extras(
    headers: HashMap<String, String>,
    params: HashMap<String, String>,
) -> RequestExtras {
    let mut out = RequestExtras::new();
    for (name, value) in headers {
        out.set_header(name, value);
    }
    for (name, value) in params {
        out.set_param(name, value);
    }
    out
}

/// An offset as the foreign side sees it.
pub(crate) fn offset_string(o: Option<durable_streams_client::Offset>) -> Option<String> {
    o.map(|o| o.as_str().to_owned())
}
