//! `cased.Session` and `cased.Updates`: conversions and asyncio glue around
//! [`cased_core::Session`] and [`cased_core::Updates`]. Updates and reports are the core's serde
//! shapes, converted with pythonize.

use std::sync::Arc;

use cased_core::alert::{InAppEvent, InAppStream};
use cased_core::{Report, Session, UpdateEvent, Updates};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyIterator, PyString, PyTuple};
use pythonize::pythonize;

use crate::errors::CoreError;

/// A running monitoring session.
#[pyclass(module = "cased", name = "Session", frozen)]
#[derive(Debug)]
pub(crate) struct PySession {
    inner: Session,
}

impl PySession {
    pub(crate) fn new(inner: Session) -> Self {
        Self { inner }
    }
}

/// A report on its way to Python, converted where pyo3-async-runtimes completes the future.
pub(crate) struct ReportOut(pub(crate) Report);

impl<'py> IntoPyObject<'py> for ReportOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(pythonize(py, &self.0)?)
    }
}

/// Cancels the session when the future awaiting its report is dropped before the report came:
/// the asyncio task awaiting `wait()` (or `Monitor.run`) was cancelled.
struct CancelOnDrop(Option<Session>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(session) = self.0.take() {
            session.cancel();
        }
    }
}

/// What `complete()`, `fail()` and `cancel()` return: the signal is already given, and awaiting
/// this returns None at once, so both `session.cancel()` (from a signal handler, another thread)
/// and `await session.cancel()` work.
#[pyclass(module = "cased", name = "_Done", frozen)]
#[derive(Debug)]
struct Done;

#[pymethods]
impl Done {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        PyTuple::empty(py).try_iter()
    }
}

#[pymethods]
impl PySession {
    /// The session's id.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// Whether the session has ended (its report is ready).
    #[getter]
    fn finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// Follows the session's updates (an async iterator); any number of listeners may follow.
    fn updates(&self) -> PyUpdates {
        PyUpdates {
            inner: Arc::new(tokio::sync::Mutex::new(self.inner.updates())),
        }
    }

    /// Follows the in-app alert channel `channel` (an async iterator of notification dicts).
    fn alerts(&self, channel: &str) -> PyResult<PyAlerts> {
        let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
        let stream = self.inner.alerts(channel).map_err(CoreError)?;
        Ok(PyAlerts {
            inner: Arc::new(tokio::sync::Mutex::new(stream)),
        })
    }

    /// The deployment succeeded: the cool-down starts now.
    fn complete(&self) -> Done {
        self.inner.complete();
        Done
    }

    /// The deployment failed: the session ends with that outcome.
    fn fail(&self) -> Done {
        self.inner.fail();
        Done
    }

    /// Stops the session: it ends as cancelled.
    fn cancel(&self) -> Done {
        self.inner.cancel();
        Done
    }

    /// Adds a sample of `metric`, summarised in the report.
    fn push(&self, metric: &str, value: f64) -> PyResult<()> {
        self.inner.push(metric, value).map_err(CoreError)?;
        Ok(())
    }

    /// Adds `(errors, requests)` counts of `metric` for its error-rate detectors.
    fn push_counts(&self, metric: &str, errors: u64, requests: u64) -> PyResult<()> {
        self.inner
            .push_counts(metric, errors, requests)
            .map_err(CoreError)?;
        Ok(())
    }

    /// The report, if the session has ended.
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .report()
            .map(|r| Ok(pythonize(py, &r)?))
            .transpose()
    }

    /// Waits for the report: a coroutine (from `cased._aio`).
    fn wait<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "wait")?.call1((slf,))
    }

    /// The asyncio future of the report. The guard is made here, outside the Rust future, so it
    /// also cancels the session when that future is dropped before it first runs.
    fn _wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Fail before the guard exists: outside a running loop nothing must be cancelled.
        pyo3_async_runtimes::get_running_loop(py)?;
        let session = self.inner.clone();
        let mut guard = CancelOnDrop(Some(session.clone()));
        crate::aio::future_into_py(py, async move {
            let report = session.wait().await;
            guard.disarm();
            Ok(ReportOut(report))
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Session(id={}, finished={})",
            PyString::new(py, self.inner.id()).repr()?,
            if self.inner.is_finished() {
                "True"
            } else {
                "False"
            }
        ))
    }
}

/// The updates of a session, as an async iterator of dicts.
#[pyclass(module = "cased", name = "Updates", frozen)]
#[derive(Debug)]
pub(crate) struct PyUpdates {
    inner: Arc<tokio::sync::Mutex<Updates>>,
}

/// One item of the update stream on its way to Python: a status update dict,
/// `{"skipped": n}`, or None at the end.
struct UpdateOut(Option<UpdateEvent>);

impl<'py> IntoPyObject<'py> for UpdateOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            None => Ok(py.None().into_bound(py)),
            Some(UpdateEvent::Update(update)) => Ok(pythonize(py, &*update)?),
            Some(UpdateEvent::Skipped(n)) => {
                let skipped = PyDict::new(py);
                skipped.set_item("skipped", n)?;
                Ok(skipped.into_any())
            } // `UpdateEvent` is not marked non-exhaustive; a new kind must be handled here.
        }
    }
}

#[pymethods]
impl PyUpdates {
    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The next item: a coroutine (from `cased._aio`) raising `StopAsyncIteration` at the end.
    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "next_update")?
            .call1((slf,))
    }

    /// The asyncio future of the next item, None at the end.
    fn _next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let updates = Arc::clone(&self.inner);
        crate::aio::future_into_py(py, async move {
            Ok(UpdateOut(updates.lock().await.next().await))
        })
    }
}

/// An in-app alert channel, as an async iterator of notification dicts.
#[pyclass(module = "cased", name = "Alerts", frozen)]
#[derive(Debug)]
pub(crate) struct PyAlerts {
    inner: Arc<tokio::sync::Mutex<InAppStream>>,
}

/// One item of an in-app channel on its way to Python: a notification dict, `{"skipped": n}`,
/// or None at the end.
struct AlertOut(Option<InAppEvent>);

impl<'py> IntoPyObject<'py> for AlertOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            None => Ok(py.None().into_bound(py)),
            Some(InAppEvent::Notification(n)) => Ok(pythonize(py, &*n)?),
            Some(InAppEvent::Skipped(n)) => {
                let skipped = PyDict::new(py);
                skipped.set_item("skipped", n)?;
                Ok(skipped.into_any())
            }
        }
    }
}

#[pymethods]
impl PyAlerts {
    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The next notification: a coroutine (from `cased._aio`) raising `StopAsyncIteration` at
    /// the end.
    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "next_update")?
            .call1((slf,))
    }

    /// The asyncio future of the next item, None at the end.
    fn _next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let alerts = Arc::clone(&self.inner);
        crate::aio::future_into_py(
            py,
            async move { Ok(AlertOut(alerts.lock().await.next().await)) },
        )
    }
}
