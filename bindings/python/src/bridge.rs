//! Asyncio futures completed on their event loop's own thread (Unix).
//!
//! pyo3-async-runtimes completes each future from a blocking-pool thread that takes the GIL and
//! calls `loop.call_soon_threadsafe`: per call two tokio tasks, one blocking-pool task, one GIL
//! hand-over between threads and one write to the loop's self-pipe. Here the runtime thread only
//! queues the finished result and, when the loop has not been woken since its last drain, writes
//! one byte to a socket the loop watches (`loop.add_reader`); the loop then converts and sets every
//! queued result in one callback, on its own thread, with the GIL it holds anyway. Runtime threads
//! never enter Python on this path.
//!
//! A loop without `add_reader` (Windows' proactor loop) keeps the pyo3-async-runtimes path
//! ([`waker_for`] returns `None`).

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use durable_streams_client::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyWeakrefReference;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::TaskLocals;
use tokio::task::AbortHandle;

use crate::{error, runtime};

/// Turns a finished operation's result into the future's value or exception, with the GIL.
type Complete = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

/// A finished operation waiting for its loop.
struct Done {
    future: Py<PyAny>,
    complete: Complete,
}

/// The completions of one event loop.
pub(crate) struct Waker {
    queue: Mutex<Vec<Done>>,
    /// Whether a byte is on its way to the loop since its last drain.
    armed: AtomicBool,
    /// Written by runtime threads; `rx` is watched by the loop. Both ends live as long as the
    /// waker, so a write never meets a closed peer.
    tx: UnixStream,
    rx: UnixStream,
}

impl Waker {
    /// Queues a finished operation, unless `settled` says its future is done already (checked
    /// under the queue's lock, where [`Waker::forget`] sets it).
    fn push(&self, done: Done, settled: &AtomicBool) {
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if settled.load(Ordering::Relaxed) {
                return;
            }
            queue.push(done);
        }
        // One byte per drain: later completions ride on it. The drain reads the socket before it
        // clears the flag, and takes the queue after, so no completion is left without a byte.
        if !self.armed.swap(true, Ordering::SeqCst) {
            // Non-blocking. A full socket (`WouldBlock`) has bytes for the loop already.
            let failed = loop {
                match (&self.tx).write(&[1]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
                    Ok(_) => break false,
                }
            };
            if failed {
                // No byte went out: let the next completion try again.
                self.armed.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Marks `future` as settled (nothing is queued for it from now on) and takes out what is
    /// queued for it already.
    fn forget(&self, future: &Bound<'_, PyAny>, settled: &AtomicBool) -> Option<Done> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        settled.store(true, Ordering::Relaxed);
        let at = queue
            .iter()
            .position(|d| d.future.as_ptr() == future.as_ptr())?;
        Some(queue.remove(at))
    }
}

/// The loop's reader callback: sets every queued result.
#[pyclass(frozen)]
struct Drain {
    waker: Arc<Waker>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.waker.rx).read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
        self.waker.armed.store(false, Ordering::SeqCst);
        let batch = std::mem::take(
            &mut *self
                .waker
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for done in batch {
            settle(py, done);
        }
    }
}

/// Sets one future's result, unless it was cancelled meanwhile.
///
/// A result can still be lost after this: a task cancelled before it resumes gets
/// `CancelledError` in place of it. So an operation with an effect a caller must know of keeps
/// that effect until the Python layer, back in the task, confirms it has the result (a read's
/// position: `Response.release_position`), or waits here for something with no effect and does
/// the rest itself, on the loop (`AsyncIdempotentProducer.append_wait`).
fn settle(py: Python<'_>, done: Done) {
    let fut = done.future.bind(py);
    match fut.call_method0(pyo3::intern!(py, "done")) {
        Ok(d) if d.is_truthy().unwrap_or(true) => return,
        Ok(_) => {}
        Err(_) => return,
    }
    // A failure to set it can only come from a broken future object: nothing is waiting then.
    let _ = match (done.complete)(py) {
        Ok(v) => fut.call_method1(pyo3::intern!(py, "set_result"), (v,)),
        Err(e) => fut.call_method1(pyo3::intern!(py, "set_exception"), (e.into_value(py),)),
    };
}

/// Stops the operation when its future is cancelled (a done callback; after a normal finish
/// the task is over and `abort` does nothing).
///
/// A cancelled future gets nothing queued, and loses what was queued for it just before: a
/// result left in the queue when the loop stops keeps the future, and through it the loop,
/// alive (loop, reader, waker, queue, future, loop: a cycle through Rust that the garbage
/// collector cannot see).
#[pyclass(frozen)]
struct Cancel {
    abort: AbortHandle,
    waker: Arc<Waker>,
    /// Shared with the operation's [`Slot`].
    settled: Arc<AtomicBool>,
}

#[pymethods]
impl Cancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) {
        drop(self.waker.forget(future, &self.settled));
        self.abort.abort();
    }
}

/// The future's place in its loop's queue; if the operation is dropped before it finishes (a
/// panic, the runtime stopping), the future gets an error rather than waiting forever.
struct Slot {
    future: Option<Py<PyAny>>,
    waker: Arc<Waker>,
    /// Set once the future is done (see [`Cancel`]).
    settled: Arc<AtomicBool>,
}

impl Slot {
    fn fill(&mut self, complete: Complete) {
        if let Some(future) = self.future.take() {
            self.waker.push(Done { future, complete }, &self.settled);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.fill(Box::new(|_py| {
            Err(PyRuntimeError::new_err(
                "durable_streams_client: the operation was stopped before it finished",
            ))
        }));
    }
}

/// A loop's waker, cached per thread (a loop runs on one thread).
///
/// Both are held weakly: a loop left to the garbage collector without `close()` is still
/// collected, and its waker (with its socket pair) lives only as long as the loop's reader
/// (`Drain`, which the loop drops when it is closed or collected) or an operation still holds
/// it. Entries of loops that are gone are pruned when the next loop is set up.
struct Entry {
    event_loop: Py<PyWeakrefReference>,
    pid: u32,
    /// `None` when the loop cannot watch a socket.
    waker: Option<Weak<Waker>>,
}

impl Entry {
    /// The loop, while it lives.
    fn event_loop<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.event_loop.bind(py).upgrade()
    }

    /// Whether the entry still stands for a loop that is watching its socket, or that cannot.
    fn live(&self, py: Python<'_>, pid: u32) -> bool {
        self.pid == pid
            && self.waker.as_ref().is_none_or(|w| w.strong_count() > 0)
            && self.event_loop(py).is_some_and(|l| {
                !l.call_method0(pyo3::intern!(py, "is_closed"))
                    .and_then(|c| c.is_truthy())
                    .unwrap_or(true)
            })
    }
}

thread_local! {
    static WAKERS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// The waker of `event_loop`, set up on first use; `None` when the loop has no `add_reader`,
/// cannot be weakly referenced (or this thread is ending).
pub(crate) fn waker_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> Option<Arc<Waker>> {
    let pid = runtime::pid();
    let found = WAKERS
        .try_with(|w| {
            w.borrow()
                .iter()
                .find(|e| e.pid == pid && e.event_loop(py).is_some_and(|l| l.is(event_loop)))
                .map(|e| e.waker.as_ref().map(Weak::upgrade))
        })
        .ok()?;
    match found {
        // The loop cannot watch a socket.
        Some(None) => return None,
        Some(Some(Some(waker))) => return Some(waker),
        // Not seen yet, or its reader is gone: set it up (again).
        Some(Some(None)) | None => {}
    }
    let weak = PyWeakrefReference::new(event_loop).ok()?;
    let waker = watch(event_loop).ok();
    // Forget loops that are gone, closed (their reader went with them) or came through
    // fork(). No borrow is held while Python code runs (`is_closed`, a finalizer of a dropped
    // loop), so a call that comes back here meanwhile finds the list empty rather than a
    // panic.
    let entries = WAKERS
        .try_with(|w| std::mem::take(&mut *w.borrow_mut()))
        .ok()?;
    let (mut keep, gone): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| e.live(py, pid));
    keep.push(Entry {
        event_loop: weak.unbind(),
        pid,
        waker: waker.as_ref().map(Arc::downgrade),
    });
    let _ = WAKERS.try_with(|w| w.borrow_mut().extend(keep));
    drop(gone);
    waker
}

/// A new waker whose socket `event_loop` watches.
fn watch(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Waker>> {
    let io = |e: std::io::Error| PyRuntimeError::new_err(e.to_string());
    let (tx, rx) = UnixStream::pair().map_err(io)?;
    tx.set_nonblocking(true).map_err(io)?;
    rx.set_nonblocking(true).map_err(io)?;
    let waker = Arc::new(Waker {
        queue: Mutex::new(Vec::new()),
        armed: AtomicBool::new(false),
        tx,
        rx,
    });
    let drain = Drain {
        waker: Arc::clone(&waker),
    };
    event_loop.call_method1(
        pyo3::intern!(event_loop.py(), "add_reader"),
        (waker.rx.as_raw_fd(), drain),
    )?;
    Ok(waker)
}

/// Runs `fut` on the current runtime as a future of `locals`' loop, completed through `waker`.
pub(crate) fn spawn<F, T>(
    py: Python<'_>,
    waker: Arc<Waker>,
    locals: TaskLocals,
    fut: F,
) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    let future = locals
        .event_loop(py)
        .call_method0(pyo3::intern!(py, "create_future"))?;
    let settled = Arc::new(AtomicBool::new(false));
    let mut slot = Slot {
        future: Some(future.clone().unbind()),
        waker: Arc::clone(&waker),
        settled: Arc::clone(&settled),
    };
    let task = tokio::spawn(runtime::scoped(locals, async move {
        let result = fut.await;
        slot.fill(Box::new(move |py| match result {
            Ok(v) => v.into_py_any(py),
            Err(e) => Err(error::to_py(py, &e)),
        }));
    }));
    future.call_method1(
        pyo3::intern!(py, "add_done_callback"),
        (Cancel {
            abort: task.abort_handle(),
            waker,
            settled,
        },),
    )?;
    Ok(future.unbind())
}
