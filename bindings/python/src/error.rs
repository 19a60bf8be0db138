//! Maps the core [`Error`] to the exception classes of `durable_streams_client._errors`.
//!
//! The classes are plain Python (so they carry docstrings, typed attributes and pickle like any
//! exception); this is the one place that decides which class a core error becomes and which
//! attributes it carries. Every exception gets `code`, `status`, `server_message`,
//! `retryable`, `url` and `attempts`; variants with more data add it (`final_offset`,
//! `retry_after`, epochs, seqs).
//!
//! The core's cause chain becomes `__cause__`: a request that gave up after its retries is
//! raised as the class of its last attempt's failure (same code), with that failure (a
//! `DurableStreamError` of its own) as `__cause__`; a network error, timeout or parse error
//! has the transport's or parser's error as `__cause__`, as the builtin exception it is
//! (`ConnectionRefusedError`, `TimeoutError`, `ValueError`, ...).

use durable_streams_client::{Cause, CauseKind, Error, ErrorCode, SubscriptionErrorCode};
use pyo3::exceptions::{
    PyBrokenPipeError, PyConnectionAbortedError, PyConnectionError, PyConnectionRefusedError,
    PyConnectionResetError, PyOSError, PyRuntimeError, PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The Python exception for a core error.
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    match build(py, err) {
        Ok(exc) => exc,
        // Only if the package is broken (the errors module cannot be imported).
        Err(e) => {
            let fallback = PyRuntimeError::new_err(err.to_string());
            fallback.set_cause(py, Some(e));
            fallback
        }
    }
}

/// Every error code of the core, for the error-contract test (tests/test_errors.py).
#[pyfunction]
pub(crate) fn _error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// The exception a representative core error with `code` becomes (the error-contract test
/// walks every code through this).
/// With `retried`, the same error as the last attempt of a request that gave up after 3.
#[pyfunction]
#[pyo3(signature = (code, retried = false))]
pub(crate) fn _error_for_code(py: Python<'_>, code: &str, retried: bool) -> PyResult<Py<PyAny>> {
    let code = ErrorCode::from_name(code).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!("unknown error code {code:?}"))
    })?;
    let err = if retried {
        Error::example_retried(code)
    } else {
        Error::example(code)
    };
    Ok(to_py(py, &err).into_value(py).into_any())
}

/// The builtin exception for a transport's or parser's error.
fn cause_to_py(py: Python<'_>, cause: &Cause) -> PyResult<PyErr> {
    let msg = cause.message().to_owned();
    let errno = |name: &str| -> PyResult<(Py<PyAny>, String)> {
        Ok((py.import("errno")?.getattr(name)?.unbind(), msg.clone()))
    };
    Ok(match cause.kind() {
        CauseKind::ConnectionRefused => PyConnectionRefusedError::new_err(errno("ECONNREFUSED")?),
        CauseKind::ConnectionReset => PyConnectionResetError::new_err(errno("ECONNRESET")?),
        CauseKind::ConnectionAborted => PyConnectionAbortedError::new_err(errno("ECONNABORTED")?),
        CauseKind::BrokenPipe => PyBrokenPipeError::new_err(errno("EPIPE")?),
        CauseKind::UnexpectedEof | CauseKind::Connect => PyConnectionError::new_err(msg),
        CauseKind::Timeout => PyTimeoutError::new_err(msg),
        CauseKind::Json => PyValueError::new_err(msg),
        // Io, Http, Other and kinds added to the core later.
        _ => PyOSError::new_err(msg),
    })
}

/// The exception that becomes `__cause__`, if the error has a cause.
fn cause_of(py: Python<'_>, err: &Error) -> PyResult<Option<PyErr>> {
    match err {
        Error::RetriesExhausted { last, .. } => Ok(Some(build(py, last)?)),
        Error::Network { source, .. }
        | Error::Timeout { source, .. }
        | Error::Parse { source, .. } => source.as_ref().map(|c| cause_to_py(py, c)).transpose(),
        _ => Ok(None),
    }
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let kw = PyDict::new(py);
    kw.set_item("code", err.code().as_str())?;
    kw.set_item("status", err.status())?;
    kw.set_item("server_message", err.server_message())?;
    kw.set_item("retryable", err.is_retryable())?;
    kw.set_item(
        "url",
        match err.last_attempt() {
            Error::Subscription { url, .. } => Some(url.as_str()),
            e => e.url(),
        },
    )?;
    kw.set_item("attempts", err.attempts())?;
    // The class and fields are those of the last attempt's failure.
    let class = match err.last_attempt() {
        Error::NotFound { .. } => "StreamNotFoundError",
        Error::ConflictExists { .. } => "StreamExistsError",
        Error::SeqConflict { .. } => "SeqConflictError",
        Error::Conflict { .. } => "ConflictError",
        Error::StreamClosed { final_offset, .. } => {
            kw.set_item("final_offset", final_offset.as_ref().map(|o| o.as_str()))?;
            "StreamClosedError"
        }
        Error::BadRequest { .. } => "BadRequestError",
        Error::Unauthorized { .. } => "UnauthorizedError",
        Error::Forbidden { .. } => "ForbiddenError",
        Error::Gone { .. } => "GoneError",
        Error::PayloadTooLarge { .. } => "PayloadTooLargeError",
        Error::RateLimited { .. } | Error::ServerError { .. } => {
            kw.set_item("retry_after", err.retry_after().map(|d| d.as_secs_f64()))?;
            if matches!(err.last_attempt(), Error::RateLimited { .. }) {
                "RateLimitedError"
            } else {
                "ServerError"
            }
        }
        Error::StaleEpoch {
            producer_id,
            epoch,
            current_epoch,
        } => {
            kw.set_item("producer_id", producer_id)?;
            kw.set_item("epoch", epoch)?;
            kw.set_item("current_epoch", current_epoch)?;
            "StaleEpochError"
        }
        Error::SequenceGap {
            expected_seq,
            received_seq,
        } => {
            kw.set_item("expected_seq", expected_seq)?;
            kw.set_item("received_seq", received_seq)?;
            "SequenceGapError"
        }
        Error::ProducerSessionConflict {
            producer_id,
            epoch,
            server_seq,
        } => {
            kw.set_item("producer_id", producer_id)?;
            kw.set_item("epoch", epoch)?;
            kw.set_item("server_seq", server_seq)?;
            "ProducerSessionConflictError"
        }
        Error::Network { .. } => "NetworkError",
        Error::Timeout { .. } => "StreamTimeoutError",
        Error::Parse { .. } => "ParseError",
        Error::InvalidArgument { .. } => "InvalidArgumentError",
        Error::AlreadyConsumed => "AlreadyConsumedError",
        Error::AlreadyClosed { .. } => "AlreadyClosedError",
        Error::BufferFull {
            requested,
            buffered,
            limit,
        } => {
            kw.set_item("requested", requested)?;
            kw.set_item("buffered", buffered)?;
            kw.set_item("limit", limit)?;
            "BufferFullError"
        }
        Error::Subscription {
            code,
            current_holder,
            ..
        } => {
            kw.set_item("subscription_code", code.as_str())?;
            match code {
                SubscriptionErrorCode::Fenced => "FencedError",
                SubscriptionErrorCode::AlreadyClaimed => {
                    kw.set_item("current_holder", current_holder)?;
                    "AlreadyClaimedError"
                }
                SubscriptionErrorCode::NoPendingWork => "NoPendingWorkError",
                _ => "SubscriptionError",
            }
        }
        Error::WebhookSignature { check } => {
            kw.set_item("check", check.as_str())?;
            "InvalidSignatureError"
        }
        Error::UnexpectedStatus { .. } => "UnexpectedStatusError",
        Error::Cancelled => "StreamCancelledError",
        // Variants added to the core later: the base class with the right code and status.
        _ => "DurableStreamError",
    };
    let module = ERRORS.get_or_try_init(py, || {
        py.import("durable_streams_client._errors")
            .map(Bound::unbind)
    })?;
    let exc = module
        .bind(py)
        .getattr(class)?
        .call((err.to_string(),), Some(&kw))?;
    let exc = PyErr::from_value(exc);
    exc.set_cause(py, cause_of(py, err)?);
    Ok(exc)
}
