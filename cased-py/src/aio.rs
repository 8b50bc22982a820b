//! Asyncio glue: `future_into_py` on pyo3-async-runtimes' tokio runtime, made safe at exit.
//!
//! pyo3-async-runtimes completes every Python future from a tokio blocking thread that attaches
//! to the interpreter. When that happens while the interpreter finalizes (a script awaits its
//! last call and exits while the completing thread is still inside `call_soon_threadsafe`),
//! CPython ends the thread inside Rust frames and the process dies with SIGSEGV or SIGABRT
//! (PyO3/pyo3-async-runtimes#40, no shutdown API upstream). So the completions are counted here,
//! and an `atexit` hook, which runs before finalization starts, waits for those in progress and
//! turns later ones into no-ops. Everything else is delegated to pyo3-async-runtimes.
//!
//! The other direction, Rust calling Python (custom checks, the rollback hook), goes through
//! [`call_on_loop`]: the call runs as a task on the event loop captured at `start()`, Rust awaits
//! it with `into_future_with_locals`, and dropping the Rust future cancels that task. Every
//! attach from a tokio thread passes the same gate ([`attach`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{self, ContextExt, Runtime};

/// Longest wait at exit for completions in progress.
const EXIT_GRACE: Duration = Duration::from_secs(5);

struct Gate {
    closing: bool,
    active: usize,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    closing: false,
    active: 0,
});
static IDLE: Condvar = Condvar::new();

fn gate() -> MutexGuard<'static, Gate> {
    GATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One completion allowed to attach to the interpreter; dropping it lets `atexit` go on.
struct Pass;

impl Pass {
    fn take() -> Option<Self> {
        let mut gate = gate();
        if gate.closing {
            return None;
        }
        gate.active += 1;
        Some(Self)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        gate().active -= 1;
        IDLE.notify_all();
    }
}

tokio::task_local! {
    static LOCALS: TaskLocals;
}

/// pyo3-async-runtimes' tokio runtime, with gated completions.
struct ExitSafeTokio;

impl Runtime for ExitSafeTokio {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        pyo3_async_runtimes::tokio::get_runtime().spawn(fut)
    }

    /// Only ever called to attach and complete a Python future.
    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        // Counted when queued, so `atexit` also waits for completions not started yet.
        let pass = Pass::take();
        pyo3_async_runtimes::tokio::get_runtime().spawn_blocking(move || {
            if let Some(_pass) = pass {
                f();
            }
            // Otherwise `f` is dropped unrun: its Python references are released later by
            // pyo3's reference pool, without attaching.
        })
    }
}

impl ContextExt for ExitSafeTokio {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(LOCALS.scope(locals, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        LOCALS.try_with(Clone::clone).ok()
    }
}

/// `pyo3_async_runtimes::tokio::future_into_py`, with completions gated at exit.
pub(crate) fn future_into_py<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    generic::future_into_py::<ExitSafeTokio, F, T>(py, fut)
}

/// Attaches to the interpreter from a tokio thread, unless it is exiting (then `None`, and `f`
/// does not run).
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let _pass = Pass::take()?;
    Some(Python::attach(f))
}

/// Cancels the Python task of a [`call_on_loop`] that Rust stopped awaiting (the session timed the
/// check out, or ended).
struct CancelCall {
    call: Option<Py<PyAny>>,
    locals: TaskLocals,
}

impl Drop for CancelCall {
    fn drop(&mut self) {
        let Some(call) = self.call.take() else { return };
        attach(|py| {
            // A closed loop has nothing left to cancel.
            let _ = call.bind(py).getattr("cancel").and_then(|cancel| {
                self.locals
                    .event_loop(py)
                    .call_method1("call_soon_threadsafe", (cancel,))
            });
        });
    }
}

/// Calls `f(*args(py))` on the event loop of `locals`, in its context (through `cased._aio.Call`,
/// which awaits the result when it is awaitable, so coroutine functions and plain functions both
/// work, and user code never runs on a tokio thread). Gives the result or the exception to
/// `finish`, attached. Dropping the returned future cancels the Python task. `None` when the
/// interpreter is exiting.
pub(crate) async fn call_on_loop<A, F, T>(
    locals: TaskLocals,
    f: Arc<Py<PyAny>>,
    args: A,
    finish: F,
) -> Option<T>
where
    A: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send,
    F: for<'py> FnOnce(Python<'py>, PyResult<Bound<'py, PyAny>>) -> T + Send,
{
    static CALL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let started = attach(|py| -> PyResult<_> {
        let call = CALL
            .import(py, "cased._aio", "Call")?
            .call1((f.bind(py), args(py)?))?;
        // `Call` is awaitable but not a coroutine: nothing is left un-awaited if scheduling fails.
        let fut = pyo3_async_runtimes::into_future_with_locals(&locals, call.clone())?;
        let guard = CancelCall {
            call: Some(call.unbind()),
            locals: locals.clone(),
        };
        Ok((fut, guard))
    })?;
    let (fut, mut guard) = match started {
        Ok(started) => started,
        Err(e) => return attach(|py| finish(py, Err(e))),
    };
    let result = fut.await;
    guard.call = None;
    attach(|py| finish(py, result.map(|v| v.into_bound(py))))
}

/// The `atexit` hook: no completion attaches after it; those already queued may finish.
#[pyfunction]
fn close_gate(py: Python<'_>) {
    py.detach(|| {
        let mut gate = gate();
        gate.closing = true;
        let _ = IDLE.wait_timeout_while(gate, EXIT_GRACE, |g| g.active > 0);
    });
}

/// Registers the `atexit` hook.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(close_gate, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
