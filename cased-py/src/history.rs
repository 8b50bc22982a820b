//! `cased.History`: conversions and asyncio glue around [`cased_core::SqliteHistory`] and its
//! [`HistoryStore`] queries. Records and reports are the core's serde shapes, converted with
//! pythonize; query filters are the keyword arguments, deserialized into a
//! [`DeploymentFilter`] (so unknown or mistyped ones are the core's validation errors).

use std::path::PathBuf;
use std::sync::Arc;

use cased_core::history::{Bucket, DeploymentFilter};
use cased_core::report::{self, Format};
use cased_core::{HistoryStore, SqliteHistory};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pythonize::{depythonize, pythonize};

use crate::aio;
use crate::errors::CoreError;

/// A query's result on its way to Python: converted where pyo3-async-runtimes completes the
/// future (see [`query!`]).
pub(crate) struct Out(pub(crate) Convert);

/// Makes the Python value of a query's result, once attached.
pub(crate) type Convert =
    Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

impl<'py> IntoPyObject<'py> for Out {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.0)(py)
    }
}

/// `query!(self, py, |s| call)`: the asyncio future of `call` (a history query on the store
/// `s`), resolving to its result converted with pythonize, or raising its error.
macro_rules! query {
    ($self:ident, $py:ident, |$s:ident| $call:expr) => {{
        let $s = $self.store();
        aio::future_into_py($py, async move {
            let result = $call.await;
            let out: Convert = Box::new(move |py| {
                let value = result.map_err(CoreError)?;
                Ok(pythonize(py, &value)?)
            });
            Ok(Out(out))
        })
    }};
}

/// The filter of a query from its keyword arguments.
fn filter(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<DeploymentFilter> {
    match kwargs {
        None => Ok(DeploymentFilter::all()),
        Some(k) => {
            crate::guard::check("deployment filter", "filter", k.as_any())?;
            depythonize(k.as_any())
                .map_err(|e| CoreError::invalid("deployment filter", "filter", e).into())
        }
    }
}

/// Wraps the asyncio future `method(*args)` in a coroutine (`cased._aio.call`).
fn coroutine<'py>(
    slf: &Bound<'py, PyHistory>,
    method: &str,
    args: impl IntoPyObject<'py, Target = PyTuple, Output = Bound<'py, PyTuple>, Error: Into<PyErr>>,
) -> PyResult<Bound<'py, PyAny>> {
    static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = slf.py();
    let args = args.into_pyobject(py).map_err(Into::into)?;
    let glue = GLUE.import(py, "cased._aio", "call")?;
    let mut call = vec![slf.getattr(method)?];
    call.extend(args.iter());
    glue.call1(PyTuple::new(py, call)?)
}

/// The deployment history, in a SQLite file or in memory.
#[pyclass(module = "cased", name = "History", frozen)]
#[derive(Debug)]
pub(crate) struct PyHistory {
    pub(crate) inner: Arc<SqliteHistory>,
}

impl PyHistory {
    fn store(&self) -> Arc<SqliteHistory> {
        Arc::clone(&self.inner)
    }

    /// The store as the monitor builder takes it.
    pub(crate) fn shared(&self) -> Arc<dyn HistoryStore> {
        self.store()
    }
}

#[pymethods]
impl PyHistory {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let history = py
            .detach(|| {
                if path.as_os_str() == ":memory:" {
                    SqliteHistory::in_memory()
                } else {
                    SqliteHistory::open(&path)
                }
            })
            .map_err(CoreError)?;
        Ok(Self {
            inner: Arc::new(history),
        })
    }

    /// A history kept in memory, gone with the last reference.
    #[staticmethod]
    fn in_memory() -> PyResult<Self> {
        Ok(Self {
            inner: Arc::new(SqliteHistory::in_memory().map_err(CoreError)?),
        })
    }

    /// The file, or None in memory.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.inner.path().map(PathBuf::from)
    }

    /// Deployments matching the filter, newest first.
    #[pyo3(signature = (**filter))]
    fn deployments<'py>(
        slf: &Bound<'py, Self>,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_deployments", (filter,))
    }

    fn _deployments<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = self::filter(filter)?;
        query!(self, py, |s| s.deployments(&filter))
    }

    /// One deployment by session id, or None.
    fn deployment<'py>(slf: &Bound<'py, Self>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_deployment", (session_id,))
    }

    fn _deployment<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.deployment(&session_id))
    }

    /// A session's final report, or None.
    fn report<'py>(slf: &Bound<'py, Self>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_report", (session_id,))
    }

    fn _report<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.report(&session_id))
    }

    /// A session's recorded ticks.
    fn ticks<'py>(slf: &Bound<'py, Self>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_ticks", (session_id,))
    }

    fn _ticks<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.ticks(&session_id))
    }

    /// A session's findings, with their ids and ticks.
    fn findings<'py>(slf: &Bound<'py, Self>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_findings", (session_id,))
    }

    fn _findings<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.findings(&session_id))
    }

    /// A session's alerts.
    fn alerts<'py>(slf: &Bound<'py, Self>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_alerts", (session_id,))
    }

    fn _alerts<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.alerts(&session_id))
    }

    /// Verdict counts per day or ISO week.
    #[pyo3(signature = (bucket="day", **filter))]
    fn verdict_counts<'py>(
        slf: &Bound<'py, Self>,
        bucket: &str,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_verdict_counts", (bucket, filter))
    }

    fn _verdict_counts<'py>(
        &self,
        py: Python<'py>,
        bucket: &Bound<'py, PyAny>,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bucket: Bucket =
            depythonize(bucket).map_err(|e| CoreError::invalid("verdict counts", "bucket", e))?;
        let filter = self::filter(filter)?;
        query!(self, py, |s| s.verdict_counts(&filter, bucket))
    }

    /// The time to detect of each bad deployment matching the filter.
    #[pyo3(signature = (**filter))]
    fn time_to_detect<'py>(
        slf: &Bound<'py, Self>,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_time_to_detect", (filter,))
    }

    fn _time_to_detect<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = self::filter(filter)?;
        query!(self, py, |s| s.time_to_detect(&filter))
    }

    /// The deployment a finding (by its id, `"<session id>:<n>"`) belongs to, or None.
    fn deployment_of_finding<'py>(
        slf: &Bound<'py, Self>,
        finding_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_deployment_of_finding", (finding_id,))
    }

    fn _deployment_of_finding<'py>(
        &self,
        py: Python<'py>,
        finding_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.deployment_of_finding(&finding_id))
    }

    /// The deployment an alert (by its id) belongs to, or None.
    fn deployment_of_alert<'py>(
        slf: &Bound<'py, Self>,
        alert_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_deployment_of_alert", (alert_id,))
    }

    fn _deployment_of_alert<'py>(
        &self,
        py: Python<'py>,
        alert_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.deployment_of_alert(&alert_id))
    }

    /// The last `n` healthy deployments matching the filter, newest first.
    #[pyo3(signature = (n, **filter))]
    fn last_healthy<'py>(
        slf: &Bound<'py, Self>,
        n: usize,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_last_healthy", (n, filter))
    }

    fn _last_healthy<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        filter: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = self::filter(filter)?;
        query!(self, py, |s| s.last_healthy(&filter, n))
    }

    /// Deletes the deployments started before `before_unix_ms`; returns how many.
    fn prune<'py>(slf: &Bound<'py, Self>, before_unix_ms: u64) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_prune", (before_unix_ms,))
    }

    fn _prune<'py>(&self, py: Python<'py>, before_unix_ms: u64) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.prune(before_unix_ms))
    }

    /// Moves the write-ahead log into the database file, so the file alone holds every
    /// session (before copying or uploading it).
    fn checkpoint<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_checkpoint", ())
    }

    fn _checkpoint<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        query!(self, py, |s| s.checkpoint())
    }

    /// A finished session's report rendered with its recorded context, or None.
    #[pyo3(signature = (session_id, format="md"))]
    fn render_report<'py>(
        slf: &Bound<'py, Self>,
        session_id: String,
        format: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        coroutine(slf, "_render_report", (session_id, format))
    }

    fn _render_report<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        format: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let format: Format = format.parse().map_err(CoreError)?;
        query!(self, py, |s| async {
            let loaded = report::load(s.as_ref(), &session_id).await?;
            cased_core::Result::Ok(loaded.map(|(r, context)| report::render(&r, &context, format)))
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match self.inner.path() {
            Some(p) => format!(
                "History({})",
                PyString::new(py, &p.display().to_string()).repr()?
            ),
            None => "History(':memory:')".to_owned(),
        })
    }
}
