//! Core errors as napi rejections.
//!
//! A rejection's message is a JSON object with the error's class, code, status and structured
//! fields; the TypeScript layer (node/src/errors.ts) turns it into an instance of the matching
//! `Error` subclass. This file is the one place that decides the class of a core error.
//!
//! The cause chain travels as `cause`: for a request that gave up after its retries, the
//! description of the last attempt's failure; for a network error, timeout or parse error,
//! the transport's or parser's own error (`kind`, `message` and a Node-style `errno` code such
//! as `ECONNREFUSED`); `null` otherwise.

use durable_streams_client::{Cause, CauseKind, Error, ErrorCode};
use serde_json::{json, Map, Value};

/// Marks a message produced by [`describe`], so the TypeScript layer knows it can parse it.
const MARKER: &str = "durable-streams-client:";

/// The JSON description of a core error: `message`, `code`, `status`, `retryable`, `url`,
/// `serverMessage` and the fields of the variant. The class is chosen from the code in one
/// place, node/src/errors.ts (`fromDescription`).
pub(crate) fn describe(err: &Error) -> String {
    format!("{MARKER}{}", describe_value(err))
}

/// The description of a transport's or parser's error: `transport: true`, `kind`, `message`
/// and, for the I/O errors Node itself names, `errno` (`ECONNREFUSED`, `ECONNRESET`, ...).
fn describe_cause(c: &Cause) -> Value {
    let errno = match c.kind() {
        CauseKind::ConnectionRefused => Some("ECONNREFUSED"),
        CauseKind::ConnectionReset => Some("ECONNRESET"),
        CauseKind::ConnectionAborted => Some("ECONNABORTED"),
        CauseKind::BrokenPipe => Some("EPIPE"),
        CauseKind::Timeout => Some("ETIMEDOUT"),
        _ => None,
    };
    json!({
        "transport": true,
        "kind": c.kind().as_str(),
        "message": c.message(),
        "errno": errno,
    })
}

fn describe_value(err: &Error) -> Value {
    let mut m = Map::new();
    let mut set = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    let cause = match err {
        Error::RetriesExhausted { last, .. } => describe_value(last),
        Error::Network { source, .. }
        | Error::Timeout { source, .. }
        | Error::Parse { source, .. } => source.as_ref().map_or(Value::Null, describe_cause),
        _ => Value::Null,
    };
    set("cause", cause);
    set("attempts", json!(err.attempts()));
    // The fields are those of the last attempt's failure.
    match err.last_attempt() {
        Error::StreamClosed { final_offset, .. } => {
            set(
                "finalOffset",
                json!(final_offset.as_ref().map(|o| o.as_str())),
            );
        }
        Error::StaleEpoch {
            producer_id,
            epoch,
            current_epoch,
        } => {
            set("producerId", json!(producer_id));
            set("epoch", json!(epoch));
            set("currentEpoch", json!(current_epoch));
        }
        Error::SequenceGap {
            expected_seq,
            received_seq,
        } => {
            set("expectedSeq", json!(expected_seq));
            set("receivedSeq", json!(received_seq));
        }
        Error::BufferFull {
            requested,
            buffered,
            limit,
        } => {
            set("requested", json!(requested));
            set("buffered", json!(buffered));
            set("limit", json!(limit));
        }
        Error::ProducerSessionConflict {
            producer_id,
            epoch,
            server_seq,
        } => {
            set("producerId", json!(producer_id));
            set("epoch", json!(epoch));
            set("serverSeq", json!(server_seq));
        }
        Error::Subscription {
            code,
            current_holder,
            ..
        } => {
            set("subscriptionCode", json!(code.as_str()));
            set("currentHolder", json!(current_holder));
        }
        Error::WebhookSignature { check } => {
            set("check", json!(check.as_str()));
        }
        _ => {}
    }
    if let Some(d) = err.retry_after() {
        set("retryAfterMs", json!(d.as_millis() as f64));
    }
    set("message", json!(err.to_string()));
    set("code", json!(err.code().as_str()));
    set("status", json!(err.status()));
    set("url", json!(err.url()));
    set("serverMessage", json!(err.server_message()));
    set("retryable", json!(err.is_retryable()));
    Value::Object(m)
}

/// Every error code of the core, for the error-contract test (node/test/errors.test.mjs).
#[napi_derive::napi]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// The description of a representative core error with `code` (the error-contract test turns
/// it into the package's error class).
/// With `retried`, the same error as the last attempt of a request that gave up after 3.
#[napi_derive::napi]
pub fn error_for_code(code: String, retried: Option<bool>) -> napi::Result<String> {
    let code = ErrorCode::from_name(&code)
        .ok_or_else(|| invalid(format!("unknown error code {code:?}")))?;
    Ok(describe(&if retried == Some(true) {
        Error::example_retried(code)
    } else {
        Error::example(code)
    }))
}

/// The napi error for a core error.
pub(crate) fn to_napi(err: Error) -> napi::Error {
    napi::Error::from_reason(describe(&err))
}

/// An invalid-argument error detected while converting options.
pub(crate) fn invalid(message: impl Into<String>) -> napi::Error {
    to_napi(Error::InvalidArgument {
        message: message.into(),
    })
}
