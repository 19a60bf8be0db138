//! The tokio runtime behind every call, and the two ways Python waits for a Rust future.
//!
//! One multi-thread runtime and one default HTTP client form a *generation*. A generation
//! belongs to the process that built it: after `fork()` the child finds a different pid and
//! builds its own, since the parent's worker threads do not exist in the child and its pooled
//! connections share sockets with the parent. The parent's generation is leaked in the child
//! (dropping it would wait for threads that are not there).
//!
//! A blocking call runs the future on the calling thread with the GIL released, in slices of
//! [`SIGNAL_CHECK`], and checks for signals between slices, so Ctrl-C raises
//! `KeyboardInterrupt` and drops the future. An async call runs the future on this runtime and
//! completes its asyncio future on the loop's own thread (module `bridge`; where the loop cannot
//! watch a socket, through pyo3-async-runtimes); cancelling the asyncio task drops it. The other
//! way round, a Rust future waits for a coroutine of the caller's (an async header callable or
//! `on_error`) through [`into_future`], and dropping that future cancels the coroutine's task.
//!
//! Interpreter exit. On Python < 3.14 a thread that was running Python code when the
//! interpreter starts finalizing is killed with `pthread_exit` the next time it takes the GIL
//! back, for example on return from a socket call inside `loop.call_soon_threadsafe` (how an
//! asyncio future is completed). On a runtime thread that unwinds through Rust frames, whose
//! destructors then touch Python objects without the GIL: a segfault, or an abort in
//! `PyGILState_Release`. pyo3 guards only the calls it makes itself, not one made inside
//! CPython. So runtime threads enter Python only through [`attach`] (and pyo3-async-runtimes
//! through `ForkSafeRuntime::spawn_blocking`), which count the threads inside Python and
//! refuse once [`shutdown`] has begun; `shutdown`, run by `atexit` before finalization, waits
//! for the count to drop to zero with the GIL released, then stops the runtime.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use durable_streams_client::{Client, Error};
use pyo3::exceptions::asyncio::CancelledError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::generic::{self, ContextExt};
use pyo3_async_runtimes::TaskLocals;

use crate::{error, logging};

/// How long a blocking call waits between two checks for signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// How long [`shutdown`] waits for runtime threads to leave Python (a callable of the user
/// may be running there: a header callable, an `on_error`).
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// How long [`shutdown`] then waits for the runtime's threads to stop.
const RUNTIME_STOP_WAIT: Duration = Duration::from_secs(1);

/// Set by [`shutdown`]: from then on runtime threads do not enter Python.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Runtime threads inside [`attach`] (or a completion of pyo3-async-runtimes) right now.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread belongs to one of the package's runtimes (workers and blocking pool).
    static RUNTIME_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// A runtime thread's permission to run Python code, counted in [`IN_PYTHON`].
struct Section;

impl Section {
    /// None once the interpreter is exiting. The increment comes before the check and
    /// [`shutdown`] sets the flag before it reads the count (both sequentially consistent), so
    /// either this thread sees the flag or `shutdown` sees this thread.
    fn enter() -> Option<Section> {
        IN_PYTHON.fetch_add(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Section)
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` attached to the interpreter, for code that may run on a runtime thread: on one,
/// `None` (and `f` is not called) once [`shutdown`] has begun. On other threads (the caller's
/// own, in a blocking call) it is just `Python::try_attach`, as it is after the check.
pub(crate) fn attach<F, R>(f: F) -> Option<R>
where
    F: for<'py> FnOnce(Python<'py>) -> R,
{
    if !RUNTIME_THREAD.with(Cell::get) {
        return Python::try_attach(f);
    }
    let _section = Section::enter()?;
    Python::try_attach(f)
}

/// The runtime and default client of one process.
pub(crate) struct Generation {
    /// Distinguishes generations, so handles notice that they must rebuild.
    pub(crate) id: u64,
    pid: u32,
    runtime: tokio::runtime::Handle,
    /// The client of handles built without one.
    pub(crate) client: Client,
}

impl Generation {
    /// A handle to this generation's runtime (producers run their task on it).
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.clone()
    }
}

/// The current generation, and the runtime it owns (kept apart so [`shutdown`] can stop it
/// while handles still hold the generation).
static CURRENT: Mutex<Option<(Arc<Generation>, tokio::runtime::Runtime)>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The generation of this process, built on first use and again after `fork()`.
pub(crate) fn current() -> PyResult<Arc<Generation>> {
    let mut slot = CURRENT
        .lock()
        .map_err(|_| PyRuntimeError::new_err("durable_streams_client: runtime lock poisoned"))?;
    let pid = std::process::id();
    if let Some((g, _)) = slot.as_ref().filter(|(g, _)| g.pid == pid) {
        return Ok(Arc::clone(g));
    }
    if let Some(inherited) = slot.take() {
        // Built by the parent before fork(): its threads are gone, so it must never be dropped,
        // and none of them is inside Python here.
        std::mem::forget(inherited);
        IN_PYTHON.store(0, Ordering::SeqCst);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("durable-streams")
        .on_thread_start(|| RUNTIME_THREAD.with(|t| t.set(true)))
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    let client = Client::new().map_err(|e| Python::attach(|py| error::to_py(py, &e)))?;
    let g = Arc::new(Generation {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        pid,
        runtime: runtime.handle().clone(),
        client,
    });
    *slot = Some((Arc::clone(&g), runtime));
    Ok(g)
}

/// Called by `atexit` before the interpreter finalizes (and safe to call again): from now on
/// runtime threads do not enter Python (async calls raise, `on_error` and header callables are
/// no longer called from background work, log events of runtime threads are dropped); waits,
/// with the GIL released, for those inside Python to leave (up to [`EXIT_WAIT`]), then stops
/// the runtime, dropping every task still running (live reads left open, producers not
/// closed). Blocking calls still work afterwards, on a new runtime.
#[pyfunction]
pub(crate) fn shutdown(py: Python<'_>) -> PyResult<()> {
    EXITING.store(true, Ordering::SeqCst);
    let taken = CURRENT
        .lock()
        .map_err(|_| PyRuntimeError::new_err("durable_streams_client: runtime lock poisoned"))?
        .take();
    match taken {
        Some((g, runtime)) if g.pid == std::process::id() => {
            // Threads inside Python need the GIL to get out: wait without it.
            let left = py.detach(|| {
                let deadline = Instant::now() + EXIT_WAIT;
                while IN_PYTHON.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let left = IN_PYTHON.load(Ordering::SeqCst);
                runtime.shutdown_timeout(RUNTIME_STOP_WAIT);
                left
            });
            if left > 0 {
                logging::warn(
                    py,
                    &format!(
                        "{left} background thread(s) still running Python code (a header \
                         callable or on_error) after {EXIT_WAIT:?} at interpreter exit; the \
                         interpreter may crash while it finalizes"
                    ),
                );
            }
        }
        // Inherited from the parent through fork(): its threads do not exist here.
        Some(inherited) => std::mem::forget(inherited),
        None => {}
    }
    Ok(())
}

/// Runs `fut` for a Python caller: to completion with the GIL released when `blocking`, or as
/// an asyncio awaitable otherwise. Core errors become the package's exceptions.
pub(crate) fn run<F, T>(py: Python<'_>, blocking: bool, fut: F) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    logging::refresh(py);
    if !blocking && EXITING.load(Ordering::SeqCst) {
        return Err(PyRuntimeError::new_err(
            "durable_streams_client: the interpreter is exiting, the async API is no longer \
             available (its results would come from a background thread); use the blocking API",
        ));
    }
    let generation = current()?;
    if blocking {
        block_on(py, &generation.runtime, fut)?.into_py_any(py)
    } else {
        // The spawns inside future_into_py find the runtime through this context.
        let _entered = generation.runtime.enter();
        let locals = generic::get_current_locals::<ForkSafeRuntime>(py)?;
        #[cfg(unix)]
        if let Some(waker) = crate::bridge::waker_for(py, &locals.event_loop(py)) {
            return crate::bridge::spawn(py, waker, locals, fut);
        }
        let fut = async move {
            fut.await.map_err(|e| {
                // When exiting, the result is never delivered: any error will do.
                attach(|py| error::to_py(py, &e))
                    .unwrap_or_else(|| PyRuntimeError::new_err(e.to_string()))
            })
        };
        generic::future_into_py_with_locals::<ForkSafeRuntime, _, _>(py, locals, fut)
            .map(Bound::unbind)
    }
}

/// Drives `fut` on this thread with the GIL released, checking for signals between slices.
/// A pending `KeyboardInterrupt` (or any exception a signal handler raises) drops the future.
fn block_on<F, T>(py: Python<'_>, runtime: &tokio::runtime::Handle, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PyRuntimeError::new_err(
            "a blocking durable_streams_client call cannot run on the client's own runtime \
             (for example from a header callable); use the async API there",
        ));
    }
    let mut fut = std::pin::pin!(fut);
    loop {
        // The timer must be created inside the runtime, hence the async block.
        let slice = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_CHECK, fut.as_mut()).await })
        });
        match slice {
            Ok(result) => return result.map_err(|e| error::to_py(py, &e)),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}

tokio::task_local! {
    static TASK_LOCALS: TaskLocals;
}

/// `fut` with `locals` as its task locals (how a Python callable called from it finds the
/// caller's event loop and context).
#[cfg(unix)]
pub(crate) fn scoped<F: Future>(locals: TaskLocals, fut: F) -> impl Future<Output = F::Output> {
    TASK_LOCALS.scope(locals, fut)
}

/// `awaitable` run as a task of `locals`' event loop, for a Rust future to wait on (the
/// coroutine of an async header callable or `on_error`). As pyo3-async-runtimes'
/// `into_future_with_locals`, except that dropping the future before the task is over (the
/// operation was cancelled) cancels the task too, rather than leaving it to run on its own.
pub(crate) fn into_future(
    locals: &TaskLocals,
    awaitable: Bound<'_, PyAny>,
) -> PyResult<impl Future<Output = PyResult<Py<PyAny>>> + Send + 'static> {
    let py = awaitable.py();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = Arc::new(LoopTask::default());
    let event_loop = locals.event_loop(py);
    let kwargs = PyDict::new(py);
    kwargs.set_item(pyo3::intern!(py, "context"), locals.context(py))?;
    event_loop.call_method(
        pyo3::intern!(py, "call_soon_threadsafe"),
        (StartTask {
            awaitable: Mutex::new(Some(awaitable.unbind())),
            tx: Mutex::new(Some(tx)),
            task: Arc::clone(&task),
        },),
        Some(&kwargs),
    )?;
    let mut waiting = Waiting {
        task,
        event_loop: event_loop.unbind(),
        over: false,
    };
    Ok(async move {
        let out = rx.await;
        waiting.finish();
        // No answer: the loop closed before the task started or finished.
        out.unwrap_or_else(|_| Err(CancelledError::new_err("the event loop went away")))
    })
}

type Answer = tokio::sync::oneshot::Sender<PyResult<Py<PyAny>>>;

/// The task of [`into_future`], shared by the loop's side and the waiting future's.
#[derive(Default)]
struct LoopTask {
    /// Once started and until the waiting future takes it to cancel it.
    task: Mutex<Option<Py<PyAny>>>,
    /// Set when the waiting future is dropped before the task is over.
    abandoned: AtomicBool,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts the task on the loop's thread (`call_soon_threadsafe`, in the caller's context).
#[pyclass(frozen)]
struct StartTask {
    awaitable: Mutex<Option<Py<PyAny>>>,
    tx: Mutex<Option<Answer>>,
    task: Arc<LoopTask>,
}

#[pymethods]
impl StartTask {
    fn __call__(&self, py: Python<'_>) {
        let Some(awaitable) = locked(&self.awaitable).take() else {
            return;
        };
        let tx = locked(&self.tx).take();
        let task = match py
            .import("asyncio")
            .and_then(|a| a.call_method1("ensure_future", (awaitable,)))
        {
            Ok(task) => task,
            Err(e) => {
                if let Some(tx) = tx {
                    let _ = tx.send(Err(e));
                }
                return;
            }
        };
        let done = TaskDone { tx: Mutex::new(tx) };
        // No Python code runs under the lock. Either the waiting future, dropped meanwhile,
        // finds the task here and cancels it, or this sees that it was dropped. (Without its
        // done callback, the task's answer never comes: the waiting future gets a
        // CancelledError, and the task is cancelled.)
        let abandoned = task
            .call_method1(pyo3::intern!(py, "add_done_callback"), (done,))
            .is_err()
            || {
                let mut slot = locked(&self.task.task);
                let abandoned = self.task.abandoned.load(Ordering::SeqCst);
                if !abandoned {
                    *slot = Some(task.clone().unbind());
                }
                abandoned
            };
        if abandoned {
            let _ = task.call_method0(pyo3::intern!(py, "cancel"));
        }
    }
}

/// The task's done callback: its result (or exception) is the answer.
#[pyclass(frozen)]
struct TaskDone {
    tx: Mutex<Option<Answer>>,
}

#[pymethods]
impl TaskDone {
    fn __call__(&self, task: &Bound<'_, PyAny>) {
        let out = task
            .call_method0(pyo3::intern!(task.py(), "result"))
            .map(Bound::unbind);
        if let Some(tx) = locked(&self.tx).take() {
            // The waiting future may be gone (dropped): nobody wants the answer then.
            let _ = tx.send(out);
        }
    }
}

/// The Rust side of [`into_future`]: cancels the task when dropped before it is over.
struct Waiting {
    task: Arc<LoopTask>,
    event_loop: Py<PyAny>,
    over: bool,
}

impl Waiting {
    /// The task is over: nothing to cancel. (A method, so that the future moves the whole
    /// guard in, not only this field.)
    fn finish(&mut self) {
        self.over = true;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.over {
            return;
        }
        self.task.abandoned.store(true, Ordering::SeqCst);
        let Some(task) = locked(&self.task.task).take() else {
            // Not started yet: StartTask sees `abandoned` and cancels it at once.
            return;
        };
        // Nothing to do once the interpreter is exiting (or the loop is closed).
        attach(|py| {
            if let Ok(cancel) = task.bind(py).getattr(pyo3::intern!(py, "cancel")) {
                let _ = self
                    .event_loop
                    .bind(py)
                    .call_method1(pyo3::intern!(py, "call_soon_threadsafe"), (cancel,));
            }
        });
    }
}

/// The pyo3-async-runtimes runtime: tasks go to the current generation's tokio runtime
/// (entered by [`run`], or the worker the task already runs on), not to a process-wide one
/// that would not survive `fork()`.
pub(crate) struct ForkSafeRuntime;

impl generic::Runtime for ForkSafeRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(fut)
    }

    /// pyo3-async-runtimes completes asyncio futures from here: a counted [`Section`], and
    /// nothing once the interpreter is exiting (`f` is dropped; the Python objects it holds are
    /// released by pyo3 later, with the GIL).
    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            if let Some(_section) = Section::enter() {
                f();
            }
        })
    }
}

impl ContextExt for ForkSafeRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(TASK_LOCALS.scope(locals, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(Clone::clone).ok()
    }
}

/// This process's id once [`track_forks`] ran (0 before): refreshed in the child by an
/// `os.register_at_fork` hook, which CPython runs after every fork that goes on running
/// Python. Reading it is much cheaper than a `getpid` system call per producer append.
static PID: AtomicU32 = AtomicU32::new(0);

/// This process's id (see [`PID`]).
pub(crate) fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        p => p,
    }
}

/// Run in the child after `fork()`.
#[pyfunction]
fn after_fork_in_child() {
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// Records this process's id and keeps it current across `os.fork()`.
pub(crate) fn track_forks(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let hook = wrap_pyfunction!(after_fork_in_child, m)?;
    let kw = pyo3::types::PyDict::new(py);
    kw.set_item("after_in_child", hook)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kw))?;
    PID.store(std::process::id(), Ordering::Relaxed);
    Ok(())
}
