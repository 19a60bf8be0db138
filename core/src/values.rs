//! Header and query-parameter values that are fixed or computed for each request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The future a computed value returns.
pub type ValueFuture = Pin<Box<dyn Future<Output = Result<String>> + Send + 'static>>;

type ComputeFn = dyn Fn() -> ValueFuture + Send + Sync + 'static;

/// A header or query-parameter value: fixed, or computed again for every request.
///
/// A computed value is called once for each HTTP request that carries it (every append, every
/// long-poll, every SSE reconnection), so a rotating token stays fresh.
///
/// ```
/// use durable_streams_client::Value;
/// let fixed = Value::from("Bearer abc");
/// let computed = Value::computed(|| async { Ok(format!("Bearer {}", 42)) });
/// let sync = Value::computed_sync(|| "v2".to_string());
/// # let _ = (fixed, computed, sync);
/// ```
#[derive(Clone)]
pub enum Value {
    /// The same string on every request.
    Fixed(String),
    /// Computed for every request.
    Computed(Arc<ComputeFn>),
}

impl Value {
    /// A value computed by an async function for every request. An error returned by the
    /// function fails that request with the same error.
    pub fn computed<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        Self::Computed(Arc::new(move || Box::pin(f()) as ValueFuture))
    }

    /// A value computed by a plain function for every request.
    pub fn computed_sync<F>(f: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        Self::Computed(Arc::new(move || {
            let v = f();
            Box::pin(async move { Ok(v) }) as ValueFuture
        }))
    }

    /// The value for one request.
    pub async fn resolve(&self) -> Result<String> {
        match self {
            Self::Fixed(s) => Ok(s.clone()),
            Self::Computed(f) => f().await,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values are often credentials: never print them.
        match self {
            Self::Fixed(_) => f.write_str("Value::Fixed(..)"),
            Self::Computed(_) => f.write_str("Value::Computed(..)"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Fixed(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Fixed(s)
    }
}

/// Headers and query parameters added to requests, each fixed or computed.
///
/// Handles carry one set; each call may add another. On a name present in both, the call's
/// value wins. Protocol headers and parameters (`offset`, `live`, `cursor`, `Producer-*`,
/// `Stream-*` set by the client) always take precedence over both.
#[derive(Clone, Debug, Default)]
pub struct RequestExtras {
    pub(crate) headers: Vec<(String, Value)>,
    pub(crate) params: Vec<(String, Value)>,
}

impl RequestExtras {
    /// No headers, no parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Adds (or replaces) a query parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set_param(name, value);
        self
    }

    /// Adds (or replaces) a header in place.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
    }

    /// Adds (or replaces) a query parameter in place.
    pub fn set_param(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        self.params.retain(|(n, _)| *n != name);
        self.params.push((name, value.into()));
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.params.is_empty()
    }

    /// `self` overlaid by `other` (other's values win on equal names).
    pub fn merged(&self, other: &RequestExtras) -> RequestExtras {
        let mut out = self.clone();
        for (n, v) in &other.headers {
            out.set_header(n.clone(), v.clone());
        }
        for (n, v) in &other.params {
            out.set_param(n.clone(), v.clone());
        }
        out
    }

    /// Resolves every value for one request: `(headers, params)`.
    pub(crate) async fn resolve(&self) -> Result<(Vec<(String, String)>, Vec<(String, String)>)> {
        let mut headers = Vec::with_capacity(self.headers.len());
        for (n, v) in &self.headers {
            headers.push((n.clone(), v.resolve().await?));
        }
        let mut params = Vec::with_capacity(self.params.len());
        for (n, v) in &self.params {
            params.push((n.clone(), v.resolve().await?));
        }
        Ok((headers, params))
    }
}

pub(crate) fn header_name(name: &str) -> Result<http::HeaderName> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::invalid(format!("invalid header name {name:?}")))
}

pub(crate) fn header_value(name: &str, value: &str) -> Result<http::HeaderValue> {
    http::HeaderValue::from_str(value).map_err(|_| {
        Error::invalid(format!(
            "invalid value for header {name:?}: it must be visible ASCII without line breaks"
        ))
    })
}
