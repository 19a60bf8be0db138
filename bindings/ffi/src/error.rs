//! The one error type of the bindings: the core [`Error`] as a uniffi error enum.
//!
//! Kotlin sees it as the sealed class `DurableStreamException` and Swift as the enum
//! `DurableStreamError`. Every variant carries `reason` (the human-readable text; uniffi
//! reserves `message` in Kotlin), `code` (the core's stable code, e.g. `"STREAM_CLOSED"`) and
//! `status` (the HTTP status, when a response was received); some add structured fields.
//! Statuses without a variant of their own (400, 401, 403, 410, 413 and unexpected ones) are
//! [`DurableStreamError::Http`], told apart by `code`.
//!
//! [`error_codes`], [`retryable_error_codes`] and [`raise_error_for_code`] let the Kotlin (and
//! Swift) error-contract tests walk every code of the core.

use durable_streams_client::{Cause, Error, ErrorCode};

/// The transport's or parser's own error under a network error, timeout or parse error.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ErrorCause {
    /// What failed: `connection_refused`, `connection_reset`, `connection_aborted`,
    /// `broken_pipe`, `unexpected_eof`, `io`, `connect`, `timeout`, `http`, `json` or `other`.
    pub kind: String,
    /// What the transport or parser said (escaped and bounded by the core).
    pub message: String,
}

impl From<&Cause> for ErrorCause {
    fn from(c: &Cause) -> Self {
        Self {
            kind: c.kind().as_str().to_owned(),
            message: c.message().to_owned(),
        }
    }
}

/// What an error adds when it knows it (the same in every variant).
///
/// The cause chain is flat here (uniffi has no recursive types): a request that gave up after
/// its retries has `attempts` and `last_attempt_reason` (its last attempt's failure has the
/// same variant, code and fields, so only its description differs); the transport's or
/// parser's error below is `cause`. Kotlin rebuilds the chain as `Throwable.cause`.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ErrorDetails {
    /// How many attempts the request made before it gave up, when it was retried (at least 2).
    pub attempts: Option<u32>,
    /// The description of the last attempt's failure, when the request was retried.
    pub last_attempt_reason: Option<String>,
    /// The transport's or parser's own error (the root of the cause chain), when one is known.
    pub cause: Option<ErrorCause>,
    /// The stream (or subscription) URL the failed request went to, credentials and query
    /// removed.
    pub url: Option<String>,
    /// The server's own message (escaped and bounded by the core), when it sent one.
    pub server_message: Option<String>,
    /// For subscription refusals: the server's subscription error code (e.g.
    /// `SUBSCRIPTION_ALREADY_EXISTS`, `FENCED`).
    pub subscription_code: Option<String>,
}

/// A failed operation.
#[derive(Debug, Clone, thiserror::Error, uniffi::Error)]
pub enum DurableStreamError {
    /// 404: the stream does not exist.
    #[error("{reason}")]
    NotFound {
        /// What happened.
        reason: String,
        /// `NOT_FOUND`.
        code: String,
        /// 404.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// 409 on create: a stream exists at the URL with another configuration.
    #[error("{reason}")]
    StreamExists {
        /// What happened.
        reason: String,
        /// `CONFLICT_EXISTS`.
        code: String,
        /// 409.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// 409 on append: a `Stream-Seq` that did not increase (`CONFLICT_SEQ`) or another
    /// conflict such as a content type mismatch (`CONFLICT`).
    #[error("{reason}")]
    Conflict {
        /// What happened.
        reason: String,
        /// `CONFLICT_SEQ` or `CONFLICT`.
        code: String,
        /// 409.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// The stream is closed: nothing more can be appended.
    #[error("{reason}")]
    StreamClosed {
        /// What happened.
        reason: String,
        /// `STREAM_CLOSED`.
        code: String,
        /// 409.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// The stream's final offset, when the server reported it.
        final_offset: Option<String>,
    },
    /// 403 on an idempotent append: a newer producer epoch owns this producer id.
    #[error("{reason}")]
    StaleEpoch {
        /// What happened.
        reason: String,
        /// `STALE_EPOCH`.
        code: String,
        /// 403.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// The epoch this producer used.
        epoch: u64,
        /// The epoch the server holds.
        current_epoch: u64,
        /// The producer id.
        producer_id: String,
    },
    /// 409 on an idempotent append: the server expected another sequence number.
    #[error("{reason}")]
    SequenceGap {
        /// What happened.
        reason: String,
        /// `SEQUENCE_GAP`.
        code: String,
        /// 409.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// `Producer-Expected-Seq`.
        expected_seq: u64,
        /// `Producer-Received-Seq`.
        received_seq: u64,
    },
    /// An idempotent producer found another session of its producer id writing in its epoch
    /// (a restarted writer at the same epoch, or two writers sharing one id): the batch was not
    /// stored (`PRODUCER_SESSION_CONFLICT`).
    #[error("{reason}")]
    ProducerSessionConflict {
        /// What happened.
        reason: String,
        /// `PRODUCER_SESSION_CONFLICT`.
        code: String,
        /// None: no single HTTP status says it.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// The producer id.
        producer_id: String,
        /// The epoch both sessions wrote in.
        epoch: u64,
        /// The highest sequence the server holds for that epoch, if it said.
        server_seq: Option<u64>,
    },
    /// 429 (`RATE_LIMITED`), 503 (`BUSY`) or another 5xx (`SERVER_ERROR`): worth retrying
    /// later.
    #[error("{reason}")]
    Unavailable {
        /// What happened.
        reason: String,
        /// `RATE_LIMITED`, `BUSY` or `SERVER_ERROR`.
        code: String,
        /// 429 or the 5xx status.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// How long the server asked to wait (`Retry-After`), in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// Any other refused request: `BAD_REQUEST` (400), `UNAUTHORIZED` (401), `FORBIDDEN`
    /// (403), `GONE` (410), `PAYLOAD_TOO_LARGE` (413) or `UNEXPECTED_STATUS`.
    #[error("{reason}")]
    Http {
        /// What happened.
        reason: String,
        /// One of the codes above.
        code: String,
        /// The HTTP status.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// The connection failed before a response arrived (`NETWORK_ERROR`).
    #[error("{reason}")]
    Network {
        /// What happened.
        reason: String,
        /// `NETWORK_ERROR`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// A request or an operation ran past its deadline (`TIMEOUT`).
    #[error("{reason}")]
    Timeout {
        /// What happened.
        reason: String,
        /// `TIMEOUT`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// A server response could not be parsed (`PARSE_ERROR`).
    #[error("{reason}")]
    Parse {
        /// What happened.
        reason: String,
        /// `PARSE_ERROR`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// The caller passed a value the client refuses before sending anything
    /// (`INVALID_ARGUMENT`).
    #[error("{reason}")]
    InvalidArgument {
        /// What was wrong.
        reason: String,
        /// `INVALID_ARGUMENT`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// A response was already consumed (`ALREADY_CONSUMED`) or a producer or handle was
    /// closed (`ALREADY_CLOSED`).
    #[error("{reason}")]
    InvalidState {
        /// What happened.
        reason: String,
        /// `ALREADY_CONSUMED` or `ALREADY_CLOSED`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// A producer's buffer has no room for the message now (`BUFFER_FULL`, from `try_append`).
    #[error("{reason}")]
    BufferFull {
        /// What happened.
        reason: String,
        /// `BUFFER_FULL`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// The size of the refused message, in bytes.
        requested: u64,
        /// Bytes buffered when it was refused.
        buffered: u64,
        /// The producer's `max_buffered_bytes`.
        limit: u64,
    },
    /// A subscription request refused with `FENCED` (the wake is stale, the lease lost),
    /// `ALREADY_CLAIMED` (another worker holds the lease) or `NO_PENDING_WORK`. Other
    /// subscription refusals take the variant of their code (`NotFound`, `Http`, ...).
    #[error("{reason}")]
    Subscription {
        /// What happened.
        reason: String,
        /// `FENCED`, `ALREADY_CLAIMED` or `NO_PENDING_WORK`.
        code: String,
        /// The HTTP status (409).
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// For `ALREADY_CLAIMED`: the worker holding the lease, when the server said.
        current_holder: Option<String>,
    },
    /// A webhook request failed verification (`INVALID_SIGNATURE`).
    #[error("{reason}")]
    InvalidSignature {
        /// What happened.
        reason: String,
        /// `INVALID_SIGNATURE`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
        /// Which check failed: `missing_header`, `malformed_header`, `timestamp_out_of_window`,
        /// `unknown_key`, `bad_signature`, ... (the core's `SignatureCheck::as_str`).
        check: String,
    },
    /// The operation was cancelled (`CANCELLED`).
    #[error("{reason}")]
    Cancelled {
        /// What happened.
        reason: String,
        /// `CANCELLED`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
    /// A failure inside the bindings themselves (`INTERNAL`), such as a runtime that could not
    /// start.
    #[error("{reason}")]
    Internal {
        /// What happened.
        reason: String,
        /// `INTERNAL`.
        code: String,
        /// Always absent.
        status: Option<i32>,
        /// The URL, the server's own message and a subscription refusal's code, when known.
        details: ErrorDetails,
    },
}

impl DurableStreamError {
    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        Self::Internal {
            reason: reason.into(),
            code: "INTERNAL".into(),
            status: None,
            details: ErrorDetails::default(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            reason: reason.into(),
            code: "INVALID_ARGUMENT".into(),
            status: None,
            details: ErrorDetails::default(),
        }
    }
}

impl From<Error> for DurableStreamError {
    fn from(e: Error) -> Self {
        let reason = e.to_string();
        let kind = e.code();
        let code = kind.as_str().to_owned();
        let status = e.status().map(i32::from);
        let details = ErrorDetails {
            attempts: e.attempts(),
            last_attempt_reason: match &e {
                Error::RetriesExhausted { last, .. } => Some(last.to_string()),
                _ => None,
            },
            cause: e.root_cause().map(ErrorCause::from),
            url: match e.last_attempt() {
                Error::Subscription { url, .. } => Some(url.clone()),
                _ => e.url().map(str::to_owned),
            },
            server_message: e.server_message().map(str::to_owned),
            subscription_code: match e.last_attempt() {
                Error::Subscription { code, .. } => Some(code.as_str().to_owned()),
                _ => None,
            },
        };
        // The variant and fields are those of the last attempt's failure.
        let mut e = e;
        while let Error::RetriesExhausted { last, .. } = e {
            e = *last;
        }
        match e {
            Error::NotFound { .. } => Self::NotFound {
                reason,
                code,
                status,
                details,
            },
            Error::ConflictExists { .. } => Self::StreamExists {
                reason,
                code,
                status,
                details,
            },
            Error::Conflict { .. } | Error::SeqConflict { .. } => Self::Conflict {
                reason,
                code,
                status,
                details,
            },
            Error::StreamClosed { final_offset, .. } => Self::StreamClosed {
                reason,
                code,
                status,
                details,
                final_offset: final_offset.map(|o| o.as_str().to_owned()),
            },
            Error::StaleEpoch {
                producer_id,
                epoch,
                current_epoch,
            } => Self::StaleEpoch {
                reason,
                code,
                status,
                details,
                epoch,
                current_epoch,
                producer_id,
            },
            Error::SequenceGap {
                expected_seq,
                received_seq,
            } => Self::SequenceGap {
                reason,
                code,
                status,
                details,
                expected_seq,
                received_seq,
            },
            Error::ProducerSessionConflict {
                producer_id,
                epoch,
                server_seq,
            } => Self::ProducerSessionConflict {
                reason,
                code,
                status,
                details,
                producer_id,
                epoch,
                server_seq,
            },
            Error::RateLimited { .. } | Error::ServerError { .. } => Self::Unavailable {
                retry_after_ms: e
                    .retry_after()
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                reason,
                code,
                status,
                details,
            },
            Error::Network { .. } => Self::Network {
                reason,
                code,
                status,
                details,
            },
            Error::Timeout { .. } => Self::Timeout {
                reason,
                code,
                status,
                details,
            },
            Error::Parse { .. } => Self::Parse {
                reason,
                code,
                status,
                details,
            },
            Error::InvalidArgument { .. } => Self::InvalidArgument {
                reason,
                code,
                status,
                details,
            },
            Error::AlreadyConsumed | Error::AlreadyClosed { .. } => Self::InvalidState {
                reason,
                code,
                status,
                details,
            },
            Error::BufferFull {
                requested,
                buffered,
                limit,
            } => Self::BufferFull {
                reason,
                code,
                status,
                details,
                requested: u64::try_from(requested).unwrap_or(u64::MAX),
                buffered: u64::try_from(buffered).unwrap_or(u64::MAX),
                limit: u64::try_from(limit).unwrap_or(u64::MAX),
            },
            Error::Subscription { current_holder, .. } => match kind {
                ErrorCode::Fenced | ErrorCode::AlreadyClaimed | ErrorCode::NoPendingWork => {
                    Self::Subscription {
                        reason,
                        code,
                        status,
                        details,
                        current_holder,
                    }
                }
                // Subscription refusals that share a stream code get that code's variant.
                ErrorCode::NotFound => Self::NotFound {
                    reason,
                    code,
                    status,
                    details,
                },
                ErrorCode::ConflictExists => Self::StreamExists {
                    reason,
                    code,
                    status,
                    details,
                },
                ErrorCode::Conflict => Self::Conflict {
                    reason,
                    code,
                    status,
                    details,
                },
                _ => Self::Http {
                    reason,
                    code,
                    status,
                    details,
                },
            },
            Error::WebhookSignature { check } => Self::InvalidSignature {
                reason,
                code,
                status,
                details,
                check: check.as_str().to_owned(),
            },
            Error::Cancelled => Self::Cancelled {
                reason,
                code,
                status,
                details,
            },
            // BadRequest, Unauthorized, Forbidden, Gone, PayloadTooLarge, UnexpectedStatus,
            // and variants added to the core later.
            _ => Self::Http {
                reason,
                code,
                status,
                details,
            },
        }
    }
}

/// Every error code of the core, in its order (the error-contract tests walk them).
#[uniffi::export]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// The codes whose errors are worth retrying (network errors, timeouts, 429, 5xx), by the
/// core's rule; the Kotlin layer reads them once for `DurableStreamException.retryable`.
#[uniffi::export]
pub fn retryable_error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .filter(|&&c| Error::example(c).is_retryable())
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// Always fails: with the error that the core's representative error with `code` becomes (with
/// `retried`: as the last attempt of a request that gave up after 3), or `INVALID_ARGUMENT` for
/// an unknown code. The error-contract tests walk every code through this.
#[uniffi::export(default(retried = false))]
pub fn raise_error_for_code(code: String, retried: bool) -> Result<(), DurableStreamError> {
    match ErrorCode::from_name(&code) {
        Some(c) if retried => Err(Error::example_retried(c).into()),
        Some(c) => Err(Error::example(c).into()),
        None => Err(DurableStreamError::invalid(format!(
            "unknown error code {code:?}"
        ))),
    }
}
