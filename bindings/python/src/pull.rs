//! The body of a streamed append (`append_stream`): chunks pulled from a Python callable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;

use crate::runtime;
use crate::values::Payload;

/// Why a pull ended the body: the Python exception, as text (the Python layer raises the
/// exception itself once the append has failed).
type PullError = String;

type Awaiting = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// The chunks `pull()` returns (`str` or `bytes`) until it returns `None`; a chunk is asked
/// for only when the connection has taken the one before. Blocking flavour (`locals` is
/// `None`): each call runs on the runtime's blocking pool, since a generator may take its
/// time and must not hold up the runtime's workers. Async flavour: `pull()` returns an
/// awaitable, run on the caller's event loop (`locals`); a pull still running when the append
/// stops is cancelled and awaited by the Python layer (`_Source.aclose`), which must close the
/// source only after that.
pub(crate) fn body(
    pull: Py<PyAny>,
    locals: Option<TaskLocals>,
) -> impl Stream<Item = Result<Bytes, PullError>> + Send + 'static {
    let pull = Arc::new(pull);
    futures_util::stream::unfold(Some((pull, locals)), |state| async move {
        let (pull, locals) = state?;
        match next(&pull, locals.as_ref()).await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some((pull, locals)))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// One call of `pull`: the chunk, `None` at the end, or why it failed.
async fn next(
    pull: &Arc<Py<PyAny>>,
    locals: Option<&TaskLocals>,
) -> Result<Option<Bytes>, PullError> {
    let out = match locals {
        None => {
            let p = Arc::clone(pull);
            tokio::task::spawn_blocking(move || {
                runtime::attach(|py| {
                    p.bind(py)
                        .call0()
                        .map(Bound::unbind)
                        .map_err(|e| describe(py, &e))
                })
            })
            .await
            .map_err(|e| format!("the source's call did not finish: {e}"))?
            .ok_or_else(exiting)??
        }
        Some(locals) => {
            let awaiting = runtime::attach(|py| -> Result<Awaiting, PullError> {
                let out = pull.bind(py).call0().map_err(|e| describe(py, &e))?;
                let fut = pyo3_async_runtimes::into_future_with_locals(locals, out)
                    .map_err(|e| describe(py, &e))?;
                Ok(Box::pin(fut))
            })
            .ok_or_else(exiting)??;
            match awaiting.await {
                Ok(out) => out,
                Err(e) => {
                    return Err(runtime::attach(|py| describe(py, &e)).unwrap_or_else(exiting))
                }
            }
        }
    };
    runtime::attach(|py| {
        let out = out.bind(py);
        if out.is_none() {
            return Ok(None);
        }
        out.extract::<Payload>()
            .map(|p| Some(Bytes::from(p)))
            .map_err(|e| describe(py, &e))
    })
    .ok_or_else(exiting)?
}

fn describe(py: Python<'_>, e: &PyErr) -> PullError {
    e.value(py)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "an exception".to_owned())
}

fn exiting() -> PullError {
    "the interpreter is exiting".to_owned()
}
