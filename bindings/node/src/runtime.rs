//! Running core futures as JavaScript promises, and cancelling them.
//!
//! napi's tokio runtime (one multi-thread runtime per process, built on first use) runs every
//! future; the event loop only sees the promise. A [`CancelToken`] drops the future it guards,
//! which abandons the request in flight.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use durable_streams_client::Error;
use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::Env;
use napi_derive::napi;
use tokio::sync::Notify;

use crate::error;

#[derive(Default)]
pub(crate) struct CancelState {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelState {
    async fn cancelled(&self) {
        loop {
            // Registered before the check, so a cancel in between is not missed.
            let notified = self.notify.notified();
            if self.cancelled.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Cancels the native operations it is passed to; the TypeScript layer ties one to an
/// `AbortSignal`.
#[napi]
#[derive(Default)]
pub struct CancelToken {
    state: Arc<CancelState>,
}

#[napi]
impl CancelToken {
    /// A token that is not cancelled.
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every operation guarded by this token: they reject with code `CANCELLED`.
    #[napi]
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::Release);
        self.state.notify.notify_waiters();
    }

    /// Whether `cancel` was called.
    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.state.cancelled.load(Ordering::Acquire)
    }
}

/// Runs `fut` on the runtime and returns its promise; core errors become rejections the
/// TypeScript layer understands, and `cancel` drops the future.
pub(crate) fn spawn<'env, T, F>(
    env: &'env Env,
    cancel: Option<&CancelToken>,
    fut: F,
) -> napi::Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    let state = cancel.map(|c| Arc::clone(&c.state));
    env.spawn_future(async move {
        let out = match state {
            // Biased: a result that is ready when the cancellation comes is returned, not
            // dropped after it took effect.
            Some(state) => tokio::select! {
                biased;
                out = fut => out,
                () = state.cancelled() => Err(Error::Cancelled),
            },
            None => fut.await,
        };
        out.map_err(error::to_napi)
    })
}
