//! Core errors as napi rejections.
//!
//! A rejection's message is a JSON object with the error's class, code, status and structured
//! fields; the TypeScript layer (node/src/errors.ts) turns it into an instance of the matching
//! `Error` subclass. This file is the one place that decides the class of a core error.

use durable_streams_client::Error;
use serde_json::{json, Map, Value};

/// Marks a message produced by [`describe`], so the TypeScript layer knows it can parse it.
const MARKER: &str = "durable-streams-client:";

/// The JSON description of a core error: `name` (the class), `message`, `code`, `status`,
/// `retryable` and the fields of the variant.
pub(crate) fn describe(err: &Error) -> String {
    let mut m = Map::new();
    let mut set = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    let name = match err {
        Error::StreamClosed { final_offset, .. } => {
            set(
                "finalOffset",
                json!(final_offset.as_ref().map(|o| o.as_str())),
            );
            "StreamClosedError"
        }
        Error::StaleEpoch {
            epoch,
            current_epoch,
        } => {
            set("epoch", json!(epoch));
            set("currentEpoch", json!(current_epoch));
            "StaleEpochError"
        }
        Error::SequenceGap {
            expected_seq,
            received_seq,
        } => {
            set("expectedSeq", json!(expected_seq));
            set("receivedSeq", json!(received_seq));
            "SequenceGapError"
        }
        Error::ProducerSessionConflict {
            producer_id,
            epoch,
            server_seq,
        } => {
            set("producerId", json!(producer_id));
            set("epoch", json!(epoch));
            set("serverSeq", json!(server_seq));
            "ProducerSessionConflictError"
        }
        Error::ServerError { .. } | Error::UnexpectedStatus { .. } => "FetchError",
        _ => "DurableStreamError",
    };
    if let Some(d) = err.retry_after() {
        set("retryAfterMs", json!(d.as_millis() as f64));
    }
    set("name", json!(name));
    set("message", json!(err.to_string()));
    set("code", json!(err.code().as_str()));
    set("status", json!(err.status()));
    set("serverMessage", json!(err.server_message()));
    set("retryable", json!(err.is_retryable()));
    format!("{MARKER}{}", Value::Object(m))
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
