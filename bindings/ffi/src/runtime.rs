//! The tokio runtime behind every exported async function.
//!
//! uniffi polls the future an exported `async fn` returns from the foreign side (a Kotlin
//! coroutine, a Swift task). Each call spawns the real work onto one multi-thread runtime,
//! built on first use, and awaits its `JoinHandle`; when the foreign side cancels, uniffi drops
//! that future, and dropping it aborts the spawned task, which drops the core's future and with
//! it the HTTP request.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::DurableStreamError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime's handle, building the runtime on first use.
pub(crate) fn handle() -> Result<Handle, DurableStreamError> {
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("durable-streams")
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))
    });
    match built {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(message) => Err(DurableStreamError::internal(message.clone())),
    }
}

/// Runs `fut` on the runtime; dropping the returned future aborts it.
pub(crate) async fn run<F, T, E>(fut: F) -> Result<T, DurableStreamError>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Into<DurableStreamError> + Send + 'static,
{
    let task = AbortOnDrop(handle()?.spawn(fut));
    match task.join().await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(DurableStreamError::internal(format!(
            "the request task failed: {e}"
        ))),
    }
}

/// A spawned task that is aborted when this guard is dropped before it finished.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
