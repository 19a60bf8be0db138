//! The one error type of the crate.
//!
//! Every failure is an [`Error`] variant with structured fields (HTTP status, server message,
//! offsets, epochs). Bindings map it to their own exception hierarchies through
//! [`Error::code`], [`Error::status`] and the variant fields, never by parsing the message.

use std::time::Duration;

use crate::offset::Offset;
use crate::subscriptions::SubscriptionErrorCode;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable, language-neutral error codes, shared by every binding.
///
/// A new code goes into [`ErrorCode::ALL`] and [`Error::example`]; the error-contract test of
/// each binding (Python, Node, Kotlin) then fails until that binding maps it.
///
/// The names follow the TypeScript reference client's `DurableStreamErrorCode` where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 404: the stream (or a fork's source) does not exist.
    NotFound,
    /// 409 on create: a stream exists at the URL with another configuration.
    ConflictExists,
    /// 409 on append: content type mismatch or another conflict that is not a closed stream.
    Conflict,
    /// 409 on append with `Stream-Seq`: the sequence did not increase.
    ConflictSeq,
    /// 409 with `Stream-Closed: true`: the stream is closed.
    StreamClosed,
    /// 400: the server refused the request as malformed.
    BadRequest,
    /// 401.
    Unauthorized,
    /// 403 (outside the idempotent producer's fencing).
    Forbidden,
    /// 410: the offset is before retained data, or the stream is soft-deleted.
    Gone,
    /// 413.
    PayloadTooLarge,
    /// 429.
    RateLimited,
    /// 503: the server is overloaded or unavailable for now (the reference client's `BUSY`).
    Busy,
    /// 5xx other than 503.
    ServerError,
    /// Any other unexpected HTTP status.
    UnexpectedStatus,
    /// 403 from an idempotent append: another producer session owns a newer epoch.
    StaleEpoch,
    /// 409 from an idempotent append: the server expected another sequence number.
    SequenceGap,
    /// An idempotent producer found another session writing under its producer id and epoch.
    ProducerSessionConflict,
    /// The connection failed (refused, reset, TLS, DNS).
    Network,
    /// A request or an operation exceeded its deadline.
    Timeout,
    /// A server response could not be parsed.
    ParseError,
    /// A caller passed a value the client refuses before sending anything.
    InvalidArgument,
    /// A response body was already consumed.
    AlreadyConsumed,
    /// The producer (or handle) was closed or detached.
    AlreadyClosed,
    /// An operation was cancelled by the caller.
    Cancelled,
    /// A producer's buffer has no room for a message right now.
    BufferFull,
    /// 409 `FENCED` from a subscription: the wake (generation) is stale; the lease is lost.
    Fenced,
    /// 409 `ALREADY_CLAIMED`: another worker holds the subscription's lease.
    AlreadyClaimed,
    /// 409 `NO_PENDING_WORK`: a claim found nothing to do.
    NoPendingWork,
    /// A webhook request failed signature verification.
    InvalidSignature,
}

impl ErrorCode {
    /// Every code, in declaration order: the list each binding's error-contract test walks.
    pub const ALL: &'static [ErrorCode] = &[
        Self::NotFound,
        Self::ConflictExists,
        Self::Conflict,
        Self::ConflictSeq,
        Self::StreamClosed,
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::Gone,
        Self::PayloadTooLarge,
        Self::RateLimited,
        Self::Busy,
        Self::ServerError,
        Self::UnexpectedStatus,
        Self::StaleEpoch,
        Self::SequenceGap,
        Self::ProducerSessionConflict,
        Self::Network,
        Self::Timeout,
        Self::ParseError,
        Self::InvalidArgument,
        Self::AlreadyConsumed,
        Self::AlreadyClosed,
        Self::Cancelled,
        Self::BufferFull,
        Self::Fenced,
        Self::AlreadyClaimed,
        Self::NoPendingWork,
        Self::InvalidSignature,
    ];

    /// The code named `name` (as [`ErrorCode::as_str`] spells it), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The code as an upper-case string, e.g. `"STREAM_CLOSED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::ConflictExists => "CONFLICT_EXISTS",
            Self::Conflict => "CONFLICT",
            Self::ConflictSeq => "CONFLICT_SEQ",
            Self::StreamClosed => "STREAM_CLOSED",
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::Gone => "GONE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RateLimited => "RATE_LIMITED",
            Self::Busy => "BUSY",
            Self::ServerError => "SERVER_ERROR",
            Self::UnexpectedStatus => "UNEXPECTED_STATUS",
            Self::StaleEpoch => "STALE_EPOCH",
            Self::SequenceGap => "SEQUENCE_GAP",
            Self::ProducerSessionConflict => "PRODUCER_SESSION_CONFLICT",
            Self::Network => "NETWORK_ERROR",
            Self::Timeout => "TIMEOUT",
            Self::ParseError => "PARSE_ERROR",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::AlreadyConsumed => "ALREADY_CONSUMED",
            Self::AlreadyClosed => "ALREADY_CLOSED",
            Self::Cancelled => "CANCELLED",
            Self::BufferFull => "BUFFER_FULL",
            Self::Fenced => "FENCED",
            Self::AlreadyClaimed => "ALREADY_CLAIMED",
            Self::NoPendingWork => "NO_PENDING_WORK",
            Self::InvalidSignature => "INVALID_SIGNATURE",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong, with the data a caller needs to react.
///
/// `url` fields hold the stream URL with credentials (userinfo) and the query string removed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: the stream does not exist (or, on fork creation, its source does not).
    #[error("stream not found: {url}{}", fmt_msg(message))]
    NotFound {
        /// The stream URL.
        url: String,
        /// The server's message, if it sent one.
        message: Option<String>,
    },
    /// 409 on create: a stream already exists with a different configuration.
    #[error(
        "stream already exists with a different configuration: {url}{}{}",
        fmt_closed_difference(*existing_closed),
        fmt_msg(message)
    )]
    ConflictExists {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
        /// Set when the difference is (at least) that the existing stream is closed
        /// (`Some(true)`) or open (`Some(false)`) while the create asked for the opposite;
        /// found by a `HEAD` after the 409. `None` when the closed states agree or the `HEAD`
        /// failed.
        existing_closed: Option<bool>,
    },
    /// 409 on append that is neither a closed stream nor a `Stream-Seq` regression
    /// (for example a content type that does not match the stream's).
    #[error("conflict at {url}{}", fmt_msg(message))]
    Conflict {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 409 on an append that carried `Stream-Seq`: the value did not increase.
    #[error(
        "Stream-Seq conflict at {url}: sequence must increase{}",
        fmt_msg(message)
    )]
    SeqConflict {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// The stream is closed: no more data can be appended.
    #[error("stream is closed: {url}{}", final_offset.as_ref().map(|o| format!(" (final offset {o})")).unwrap_or_default())]
    StreamClosed {
        /// The stream URL.
        url: String,
        /// The final offset of the stream, when the server reported it.
        final_offset: Option<Offset>,
    },
    /// 400: the server refused the request.
    #[error("bad request to {url}{}", fmt_msg(message))]
    BadRequest {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 401.
    #[error("unauthorized: {url}{}", fmt_msg(message))]
    Unauthorized {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 403 outside producer fencing.
    #[error("forbidden: {url}{}", fmt_msg(message))]
    Forbidden {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 410: the offset is before retained data, or the stream is soft-deleted.
    #[error("gone: {url}{}", fmt_msg(message))]
    Gone {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 413.
    #[error("payload too large for {url}{}", fmt_msg(message))]
    PayloadTooLarge {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 429, with the server's `Retry-After` when it sent one.
    #[error("rate limited by {url}{}{}", retry_after.map(|d| format!(" (retry after {:.1}s)", d.as_secs_f64())).unwrap_or_default(), fmt_msg(message))]
    RateLimited {
        /// The stream URL.
        url: String,
        /// How long the server asked the client to wait.
        retry_after: Option<Duration>,
        /// The server's message.
        message: Option<String>,
    },
    /// 5xx.
    #[error("server error {status} from {url}{}", fmt_msg(message))]
    ServerError {
        /// The HTTP status.
        status: u16,
        /// The stream URL.
        url: String,
        /// How long the server asked the client to wait (503 may carry `Retry-After`).
        retry_after: Option<Duration>,
        /// The server's message.
        message: Option<String>,
    },
    /// A status this client does not expect for the operation.
    #[error("unexpected status {status} from {url}{}", fmt_msg(message))]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 403 on an idempotent append: a newer producer epoch owns this producer id.
    #[error(
        "producer id {producer_id:?}: stale producer epoch {epoch}, the server's current epoch \
         is {current_epoch}"
    )]
    StaleEpoch {
        /// The producer id (as given to the producer).
        producer_id: String,
        /// The epoch this producer used.
        epoch: u64,
        /// The epoch the server holds (from `Producer-Epoch`).
        current_epoch: u64,
    },
    /// 409 on an idempotent append: the server expected another sequence number.
    #[error("producer sequence gap: server expected {expected_seq}, received {received_seq}")]
    SequenceGap {
        /// `Producer-Expected-Seq`.
        expected_seq: u64,
        /// `Producer-Received-Seq`.
        received_seq: u64,
    },
    /// An idempotent producer found that another session of its producer id has written
    /// sequence numbers in its epoch (a restarted writer starting over at sequence 0, or two
    /// writers sharing one id), so its batch was answered as a duplicate it never sent. The
    /// batch was not stored. Without `auto_claim` (or when the producer may not claim a new
    /// epoch any more) the producer stops with this error; `restart()` moves to a new epoch.
    #[error(
        "producer id {producer_id:?} epoch {epoch}: another session of this producer id has \
         written in this epoch{}; the batch was not stored (use a new epoch: auto_claim or \
         restart())",
        server_seq.map(|s| format!(" (the server holds sequence {s})")).unwrap_or_default()
    )]
    ProducerSessionConflict {
        /// The producer id.
        producer_id: String,
        /// The epoch both sessions wrote in.
        epoch: u64,
        /// The highest sequence the server holds for this epoch (`Producer-Seq`), if it said.
        server_seq: Option<u64>,
    },
    /// The connection failed before a response arrived.
    #[error("network error talking to {url}: {message}")]
    Network {
        /// The stream URL.
        url: String,
        /// What the transport reported (credentials removed).
        message: String,
    },
    /// A request or an operation ran past its deadline.
    #[error("timed out: {what}")]
    Timeout {
        /// What timed out.
        what: String,
    },
    /// A response from the server could not be understood.
    #[error("could not parse {what}: {message}")]
    Parse {
        /// What was being parsed (a header, an SSE event, a JSON body, ...).
        what: String,
        /// Why it failed.
        message: String,
    },
    /// The caller passed something the client refuses before any request.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong.
        message: String,
    },
    /// The response was already consumed by another reader.
    #[error("response already consumed: a StreamResponse can be read only once")]
    AlreadyConsumed,
    /// The producer or handle was closed or detached.
    #[error("{what} is closed")]
    AlreadyClosed {
        /// What is closed.
        what: String,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An idempotent producer holds `max_buffered_bytes` already: the message does not fit
    /// now (`try_append`). Wait for room (`wait_for_room`, or `append`, which waits).
    #[error("producer buffer full: {requested} more bytes do not fit ({buffered} of {limit} bytes buffered)")]
    BufferFull {
        /// The size of the refused message.
        requested: usize,
        /// Bytes buffered when it was refused.
        buffered: usize,
        /// The producer's `max_buffered_bytes`.
        limit: usize,
    },
    /// A subscription request was refused with a protocol error code (`FENCED`,
    /// `ALREADY_CLAIMED`, `SUBSCRIPTION_ALREADY_EXISTS`, ...). Tokens never appear here.
    #[error("subscription request to {url} refused ({status} {}){}", code.as_str(), fmt_msg(message))]
    Subscription {
        /// The protocol code.
        code: crate::subscriptions::SubscriptionErrorCode,
        /// The HTTP status.
        status: u16,
        /// The URL (without credentials or query).
        url: String,
        /// The server's message, escaped.
        message: Option<String>,
        /// For `ALREADY_CLAIMED`: the worker holding the lease.
        current_holder: Option<String>,
    },
    /// A webhook request failed verification; `check` says which check failed.
    #[error("webhook signature rejected: {check}")]
    WebhookSignature {
        /// The failed check.
        check: crate::subscriptions::SignatureCheck,
    },
}

fn fmt_closed_difference(existing_closed: Option<bool>) -> &'static str {
    match existing_closed {
        Some(true) => " (the existing stream is closed, and a closed stream cannot be reopened: create the stream under another URL)",
        Some(false) => " (the existing stream is open, while this create asked for a closed one)",
        None => "",
    }
}

fn fmt_msg(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Error {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::ConflictExists { .. } => ErrorCode::ConflictExists,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::SeqConflict { .. } => ErrorCode::ConflictSeq,
            Self::StreamClosed { .. } => ErrorCode::StreamClosed,
            Self::BadRequest { .. } => ErrorCode::BadRequest,
            Self::Unauthorized { .. } => ErrorCode::Unauthorized,
            Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::Gone { .. } => ErrorCode::Gone,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::ServerError { status: 503, .. } => ErrorCode::Busy,
            Self::ServerError { .. } => ErrorCode::ServerError,
            Self::UnexpectedStatus { .. } => ErrorCode::UnexpectedStatus,
            Self::StaleEpoch { .. } => ErrorCode::StaleEpoch,
            Self::SequenceGap { .. } => ErrorCode::SequenceGap,
            Self::ProducerSessionConflict { .. } => ErrorCode::ProducerSessionConflict,
            Self::Network { .. } => ErrorCode::Network,
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::Parse { .. } => ErrorCode::ParseError,
            Self::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Self::AlreadyConsumed => ErrorCode::AlreadyConsumed,
            Self::AlreadyClosed { .. } => ErrorCode::AlreadyClosed,
            Self::Cancelled => ErrorCode::Cancelled,
            Self::BufferFull { .. } => ErrorCode::BufferFull,
            Self::Subscription { code, .. } => code.error_code(),
            Self::WebhookSignature { .. } => ErrorCode::InvalidSignature,
        }
    }

    /// The HTTP status behind this error, when a response was received.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Self::NotFound { .. } => 404,
            Self::ConflictExists { .. }
            | Self::Conflict { .. }
            | Self::SeqConflict { .. }
            | Self::StreamClosed { .. }
            | Self::SequenceGap { .. } => 409,
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } | Self::StaleEpoch { .. } => 403,
            Self::Gone { .. } => 410,
            Self::PayloadTooLarge { .. } => 413,
            Self::RateLimited { .. } => 429,
            Self::ServerError { status, .. }
            | Self::UnexpectedStatus { status, .. }
            | Self::Subscription { status, .. } => *status,
            _ => return None,
        })
    }

    /// The stream URL the failed request went to (credentials and query removed), when the
    /// error concerns one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::NotFound { url, .. }
            | Self::ConflictExists { url, .. }
            | Self::Conflict { url, .. }
            | Self::SeqConflict { url, .. }
            | Self::StreamClosed { url, .. }
            | Self::BadRequest { url, .. }
            | Self::Unauthorized { url, .. }
            | Self::Forbidden { url, .. }
            | Self::Gone { url, .. }
            | Self::PayloadTooLarge { url, .. }
            | Self::RateLimited { url, .. }
            | Self::ServerError { url, .. }
            | Self::UnexpectedStatus { url, .. }
            | Self::Network { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The server's message, when it sent one.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            Self::NotFound { message, .. }
            | Self::ConflictExists { message, .. }
            | Self::Conflict { message, .. }
            | Self::SeqConflict { message, .. }
            | Self::BadRequest { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Forbidden { message, .. }
            | Self::Gone { message, .. }
            | Self::PayloadTooLarge { message, .. }
            | Self::RateLimited { message, .. }
            | Self::ServerError { message, .. }
            | Self::UnexpectedStatus { message, .. }
            | Self::Subscription { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// Whether repeating the same request may succeed: network errors, timeouts, 5xx and 429.
    ///
    /// This says nothing about whether repeating is *safe*: a plain append is not idempotent.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Network { .. }
                | Self::Timeout { .. }
                | Self::ServerError { .. }
                | Self::RateLimited { .. }
        )
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::ServerError { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A representative error with `code`, every field filled, for the bindings'
    /// error-contract tests (each walks [`ErrorCode::ALL`] through this and checks the class and
    /// fields its language maps the error to). The match is exhaustive: a new code does not
    /// compile until it has an example here, and the bindings' tests then fail until they map it.
    #[doc(hidden)]
    pub fn example(code: ErrorCode) -> Self {
        let url = "http://127.0.0.1:1/v1/stream/example".to_owned();
        let message = Some("server says no".to_owned());
        let wait = Some(Duration::from_millis(1500));
        match code {
            ErrorCode::NotFound => Self::NotFound { url, message },
            ErrorCode::ConflictExists => Self::ConflictExists {
                url,
                message,
                existing_closed: Some(true),
            },
            ErrorCode::Conflict => Self::Conflict { url, message },
            ErrorCode::ConflictSeq => Self::SeqConflict { url, message },
            ErrorCode::StreamClosed => Self::StreamClosed {
                url,
                final_offset: Some(Offset::from("0000000000000042")),
            },
            ErrorCode::BadRequest => Self::BadRequest { url, message },
            ErrorCode::Unauthorized => Self::Unauthorized { url, message },
            ErrorCode::Forbidden => Self::Forbidden { url, message },
            ErrorCode::Gone => Self::Gone { url, message },
            ErrorCode::PayloadTooLarge => Self::PayloadTooLarge { url, message },
            ErrorCode::RateLimited => Self::RateLimited {
                url,
                retry_after: wait,
                message,
            },
            ErrorCode::Busy => Self::ServerError {
                status: 503,
                url,
                retry_after: wait,
                message,
            },
            ErrorCode::ServerError => Self::ServerError {
                status: 500,
                url,
                retry_after: None,
                message,
            },
            ErrorCode::UnexpectedStatus => Self::UnexpectedStatus {
                status: 418,
                url,
                message,
            },
            ErrorCode::StaleEpoch => Self::StaleEpoch {
                producer_id: "writer-1".to_owned(),
                epoch: 3,
                current_epoch: 7,
            },
            ErrorCode::SequenceGap => Self::SequenceGap {
                expected_seq: 5,
                received_seq: 9,
            },
            ErrorCode::Network => Self::Network {
                url,
                message: "connection refused".to_owned(),
            },
            ErrorCode::Timeout => Self::Timeout {
                what: "request".to_owned(),
            },
            ErrorCode::ParseError => Self::parse("Stream-Next-Offset header", "not ASCII"),
            ErrorCode::InvalidArgument => Self::invalid("max_in_flight must be at least 1"),
            ErrorCode::AlreadyConsumed => Self::AlreadyConsumed,
            ErrorCode::AlreadyClosed => Self::AlreadyClosed {
                what: "producer".to_owned(),
            },
            ErrorCode::Cancelled => Self::Cancelled,
            ErrorCode::BufferFull => Self::BufferFull {
                requested: 10,
                buffered: 60,
                limit: 64,
            },
            ErrorCode::ProducerSessionConflict => Self::ProducerSessionConflict {
                producer_id: "agent-7".to_owned(),
                epoch: 3,
                server_seq: Some(41),
            },
            ErrorCode::Fenced => Self::subscription_example(SubscriptionErrorCode::Fenced, None),
            ErrorCode::AlreadyClaimed => Self::subscription_example(
                SubscriptionErrorCode::AlreadyClaimed,
                Some("worker-2".to_owned()),
            ),
            ErrorCode::NoPendingWork => {
                Self::subscription_example(SubscriptionErrorCode::NoPendingWork, None)
            }
            ErrorCode::InvalidSignature => Self::WebhookSignature {
                check: crate::subscriptions::SignatureCheck::BadSignature,
            },
        }
    }

    fn subscription_example(code: SubscriptionErrorCode, current_holder: Option<String>) -> Self {
        Self::Subscription {
            code,
            status: 409,
            url: "http://127.0.0.1:1/v1/stream/__ds/subscriptions/example".to_owned(),
            message: Some("server says no".to_owned()),
            current_holder,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn parse(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Parse {
            what: what.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_round_trips_through_its_example() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code), "{code} listed twice in ErrorCode::ALL");
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            let err = Error::example(code);
            assert_eq!(err.code(), code, "example for {code}");
        }
        assert_eq!(ErrorCode::from_name("NO_SUCH_CODE"), None);
        // Exhaustive (no wildcard): a new code does not compile until it has a place here,
        // and then fails until it is also in ErrorCode::ALL.
        let ordinal = |c: ErrorCode| match c {
            ErrorCode::NotFound => 0,
            ErrorCode::ConflictExists => 1,
            ErrorCode::Conflict => 2,
            ErrorCode::ConflictSeq => 3,
            ErrorCode::StreamClosed => 4,
            ErrorCode::BadRequest => 5,
            ErrorCode::Unauthorized => 6,
            ErrorCode::Forbidden => 7,
            ErrorCode::Gone => 8,
            ErrorCode::PayloadTooLarge => 9,
            ErrorCode::RateLimited => 10,
            ErrorCode::Busy => 11,
            ErrorCode::ServerError => 12,
            ErrorCode::UnexpectedStatus => 13,
            ErrorCode::StaleEpoch => 14,
            ErrorCode::SequenceGap => 15,
            ErrorCode::ProducerSessionConflict => 16,
            ErrorCode::Network => 17,
            ErrorCode::Timeout => 18,
            ErrorCode::ParseError => 19,
            ErrorCode::InvalidArgument => 20,
            ErrorCode::AlreadyConsumed => 21,
            ErrorCode::AlreadyClosed => 22,
            ErrorCode::Cancelled => 23,
            ErrorCode::BufferFull => 24,
            ErrorCode::Fenced => 25,
            ErrorCode::AlreadyClaimed => 26,
            ErrorCode::NoPendingWork => 27,
            ErrorCode::InvalidSignature => 28,
        };
        assert_eq!(ErrorCode::ALL.len(), 29);
        for (i, &code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ordinal(code), i, "{code}");
        }
    }

    #[test]
    fn a_503_is_busy_and_other_5xx_are_server_errors() {
        assert_eq!(Error::example(ErrorCode::Busy).status(), Some(503));
        assert!(Error::example(ErrorCode::Busy).is_retryable());
        assert_eq!(
            Error::example(ErrorCode::ServerError).code(),
            ErrorCode::ServerError
        );
    }
}
