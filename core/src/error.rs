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
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// 404: the stream does not exist (or, on fork creation, its source does not).
    NotFound {
        /// The stream URL.
        url: String,
        /// The server's message, if it sent one.
        message: Option<String>,
    },
    /// 409 on create: a stream already exists with a different configuration.
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
    Conflict {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 409 on an append that carried `Stream-Seq`: the value did not increase.
    SeqConflict {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// The stream is closed: no more data can be appended.
    StreamClosed {
        /// The stream URL.
        url: String,
        /// The final offset of the stream, when the server reported it.
        final_offset: Option<Offset>,
    },
    /// 400: the server refused the request.
    BadRequest {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 401.
    Unauthorized {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 403 outside producer fencing.
    Forbidden {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 410: the offset is before retained data, or the stream is soft-deleted.
    Gone {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 413.
    PayloadTooLarge {
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 429, with the server's `Retry-After` when it sent one.
    RateLimited {
        /// The stream URL.
        url: String,
        /// How long the server asked the client to wait.
        retry_after: Option<Duration>,
        /// The server's message.
        message: Option<String>,
    },
    /// 5xx.
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
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The stream URL.
        url: String,
        /// The server's message.
        message: Option<String>,
    },
    /// 403 on an idempotent append: a newer producer epoch owns this producer id.
    StaleEpoch {
        /// The producer id (as given to the producer).
        producer_id: String,
        /// The epoch this producer used.
        epoch: u64,
        /// The epoch the server holds (from `Producer-Epoch`).
        current_epoch: u64,
    },
    /// 409 on an idempotent append: the server expected another sequence number.
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
    ProducerSessionConflict {
        /// The producer id.
        producer_id: String,
        /// The epoch both sessions wrote in.
        epoch: u64,
        /// The highest sequence the server holds for this epoch (`Producer-Seq`), if it said.
        server_seq: Option<u64>,
    },
    /// The connection failed before a response arrived.
    Network {
        /// The stream URL.
        url: String,
        /// What the transport reported (credentials removed, escaped and bounded).
        message: String,
        /// The transport's own error (the I/O error when there is one), as
        /// [`std::error::Error::source`] returns it.
        source: Option<Cause>,
    },
    /// A request or an operation ran past its deadline.
    Timeout {
        /// What timed out.
        what: String,
        /// The transport's timeout error when the transport's timer fired; `None` when the
        /// client's own deadline did.
        source: Option<Cause>,
    },
    /// A response from the server could not be understood.
    Parse {
        /// What was being parsed (a header, an SSE event, a JSON body, ...).
        what: String,
        /// Why it failed.
        message: String,
        /// The parser's own error (the JSON parser's, for a JSON body), when one is behind it.
        source: Option<Cause>,
    },
    /// The caller passed something the client refuses before any request.
    InvalidArgument {
        /// What was wrong.
        message: String,
    },
    /// The response was already consumed by another reader.
    AlreadyConsumed,
    /// The producer or handle was closed or detached.
    AlreadyClosed {
        /// What is closed.
        what: String,
    },
    /// The operation was cancelled.
    Cancelled,
    /// An idempotent producer holds `max_buffered_bytes` already: the message does not fit
    /// now (`try_append`). Wait for room (`wait_for_room`, or `append`, which waits).
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
    /// A request was retried and failed every time: `last` is the final attempt's failure (and
    /// [`std::error::Error::source`]). The error answers [`code`](Self::code),
    /// [`status`](Self::status), [`url`](Self::url), [`server_message`](Self::server_message),
    /// [`is_retryable`](Self::is_retryable) and [`retry_after`](Self::retry_after) as `last`
    /// does: a 503 that outlasts the retries is still `BUSY`. [`last_attempt`](Self::last_attempt)
    /// gives `last` for matching on its variant. Only failures after at least one retry are
    /// wrapped; an error that is not retried is returned as it is.
    RetriesExhausted {
        /// How many attempts were made (the first one and the retries), at least 2.
        attempts: u32,
        /// The final attempt's failure.
        last: Box<Error>,
    },
    /// A webhook request failed verification; `check` says which check failed.
    WebhookSignature {
        /// The failed check.
        check: crate::subscriptions::SignatureCheck,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound { url, message } => {
                write!(f, "stream not found: {url}{}", fmt_msg(message))
            }
            Self::ConflictExists {
                url,
                message,
                existing_closed,
            } => write!(
                f,
                "stream already exists with a different configuration: {url}{}{}",
                fmt_closed_difference(*existing_closed),
                fmt_msg(message)
            ),
            Self::Conflict { url, message } => {
                write!(f, "conflict at {url}{}", fmt_msg(message))
            }
            Self::SeqConflict { url, message } => write!(
                f,
                "Stream-Seq conflict at {url}: sequence must increase{}",
                fmt_msg(message)
            ),
            Self::StreamClosed { url, final_offset } => {
                write!(f, "stream is closed: {url}")?;
                match final_offset {
                    // A header value is visible ASCII, but of any length the server likes.
                    Some(o) => write!(
                        f,
                        " (final offset {})",
                        crate::http::escape_server_text(o.as_str(), MAX_OFFSET_IN_MESSAGE)
                    ),
                    None => Ok(()),
                }
            }
            Self::BadRequest { url, message } => {
                write!(f, "bad request to {url}{}", fmt_msg(message))
            }
            Self::Unauthorized { url, message } => {
                write!(f, "unauthorized: {url}{}", fmt_msg(message))
            }
            Self::Forbidden { url, message } => write!(f, "forbidden: {url}{}", fmt_msg(message)),
            Self::Gone { url, message } => write!(f, "gone: {url}{}", fmt_msg(message)),
            Self::PayloadTooLarge { url, message } => {
                write!(f, "payload too large for {url}{}", fmt_msg(message))
            }
            Self::RateLimited {
                url,
                retry_after,
                message,
            } => {
                write!(f, "rate limited by {url}")?;
                if let Some(d) = retry_after {
                    write!(f, " (retry after {:.1}s)", d.as_secs_f64())?;
                }
                f.write_str(&fmt_msg(message))
            }
            Self::ServerError {
                status,
                url,
                message,
                ..
            } => write!(f, "server error {status} from {url}{}", fmt_msg(message)),
            Self::UnexpectedStatus {
                status,
                url,
                message,
            } => write!(
                f,
                "unexpected status {status} from {url}{}",
                fmt_msg(message)
            ),
            Self::StaleEpoch {
                producer_id,
                epoch,
                current_epoch,
            } => write!(
                f,
                "producer id {producer_id:?}: stale producer epoch {epoch}, the server's current \
                 epoch is {current_epoch}"
            ),
            Self::SequenceGap {
                expected_seq,
                received_seq,
            } => write!(
                f,
                "producer sequence gap: server expected {expected_seq}, received {received_seq}"
            ),
            Self::ProducerSessionConflict {
                producer_id,
                epoch,
                server_seq,
            } => {
                write!(
                    f,
                    "producer id {producer_id:?} epoch {epoch}: another session of this producer \
                     id has written in this epoch"
                )?;
                if let Some(s) = server_seq {
                    write!(f, " (the server holds sequence {s})")?;
                }
                f.write_str("; the batch was not stored (use a new epoch: auto_claim or restart())")
            }
            Self::Network { url, message, .. } => {
                write!(f, "network error talking to {url}: {message}")
            }
            Self::Timeout { what, .. } => write!(f, "timed out: {what}"),
            Self::Parse { what, message, .. } => write!(f, "could not parse {what}: {message}"),
            Self::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
            Self::AlreadyConsumed => {
                f.write_str("response already consumed: a StreamResponse can be read only once")
            }
            Self::AlreadyClosed { what } => write!(f, "{what} is closed"),
            Self::Cancelled => f.write_str("cancelled"),
            Self::BufferFull {
                requested,
                buffered,
                limit,
            } => write!(
                f,
                "producer buffer full: {requested} more bytes do not fit ({buffered} of {limit} \
                 bytes buffered)"
            ),
            Self::Subscription {
                code,
                status,
                url,
                message,
                ..
            } => write!(
                f,
                "subscription request to {url} refused ({status} {}){}",
                code.as_str(),
                fmt_msg(message)
            ),
            Self::RetriesExhausted { attempts, last } => {
                write!(f, "{last} (gave up after {attempts} attempts)")
            }
            Self::WebhookSignature { check } => write!(f, "webhook signature rejected: {check}"),
        }
    }
}

impl std::error::Error for Error {
    /// The cause: the last attempt's failure of [`Error::RetriesExhausted`] (an [`Error`], so
    /// `downcast_ref::<Error>()` finds it), or the transport's or parser's [`Cause`] under
    /// [`Error::Network`], [`Error::Timeout`] and [`Error::Parse`].
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::RetriesExhausted { last, .. } => Some(&**last),
            Self::Network { source, .. }
            | Self::Timeout { source, .. }
            | Self::Parse { source, .. } => source.as_ref().map(|c| c as _),
            _ => None,
        }
    }
}

/// The error under a [`Error::Network`], [`Error::Timeout`] or [`Error::Parse`]: what the
/// transport (or the JSON parser) reported, kept as text (escaped and bounded like server text)
/// and a [`CauseKind`], so that errors stay `Clone` and can cross into every binding (Python
/// raises it as the matching `OSError` or `ValueError`, Node as an `Error` with a Node-style
/// `code`, Kotlin as the matching `java.io` exception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    kind: CauseKind,
    message: String,
}

/// What kind of failure a [`Cause`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CauseKind {
    /// The server refused the connection (nothing listening).
    ConnectionRefused,
    /// The connection was reset by the peer.
    ConnectionReset,
    /// The connection was aborted.
    ConnectionAborted,
    /// Writing to a connection the peer had closed.
    BrokenPipe,
    /// The connection ended before the response was complete.
    UnexpectedEof,
    /// Another I/O error.
    Io,
    /// Connecting failed without an I/O error below it (name resolution, TLS, ...).
    Connect,
    /// The transport's timer fired.
    Timeout,
    /// The HTTP exchange broke (a malformed response, a body cut short, ...).
    Http,
    /// JSON that does not parse.
    Json,
    /// Anything else.
    Other,
}

impl CauseKind {
    /// The kind as a lower-case string, e.g. `"connection_refused"` (the bindings' spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionRefused => "connection_refused",
            Self::ConnectionReset => "connection_reset",
            Self::ConnectionAborted => "connection_aborted",
            Self::BrokenPipe => "broken_pipe",
            Self::UnexpectedEof => "unexpected_eof",
            Self::Io => "io",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Http => "http",
            Self::Json => "json",
            Self::Other => "other",
        }
    }

    fn from_io(kind: std::io::ErrorKind) -> Self {
        use std::io::ErrorKind as K;
        match kind {
            K::ConnectionRefused => Self::ConnectionRefused,
            K::ConnectionReset => Self::ConnectionReset,
            K::ConnectionAborted => Self::ConnectionAborted,
            K::BrokenPipe => Self::BrokenPipe,
            K::UnexpectedEof => Self::UnexpectedEof,
            K::TimedOut => Self::Timeout,
            _ => Self::Io,
        }
    }
}

impl Cause {
    /// A cause of `kind`; `message` is escaped and bounded.
    pub fn new(kind: CauseKind, message: impl AsRef<str>) -> Self {
        Self {
            kind,
            message: crate::http::escape_server_text(message.as_ref(), MAX_CAUSE_MESSAGE),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> CauseKind {
        self.kind
    }

    /// What the transport or parser said (escaped, at most 2048 characters).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause of a transport error: the innermost I/O error of its source chain when there
    /// is one (its kind decides [`CauseKind`]), else the innermost error.
    pub(crate) fn from_transport(e: &(dyn std::error::Error + 'static), timeout: bool) -> Self {
        let mut innermost: &(dyn std::error::Error + 'static) = e;
        let mut io: Option<&std::io::Error> = None;
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(i) = err.downcast_ref::<std::io::Error>() {
                io = Some(i);
            }
            innermost = err;
            cur = err.source();
        }
        let (kind, message) = match io {
            Some(i) => (CauseKind::from_io(i.kind()), i.to_string()),
            None => (
                if timeout {
                    CauseKind::Timeout
                } else if let Some(r) = e.downcast_ref::<reqwest::Error>() {
                    if r.is_connect() {
                        CauseKind::Connect
                    } else if r.is_body() || r.is_decode() || r.is_request() {
                        CauseKind::Http
                    } else {
                        CauseKind::Other
                    }
                } else {
                    CauseKind::Other
                },
                innermost.to_string(),
            ),
        };
        let kind = if timeout { CauseKind::Timeout } else { kind };
        Self::new(kind, message)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {}

/// The longest cause message kept (characters of the escaped text).
const MAX_CAUSE_MESSAGE: usize = 2048;

/// The most characters of an offset quoted in an error's message (the field keeps it whole).
const MAX_OFFSET_IN_MESSAGE: usize = 128;

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
            Self::RetriesExhausted { last, .. } => last.code(),
        }
    }

    /// The error itself, or for [`Error::RetriesExhausted`] the final attempt's failure: the
    /// error to match on for its variant and fields.
    pub fn last_attempt(&self) -> &Error {
        match self {
            Self::RetriesExhausted { last, .. } => last.last_attempt(),
            other => other,
        }
    }

    /// How many attempts a request made before it gave up, when it was retried
    /// ([`Error::RetriesExhausted`]); `None` for an error that was not retried.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Self::RetriesExhausted { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// The transport's or parser's own error under a [`Error::Network`], [`Error::Timeout`]
    /// or [`Error::Parse`] (looking through [`Error::RetriesExhausted`]): the root of the
    /// [`std::error::Error::source`] chain when it is not a core error.
    pub fn root_cause(&self) -> Option<&Cause> {
        match self.last_attempt() {
            Self::Network { source, .. }
            | Self::Timeout { source, .. }
            | Self::Parse { source, .. } => source.as_ref(),
            _ => None,
        }
    }

    /// Wraps `last` as [`Error::RetriesExhausted`] when more than one attempt was made.
    pub(crate) fn gave_up(last: Error, attempts: u32) -> Error {
        if attempts < 2 || matches!(last, Self::RetriesExhausted { .. }) {
            return last;
        }
        Self::RetriesExhausted {
            attempts,
            last: Box::new(last),
        }
    }

    /// The HTTP status behind this error, when a response was received.
    pub fn status(&self) -> Option<u16> {
        Some(match self.last_attempt() {
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
        match self.last_attempt() {
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
        match self.last_attempt() {
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
            self.last_attempt(),
            Self::Network { .. }
                | Self::Timeout { .. }
                | Self::ServerError { .. }
                | Self::RateLimited { .. }
        )
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.last_attempt() {
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
                source: Some(Cause::new(
                    CauseKind::ConnectionRefused,
                    "connection refused (os error 111)",
                )),
            },
            ErrorCode::Timeout => Self::Timeout {
                what: "request".to_owned(),
                source: None,
            },
            ErrorCode::ParseError => Self::Parse {
                what: "JSON response".to_owned(),
                message: "invalid JSON message: expected value at line 1 column 2".to_owned(),
                source: Some(Cause::new(
                    CauseKind::Json,
                    "expected value at line 1 column 2",
                )),
            },
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

    /// [`Error::example`] after 3 attempts: [`Error::RetriesExhausted`] with the example as
    /// the last attempt (the bindings' contract tests check that it maps to the same class and
    /// fields, with the last attempt as its cause).
    #[doc(hidden)]
    pub fn example_retried(code: ErrorCode) -> Self {
        Self::RetriesExhausted {
            attempts: 3,
            last: Box::new(Self::example(code)),
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
            source: None,
        }
    }

    /// A [`Error::Parse`] for JSON that did not parse, with the parser's error as its source.
    pub(crate) fn json(
        what: impl Into<String>,
        message: impl Into<String>,
        err: &serde_json::Error,
    ) -> Self {
        Self::Parse {
            what: what.into(),
            message: message.into(),
            source: Some(Cause::new(CauseKind::Json, err.to_string())),
        }
    }

    /// A [`Error::Timeout`] of the client's own deadline (no transport error below it).
    pub(crate) fn timeout(what: impl Into<String>) -> Self {
        Self::Timeout {
            what: what.into(),
            source: None,
        }
    }

    /// A timeout that ended a series of failed attempts: its `source` is the last attempt's
    /// transport or parser cause (when it had one), so the chain still ends at what the
    /// network said; the last attempt itself is in the text.
    pub(crate) fn timeout_after(what: impl Into<String>, last: &Error) -> Self {
        Self::Timeout {
            what: what.into(),
            source: last.root_cause().cloned(),
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
    fn sources_of_the_examples() {
        use std::error::Error as _;
        for &code in ErrorCode::ALL {
            let err = Error::example(code);
            let source = err.source();
            match code {
                ErrorCode::Network => {
                    let c = source.and_then(|s| s.downcast_ref::<Cause>()).unwrap();
                    assert_eq!(c.kind(), CauseKind::ConnectionRefused);
                    assert_eq!(err.root_cause(), Some(c));
                }
                ErrorCode::ParseError => {
                    let c = source.and_then(|s| s.downcast_ref::<Cause>()).unwrap();
                    assert_eq!(c.kind(), CauseKind::Json);
                }
                _ => assert!(source.is_none(), "{code}: {source:?}"),
            }
            assert_eq!(err.attempts(), None);
        }
    }

    #[test]
    fn retries_exhausted_answers_as_its_last_attempt() {
        use std::error::Error as _;
        for &code in ErrorCode::ALL {
            let last = Error::example(code);
            let err = Error::gave_up(last.clone(), 4);
            assert_eq!(err.code(), code);
            assert_eq!(err.status(), last.status());
            assert_eq!(err.url(), last.url());
            assert_eq!(err.server_message(), last.server_message());
            assert_eq!(err.is_retryable(), last.is_retryable());
            assert_eq!(err.retry_after(), last.retry_after());
            assert_eq!(err.attempts(), Some(4));
            assert_eq!(err.root_cause(), last.root_cause());
            assert_eq!(err.last_attempt().to_string(), last.to_string());
            assert_eq!(
                err.to_string(),
                format!("{last} (gave up after 4 attempts)")
            );
            let source = err
                .source()
                .and_then(|s| s.downcast_ref::<Error>())
                .unwrap();
            assert_eq!(source.to_string(), last.to_string());
        }
        // One attempt is not "giving up after retries", and wrapping does not nest.
        let one = Error::gave_up(Error::example(ErrorCode::Busy), 1);
        assert_eq!(one.attempts(), None);
        let twice = Error::gave_up(Error::gave_up(Error::example(ErrorCode::Busy), 3), 5);
        assert_eq!(twice.attempts(), Some(3));
    }

    #[test]
    fn a_long_final_offset_is_shortened_in_the_message_and_kept_whole_in_the_field() {
        let long = format!("0_{}", "9".repeat(10_000));
        let e = Error::StreamClosed {
            url: "http://127.0.0.1:1/s".to_owned(),
            final_offset: Some(Offset::from(long.as_str())),
        };
        let text = e.to_string();
        assert!(text.starts_with("stream is closed: http://127.0.0.1:1/s (final offset 0_999"));
        assert!(text.ends_with("…)"), "{text}");
        assert!(
            text.chars().count() < 200,
            "{} characters",
            text.chars().count()
        );
        match e {
            Error::StreamClosed { final_offset, .. } => {
                assert_eq!(final_offset.map(|o| o.as_str().len()), Some(long.len()))
            }
            other => panic!("{other:?}"),
        }
        let short = Error::example(ErrorCode::StreamClosed).to_string();
        assert!(
            short.ends_with("(final offset 0000000000000042)"),
            "{short}"
        );
    }

    #[test]
    fn causes_are_escaped_and_bounded() {
        let c = Cause::new(CauseKind::Other, format!("a\nb{}", "x".repeat(5000)));
        assert!(!c.message().contains('\n'));
        assert!(c.message().chars().count() <= MAX_CAUSE_MESSAGE + 4);
        let bad = serde_json::from_str::<serde_json::Value>("{\"a\": \u{1b}[31m").unwrap_err();
        let e = Error::json("JSON response", "bad", &bad);
        let c = e.root_cause().unwrap();
        assert_eq!(c.kind(), CauseKind::Json);
        assert!(c.message().contains("line 1"), "{c}");
        assert!(!c.message().contains('\u{1b}'));
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
