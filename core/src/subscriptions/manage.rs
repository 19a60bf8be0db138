//! The management and lease client: create, get, delete, membership; claim, ack, release,
//! callback.

use bytes::Bytes;
use reqwest::Method;
use url::Url;

use super::types::{
    check_path, Ack, AckResult, Subscription, SubscriptionConfig, SubscriptionErrorCode,
    SubscriptionStatus, Token, Wake,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{display_url, error_from_parts, prepare, transport_error, Op};
use crate::retry::RetryPolicy;
use crate::stream::{default_idempotent_retry, DurableStream};
use crate::values::{RequestExtras, Value};

/// Subscriptions under one stream root (the URL prefix under which the server's streams live,
/// e.g. `http://127.0.0.1:4437/v1/stream/`). Cheap to clone.
///
/// Stream paths in configurations and results are relative to this root (`events/abc`).
/// The handle's headers and parameters (for example a service token in `Authorization`) go
/// with every request except acks, releases and callbacks, which carry the wake's own token.
///
/// ```no_run
/// # async fn demo() -> durable_streams_client::Result<()> {
/// use durable_streams_client::{SubscriptionConfig, Subscriptions};
/// let subs = Subscriptions::new("http://127.0.0.1:4437/v1/stream/")?;
/// let (status, sub) = subs
///     .create("billing", &SubscriptionConfig::pull_wake("wake/billing").pattern("orders/*"))
///     .await?;
/// println!("{status:?}: {} streams linked", sub.streams.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Subscriptions {
    root: Url,
    display: String,
    client: Client,
    extras: RequestExtras,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("root", &self.display)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Subscriptions`] handle.
#[derive(Debug)]
pub struct SubscriptionsBuilder {
    root: String,
    client: Option<Client>,
    extras: RequestExtras,
    retry: RetryPolicy,
}

impl SubscriptionsBuilder {
    /// Uses this client (default: [`Client::shared`]).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// A header sent with every management and claim request (fixed or computed).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_header(name, value);
        self
    }

    /// Replaces the extra headers and query parameters with `extras`.
    pub fn extras(mut self, extras: RequestExtras) -> Self {
        self.extras = extras;
        self
    }

    /// A query parameter sent with every request.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extras.set_param(name, value);
        self
    }

    /// Retry policy of idempotent requests (create, get, delete, membership, acks).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the handle; the root must be an absolute http(s) URL.
    pub fn build(self) -> Result<Subscriptions> {
        let mut root = Url::parse(&self.root)
            .map_err(|e| Error::invalid(format!("invalid stream root URL: {e}")))?;
        if root.scheme() != "http" && root.scheme() != "https" {
            return Err(Error::invalid("stream root URL must be http or https"));
        }
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        self.retry.validate()?;
        let client = match self.client {
            Some(c) => c,
            None => Client::shared()?,
        };
        Ok(Subscriptions {
            display: display_url(&root),
            root,
            client,
            extras: self.extras,
            retry: self.retry,
        })
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "a subscription id must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

/// Escapes server text before it goes into an error.
pub(crate) fn escape(s: &str) -> String {
    let mut out: String = s.chars().take(512).flat_map(char::escape_debug).collect();
    if s.chars().count() > 512 {
        out.push('…');
    }
    out
}

impl Subscriptions {
    /// A handle with the default client and no extra headers.
    pub fn new(stream_root: impl Into<String>) -> Result<Self> {
        Self::builder(stream_root).build()
    }

    /// A builder.
    pub fn builder(stream_root: impl Into<String>) -> SubscriptionsBuilder {
        SubscriptionsBuilder {
            root: stream_root.into(),
            client: None,
            extras: RequestExtras::new(),
            retry: default_idempotent_retry(),
        }
    }

    /// The stream root.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A handle for the stream at a stream-root-relative path, with this handle's client,
    /// headers and parameters.
    pub fn stream(&self, path: &str) -> Result<DurableStream> {
        check_path("stream path", path)?;
        let url = self
            .root
            .join(path)
            .map_err(|e| Error::invalid(format!("bad stream path: {e}")))?;
        DurableStream::builder(url.as_str())
            .client(self.client.clone())
            .extras(self.extras.clone())
            .build()
    }

    /// The URL of the server's webhook signing JWK Set (`__ds/jwks.json` under the root).
    pub fn jwks_url(&self) -> Url {
        let mut u = self.root.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().extend(["__ds", "jwks.json"]);
        }
        u
    }

    fn sub_url(&self, id: &str, tail: &[&str]) -> Url {
        let mut u = self.root.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty()
                .extend(["__ds", "subscriptions", id])
                .extend(tail);
        }
        u
    }

    /// Creates the subscription, or confirms an identical one. A different configuration
    /// under the same id fails with [`Error::Subscription`] (`AlreadyExists`, 409).
    pub async fn create(
        &self,
        id: &str,
        config: &SubscriptionConfig,
    ) -> Result<(SubscriptionStatus, Subscription)> {
        check_id(id)?;
        config.validate()?;
        let body = serde_json::to_vec(&config.to_json())
            .map_err(|e| Error::invalid(format!("cannot encode the configuration: {e}")))?;
        let (status, body) = self
            .call(
                Method::PUT,
                self.sub_url(id, &[]),
                Some(body.into()),
                None,
                true,
            )
            .await?;
        let sub = parse_json::<Subscription>("subscription", &body)?;
        let st = if status == 201 {
            SubscriptionStatus::Created
        } else {
            SubscriptionStatus::Confirmed
        };
        Ok((st, sub))
    }

    /// Reads a subscription with its links and acked offsets.
    pub async fn get(&self, id: &str) -> Result<Subscription> {
        check_id(id)?;
        let (_, body) = self
            .call(Method::GET, self.sub_url(id, &[]), None, None, true)
            .await?;
        parse_json("subscription", &body)
    }

    /// Deletes a subscription (idempotent).
    pub async fn delete(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.call(Method::DELETE, self.sub_url(id, &[]), None, None, true)
            .await
            .map(drop)
    }

    /// Links explicit streams (linked at their current tail; idempotent).
    pub async fn add_streams<I, S>(&self, id: &str, streams: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        check_id(id)?;
        let streams: Vec<String> = streams.into_iter().map(Into::into).collect();
        if streams.is_empty() {
            return Err(Error::invalid("add_streams needs at least one stream"));
        }
        for s in &streams {
            check_path("stream", s)?;
        }
        let body = serde_json::json!({ "streams": streams }).to_string();
        self.call(
            Method::POST,
            self.sub_url(id, &["streams"]),
            Some(body.into()),
            None,
            true,
        )
        .await
        .map(drop)
    }

    /// Removes an explicit link (a matching glob link stays; idempotent).
    pub async fn remove_stream(&self, id: &str, path: &str) -> Result<()> {
        check_id(id)?;
        check_path("stream", path)?;
        self.call(
            Method::DELETE,
            self.sub_url(id, &["streams", path]),
            None,
            None,
            true,
        )
        .await
        .map(drop)
    }

    /// The retry policy of this handle's requests.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Claims a pull-wake subscription's lease for `worker`. Fails with
    /// [`Error::Subscription`] `AlreadyClaimed` or `NoPendingWork` when there is nothing to take.
    pub async fn claim(&self, id: &str, worker: &str) -> Result<Wake> {
        check_id(id)?;
        if worker.is_empty() {
            return Err(Error::invalid("the worker name must not be empty"));
        }
        let body = serde_json::json!({ "worker": worker }).to_string();
        let (_, body) = self
            .call(
                Method::POST,
                self.sub_url(id, &["claim"]),
                Some(body.into()),
                None,
                false,
            )
            .await?;
        let mut wake: Wake = parse_json("claim response", &body)?;
        if wake.subscription_id.is_empty() {
            wake.subscription_id = id.to_owned();
        }
        Ok(wake)
    }

    /// Acks progress on a claimed wake; without `done` it only extends the lease (a heartbeat
    /// when `acks` is empty). A stale wake fails with `Fenced` and advances nothing.
    ///
    /// The request is retried when it fails on the way (a dropped connection, a timeout, a
    /// 5xx). An attempt whose answer was lost may still have landed: a retried `done` (or
    /// [`release`](Self::release), or [`callback`](Self::callback) with `done`) is then
    /// answered `Fenced` although the first attempt applied its acks and ended the wake. Such
    /// a `Fenced` says so in its message. Either way nothing is lost: acks that did not land
    /// are read and handed over again.
    pub async fn ack(&self, wake: &Wake, acks: &[Ack], done: bool) -> Result<AckResult> {
        let url = self.sub_url(&wake.subscription_id, &["ack"]);
        self.ack_at(url, wake, acks, done).await
    }

    /// Answers a webhook wake asynchronously through its `callback_url` (acks, `done`).
    /// The callback URL must be on the stream root's origin.
    pub async fn callback(&self, wake: &Wake, acks: &[Ack], done: bool) -> Result<AckResult> {
        let raw = wake
            .callback_url
            .as_deref()
            .ok_or_else(|| Error::invalid("this wake has no callback_url (not a webhook wake)"))?;
        let url = Url::parse(raw)
            .map_err(|e| Error::invalid(format!("callback_url is not a URL: {e}")))?;
        if url.origin() != self.root.origin() {
            return Err(Error::invalid(
                "callback_url is not on the stream root's origin; refusing to send the token there",
            ));
        }
        self.ack_at(url, wake, acks, done).await
    }

    async fn ack_at(&self, url: Url, wake: &Wake, acks: &[Ack], done: bool) -> Result<AckResult> {
        let mut body = serde_json::json!({
            "wake_id": wake.wake_id,
            "generation": wake.generation,
            "acks": acks,
        });
        if done {
            body["done"] = true.into();
        }
        let (_, body) = self
            .call(
                Method::POST,
                url,
                Some(body.to_string().into()),
                Some(&wake.token),
                true,
            )
            .await?;
        parse_json("ack response", &body)
    }

    /// Gives a claimed wake back without acking; pending work is woken again.
    pub async fn release(&self, wake: &Wake) -> Result<()> {
        let body = serde_json::json!({ "wake_id": wake.wake_id, "generation": wake.generation });
        self.call(
            Method::POST,
            self.sub_url(&wake.subscription_id, &["release"]),
            Some(body.to_string().into()),
            Some(&wake.token),
            true,
        )
        .await
        .map(drop)
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        token: Option<&Token>,
        retry: bool,
    ) -> Result<(u16, Bytes)> {
        let mut attempt = 0u32;
        loop {
            match self.call_once(&method, &url, body.as_ref(), token).await {
                Ok(r) => return Ok(r),
                Err(e) if retry && e.is_retryable() && self.retry.allows(attempt) => {
                    let delay = self.retry.delay(attempt, e.retry_after());
                    tracing::info!(url = %display_url(&url), error = %e, "retrying subscription request");
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
                Err(e) if retry && e.is_retryable() => {
                    return Err(Error::gave_up(e, attempt.saturating_add(1)))
                }
                Err(e) if attempt > 0 => return Err(after_lost_answer(e)),
                Err(e) => return Err(e),
            }
        }
    }

    async fn call_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Bytes>,
        token: Option<&Token>,
    ) -> Result<(u16, Bytes)> {
        let auth = token.map(|t| format!("Bearer {}", t.expose()));
        let mut protocol: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            protocol.push(("authorization", a.as_str()));
        }
        if body.is_some() {
            protocol.push(("content-type", "application/json"));
        }
        let prepared = prepare(url, &self.extras, &[], &protocol).await?;
        let display = display_url(url);
        let mut rb = self
            .client
            .http()
            .request(method.clone(), prepared.url)
            .headers(prepared.headers)
            .timeout(self.client.request_timeout());
        if let Some(b) = body {
            rb = rb.body(b.clone());
        }
        let resp = rb.send().await.map_err(|e| transport_error(e, &display))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = read_bounded(resp, &display, MAX_BODY, "subscription response").await?;
        if status.is_success() {
            return Ok((status.as_u16(), bytes));
        }
        Err(subscription_error(status, &headers, &bytes, &display))
    }
}

/// A `FENCED` answer to a retry: an earlier attempt got no answer and may have landed (a
/// `done` that ended the wake, a release), so the fencing may be that attempt's own doing.
fn after_lost_answer(e: Error) -> Error {
    match e {
        Error::Subscription {
            code: SubscriptionErrorCode::Fenced,
            status,
            url,
            message,
            current_holder,
        } => Error::Subscription {
            code: SubscriptionErrorCode::Fenced,
            status,
            url,
            message: Some(format!(
                "{}answered to a retry: an earlier attempt got no answer and may have been applied",
                message.map(|m| format!("{m}; ")).unwrap_or_default()
            )),
            current_holder,
        },
        other => other,
    }
}

/// The largest response body a subscription request accepts.
const MAX_BODY: usize = 8 << 20;

/// Reads a response body of at most `max` bytes; a larger one is an [`Error::Parse`] about
/// `what`, and no more of it is read.
pub(super) async fn read_bounded(
    mut resp: reqwest::Response,
    display: &str,
    max: usize,
    what: &str,
) -> Result<Bytes> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(e, display))?
    {
        if buf.len().saturating_add(chunk.len()) > max {
            return Err(Error::parse(what, format!("body larger than {max} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

fn subscription_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    url: &str,
) -> Error {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
        current_holder: Option<String>,
    }
    if let Ok(w) = serde_json::from_slice::<Wrapper>(body) {
        if let Some(code) = w.error.code.as_deref() {
            let with_code = |m: Option<String>| {
                format!(
                    "{}{}",
                    escape(code),
                    m.map(|m| format!(": {}", escape(&m))).unwrap_or_default()
                )
            };
            // An overloaded, restarting or rate-limiting server may answer with a code too:
            // that stays what its status says (retryable, with its Retry-After), the code
            // going into the message.
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let message = Some(with_code(w.error.message));
                return error_from_parts(status, headers, message, url, Op::Head);
            }
            let parsed = SubscriptionErrorCode::parse(code);
            let message = match (parsed, w.error.message) {
                (SubscriptionErrorCode::Other, m) => Some(with_code(m)),
                (_, m) => m.map(|m| escape(&m)),
            };
            return Error::Subscription {
                code: parsed,
                status: status.as_u16(),
                url: url.to_owned(),
                message,
                current_holder: w.error.current_holder.map(|h| escape(&h)),
            };
        }
    }
    let message = crate::http::message_from_body(body).map(|m| escape(&m));
    error_from_parts(status, headers, message, url, Op::Head)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::json(what, crate::http::server_text(&e.to_string()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::time::Duration;

    fn error(status: u16, retry_after: Option<&str>, body: &str) -> Error {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(ra) = retry_after {
            headers.insert("retry-after", ra.parse().unwrap());
        }
        let status = reqwest::StatusCode::from_u16(status).unwrap();
        subscription_error(status, &headers, body.as_bytes(), "http://h/x")
    }

    #[test]
    fn coded_5xx_and_429_stay_retryable_with_their_retry_after() {
        let body = r#"{"error":{"code":"UNAVAILABLE","message":"restarting"}}"#;
        for (status, code) in [(503, ErrorCode::Busy), (429, ErrorCode::RateLimited)] {
            let e = error(status, Some("7"), body);
            assert_eq!((e.code(), e.status()), (code, Some(status)), "{e:?}");
            assert!(e.is_retryable(), "{e:?}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
            assert_eq!(e.server_message(), Some("UNAVAILABLE: restarting"));
        }
        // A protocol code of the lease protocol on a 5xx is not a refusal either.
        let e = error(500, None, r#"{"error":{"code":"FENCED"}}"#);
        assert!(e.is_retryable() && e.retry_after().is_none(), "{e:?}");
        assert_eq!(e.server_message(), Some("FENCED"));
    }

    #[test]
    fn coded_4xx_are_subscription_errors() {
        let e = error(409, Some("7"), r#"{"error":{"code":"FENCED"}}"#);
        assert!(matches!(
            e,
            Error::Subscription {
                code: SubscriptionErrorCode::Fenced,
                status: 409,
                ..
            }
        ));
        assert!(!e.is_retryable());
    }
}
