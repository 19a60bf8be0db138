//! Subscription configuration, results and protocol error codes.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use crate::offset::Offset;

/// The shortest lease the protocol allows.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(1);
/// The longest lease the protocol allows.
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(600);

/// A secret token (claim or callback token). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token value, for sending it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a subscription wakes its workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Wake events are appended to this stream-root-relative stream; workers claim, ack and
    /// release. The wake stream must exist (create it yourself).
    PullWake {
        /// The wake stream's stream-root-relative path.
        wake_stream: String,
    },
    /// The server POSTs signed wake notifications to this URL.
    Webhook {
        /// The receiver's URL (`https://`, or `http://` to localhost / 127.0.0.x in development).
        url: String,
    },
}

/// The configuration of a subscription, validated before any request.
///
/// ```
/// use std::time::Duration;
/// use durable_streams_client::SubscriptionConfig;
/// let cfg = SubscriptionConfig::pull_wake("wake/pool")
///     .pattern("events/*")
///     .streams(["audit/main"])
///     .lease(Duration::from_secs(30));
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Pull-wake or webhook.
    pub delivery: DeliveryMode,
    /// A glob over stream-root-relative paths (`*` one segment, `**` any number).
    pub pattern: Option<String>,
    /// Explicit stream-root-relative stream paths, in addition to `pattern`.
    pub streams: Vec<String>,
    /// The lease duration (1 s to 10 min; the server's default, 30 s, when `None`).
    pub lease: Option<Duration>,
    /// A human-readable description.
    pub description: Option<String>,
}

impl SubscriptionConfig {
    /// A pull-wake subscription writing wake events to `wake_stream`.
    pub fn pull_wake(wake_stream: impl Into<String>) -> Self {
        Self::with(DeliveryMode::PullWake {
            wake_stream: wake_stream.into(),
        })
    }

    /// A webhook subscription delivering to `url`.
    pub fn webhook(url: impl Into<String>) -> Self {
        Self::with(DeliveryMode::Webhook { url: url.into() })
    }

    fn with(delivery: DeliveryMode) -> Self {
        Self {
            delivery,
            pattern: None,
            streams: Vec::new(),
            lease: None,
            description: None,
        }
    }

    /// Sets the glob pattern.
    pub fn pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// Adds explicit streams.
    pub fn streams<I, S>(mut self, streams: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.streams.extend(streams.into_iter().map(Into::into));
        self
    }

    /// Sets the lease duration.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Checks the configuration: at least one of pattern/streams, a lease from 1 s to 10 min
    /// in whole milliseconds, stream-root-relative paths, a parseable http(s) webhook URL.
    pub fn validate(&self) -> Result<()> {
        if self.pattern.is_none() && self.streams.is_empty() {
            return Err(Error::invalid(
                "a subscription needs a pattern or at least one explicit stream",
            ));
        }
        if let Some(p) = &self.pattern {
            check_path("pattern", p)?;
        }
        for s in &self.streams {
            check_path("streams[]", s)?;
        }
        if let Some(lease) = self.lease {
            if !(MIN_LEASE..=MAX_LEASE).contains(&lease) || lease.subsec_nanos() % 1_000_000 != 0 {
                return Err(Error::invalid(format!(
                    "lease must be whole milliseconds from 1 s to 10 min, got {lease:?}"
                )));
            }
        }
        match &self.delivery {
            DeliveryMode::PullWake { wake_stream } => check_path("wake_stream", wake_stream)?,
            DeliveryMode::Webhook { url } => {
                let u = url::Url::parse(url)
                    .map_err(|e| Error::invalid(format!("webhook URL is not a URL: {e}")))?;
                if u.scheme() != "https" && u.scheme() != "http" {
                    return Err(Error::invalid(
                        "webhook URL must use https (or http for local development)",
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        match &self.delivery {
            DeliveryMode::PullWake { wake_stream } => {
                m.insert("type".into(), "pull-wake".into());
                m.insert("wake_stream".into(), wake_stream.as_str().into());
            }
            DeliveryMode::Webhook { url } => {
                m.insert("type".into(), "webhook".into());
                m.insert("webhook".into(), serde_json::json!({ "url": url }));
            }
        }
        if let Some(p) = &self.pattern {
            m.insert("pattern".into(), p.as_str().into());
        }
        if !self.streams.is_empty() {
            m.insert("streams".into(), self.streams.clone().into());
        }
        if let Some(l) = self.lease {
            m.insert("lease_ttl_ms".into(), (l.as_millis() as u64).into());
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), d.as_str().into());
        }
        serde_json::Value::Object(m)
    }
}

/// Refuses paths that are not stream-root-relative: empty, absolute, a URL, `.`/`..`
/// segments, or under the reserved `__ds` prefix.
pub(crate) fn check_path(what: &str, p: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("{what} {p:?} {why}")));
    if p.is_empty() {
        return bad("is empty");
    }
    if p.starts_with('/') {
        return bad("must be stream-root-relative (no leading '/')");
    }
    if p.contains("://") || p.contains('?') || p.contains('#') {
        return bad("must be a stream-root-relative path, not a URL");
    }
    let mut segs = p.split('/');
    if segs.clone().any(|s| s.is_empty() || s == "." || s == "..") {
        return bad("has an empty, '.' or '..' segment");
    }
    if segs.next() == Some("__ds") {
        return bad("is under the reserved __ds prefix");
    }
    Ok(())
}

/// Whether a PUT created the subscription or found an identical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// 201: created.
    Created,
    /// 200: an identical subscription already existed.
    Confirmed,
}

/// How a stream is linked to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    /// Matched by the pattern.
    Glob,
    /// Added explicitly.
    Explicit,
}

/// One linked stream and its cursor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StreamLink {
    /// Stream-root-relative path.
    pub path: String,
    /// How it is linked.
    pub link_type: LinkType,
    /// The last processed offset (inclusive).
    pub acked_offset: Offset,
}

/// Webhook signing metadata published with a webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SigningInfo {
    /// The algorithm (`ed25519`).
    pub alg: String,
    /// The active key id.
    pub kid: String,
    /// Where the server's JWK Set lives.
    pub jwks_url: String,
}

/// The webhook part of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookInfo {
    /// The receiver URL.
    pub url: String,
    /// Signing metadata, when the server publishes it.
    pub signing: Option<SigningInfo>,
}

/// A subscription as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subscription {
    /// The id.
    pub id: String,
    /// `webhook` or `pull-wake`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The glob pattern.
    pub pattern: Option<String>,
    /// The linked streams with their cursors.
    #[serde(default)]
    pub streams: Vec<StreamLink>,
    /// Webhook delivery details.
    pub webhook: Option<WebhookInfo>,
    /// The wake stream of a pull-wake subscription.
    pub wake_stream: Option<String>,
    /// The lease in milliseconds.
    pub lease_ttl_ms: u64,
    /// Creation time (RFC 3339).
    pub created_at: Option<String>,
    /// `active`, or `failed` while a webhook retry is scheduled.
    pub status: Option<String>,
    /// The description.
    pub description: Option<String>,
}

impl Subscription {
    /// The acked offset of a linked stream.
    pub fn acked_offset(&self, path: &str) -> Option<&Offset> {
        self.streams
            .iter()
            .find(|l| l.path == path)
            .map(|l| &l.acked_offset)
    }
}

/// The state of one stream in a wake: where its cursor is and where its tail was.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WakeStream {
    /// Stream-root-relative path.
    pub path: String,
    /// How it is linked.
    pub link_type: LinkType,
    /// The last processed offset.
    pub acked_offset: Offset,
    /// The tail when the wake was made.
    pub tail_offset: Offset,
    /// Whether `tail_offset` is past `acked_offset`.
    pub has_pending: bool,
}

/// A held wake: what a claim (pull-wake) or a webhook delivery hands a worker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Wake {
    /// The subscription id.
    #[serde(default)]
    pub subscription_id: String,
    /// The unique id of this wake.
    pub wake_id: String,
    /// The fencing generation.
    pub generation: u64,
    /// The claim or callback token (redacted in `Debug`).
    #[serde(alias = "callback_token")]
    pub token: Token,
    /// The streams and their cursors.
    pub streams: Vec<WakeStream>,
    /// The lease (claims only).
    #[serde(default)]
    pub lease_ttl_ms: Option<u64>,
    /// Where to call back (webhook deliveries only).
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// One acknowledgement: `stream` is processed up to and including `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ack {
    /// Stream-root-relative path.
    pub stream: String,
    /// The last processed offset.
    pub offset: Offset,
}

/// The answer to an ack, a callback or a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AckResult {
    /// Whether the server accepted it.
    pub ok: bool,
    /// After `done`: whether the server made another wake for work that is still pending.
    #[serde(default)]
    pub next_wake: bool,
}

/// A wake event as written to a pull-wake wake stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WakeEvent {
    /// `wake`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The subscription that has work.
    pub subscription_id: String,
    /// The stream that triggered it.
    #[serde(default)]
    pub stream: Option<String>,
    /// The generation of the wake.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub ts: Option<u64>,
}

/// Protocol error codes of the subscription endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubscriptionErrorCode {
    /// The wake is stale: another generation is current.
    Fenced,
    /// Another worker holds the lease.
    AlreadyClaimed,
    /// Nothing to claim.
    NoPendingWork,
    /// A subscription with this id exists with another configuration.
    AlreadyExists,
    /// No such subscription.
    NotFound,
    /// An ack regressed, went past the tail, or named an unknown stream.
    InvalidOffset,
    /// The token was refused.
    TokenInvalid,
    /// The token expired.
    TokenExpired,
    /// The server refused the webhook URL.
    WebhookUrlRejected,
    /// The server refused the request as malformed.
    InvalidRequest,
    /// A code this client does not know (or none).
    Other,
}

impl SubscriptionErrorCode {
    pub(crate) fn parse(code: &str) -> Self {
        match code {
            "FENCED" => Self::Fenced,
            "ALREADY_CLAIMED" => Self::AlreadyClaimed,
            "NO_PENDING_WORK" => Self::NoPendingWork,
            "SUBSCRIPTION_ALREADY_EXISTS" => Self::AlreadyExists,
            "SUBSCRIPTION_NOT_FOUND" => Self::NotFound,
            "INVALID_OFFSET" => Self::InvalidOffset,
            "TOKEN_INVALID" => Self::TokenInvalid,
            "TOKEN_EXPIRED" => Self::TokenExpired,
            "WEBHOOK_URL_REJECTED" => Self::WebhookUrlRejected,
            "INVALID_REQUEST" => Self::InvalidRequest,
            _ => Self::Other,
        }
    }

    /// The protocol spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fenced => "FENCED",
            Self::AlreadyClaimed => "ALREADY_CLAIMED",
            Self::NoPendingWork => "NO_PENDING_WORK",
            Self::AlreadyExists => "SUBSCRIPTION_ALREADY_EXISTS",
            Self::NotFound => "SUBSCRIPTION_NOT_FOUND",
            Self::InvalidOffset => "INVALID_OFFSET",
            Self::TokenInvalid => "TOKEN_INVALID",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::WebhookUrlRejected => "WEBHOOK_URL_REJECTED",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::Other => "OTHER",
        }
    }

    pub(crate) fn error_code(self) -> ErrorCode {
        match self {
            Self::Fenced => ErrorCode::Fenced,
            Self::AlreadyClaimed => ErrorCode::AlreadyClaimed,
            Self::NoPendingWork => ErrorCode::NoPendingWork,
            Self::AlreadyExists => ErrorCode::ConflictExists,
            Self::NotFound => ErrorCode::NotFound,
            Self::InvalidOffset => ErrorCode::Conflict,
            Self::TokenInvalid | Self::TokenExpired => ErrorCode::Unauthorized,
            Self::WebhookUrlRejected | Self::InvalidRequest => ErrorCode::BadRequest,
            Self::Other => ErrorCode::UnexpectedStatus,
        }
    }
}

/// Which webhook verification check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureCheck {
    /// No `Webhook-Signature` header.
    MissingHeader,
    /// The header lacks `t`, `kid` or `ed25519`, or a part is malformed.
    MalformedHeader,
    /// The timestamp is outside the replay window.
    TimestampOutOfWindow,
    /// No key with this `kid` in the JWK Set, even after a refresh.
    UnknownKey,
    /// The signature does not match the body.
    BadSignature,
    /// The verified body is not a wake payload.
    MalformedPayload,
}

impl SignatureCheck {
    /// A stable snake_case name of the check, for bindings and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::TimestampOutOfWindow => "timestamp_out_of_window",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::MalformedPayload => "malformed_payload",
        }
    }
}

impl fmt::Display for SignatureCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingHeader => "missing Webhook-Signature header",
            Self::MalformedHeader => "malformed Webhook-Signature header",
            Self::TimestampOutOfWindow => "timestamp outside the replay window",
            Self::UnknownKey => "unknown signing key id",
            Self::BadSignature => "signature does not match the body",
            Self::MalformedPayload => "body is not a wake payload",
        })
    }
}
