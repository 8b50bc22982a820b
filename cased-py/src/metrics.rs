//! Metric sources and baseline stores: conversions and asyncio glue around
//! [`cased_core::metrics`] ([`PrometheusSource`], [`HostSource`], [`BaselineStore`]).
//! Samples are the core's serde shape (`metric`, `labels`, `timestamp`, `value`), converted
//! with pythonize.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cased_core::BaselineStore;
use cased_core::metrics::{
    HostSource, MemoryBaselineStore, PrometheusSource, Sample, SqliteBaselineStore,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};
use pythonize::pythonize;

use crate::aio;
use crate::errors::CoreError;
use crate::history::{Convert, Out};

/// A duration in seconds from Python, or the core's validation error for `field`.
fn seconds(subject: &str, field: &str, secs: f64) -> Result<Duration, CoreError> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| CoreError::invalid(subject, field, "must be a non-negative number of seconds"))
}

/// The asyncio future of a query, resolving to its samples as a list of dicts.
fn samples_future<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = cased_core::Result<Vec<Sample>>> + Send + 'static,
{
    aio::future_into_py(py, async move {
        let result = fut.await;
        let out: Convert = Box::new(move |py| {
            let samples = result.map_err(CoreError)?;
            Ok(pythonize(py, &samples)?)
        });
        Ok(Out(out))
    })
}

/// Wraps the asyncio future `slf.method(*args)` in a coroutine (`cased._aio.call`).
fn coroutine<'py>(
    slf: &Bound<'py, PyAny>,
    method: &str,
    args: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = slf.py();
    let glue = GLUE.import(py, "cased._aio", "call")?;
    let mut call = vec![slf.getattr(method)?];
    call.extend(args.iter());
    glue.call1(PyTuple::new(py, call)?)
}

/// Reads samples from a Prometheus server (or anything speaking its HTTP API).
#[pyclass(module = "cased", name = "PrometheusSource", frozen)]
#[derive(Debug)]
pub(crate) struct PyPrometheusSource {
    inner: PrometheusSource,
    url: String,
}

#[pymethods]
impl PyPrometheusSource {
    #[new]
    #[pyo3(signature = (url, *, bearer_token=None, timeout=None))]
    fn new(
        url: &Bound<'_, PyAny>,
        bearer_token: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        let url = crate::guard::text("Prometheus source", "url", url)?;
        let bearer_token =
            crate::guard::opt_text("Prometheus source", "bearer_token", bearer_token)?;
        let mut builder = PrometheusSource::builder(url.clone());
        if let Some(token) = bearer_token {
            builder = builder.bearer_token(token);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(seconds("Prometheus source", "timeout", t)?);
        }
        let inner = builder.build().map_err(CoreError)?;
        Ok(Self { inner, url })
    }

    /// An instant query at `time` (seconds since the epoch; now when None): a coroutine.
    #[pyo3(signature = (metric, promql, time=None))]
    fn query<'py>(
        slf: &Bound<'py, Self>,
        metric: String,
        promql: String,
        time: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = (metric, promql, time).into_pyobject(slf.py())?;
        coroutine(slf.as_any(), "_query", args)
    }

    #[pyo3(signature = (metric, promql, time=None))]
    fn _query<'py>(
        &self,
        py: Python<'py>,
        metric: String,
        promql: String,
        time: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let source = self.inner.clone();
        samples_future(
            py,
            async move { source.query(&metric, &promql, time).await },
        )
    }

    /// A range query from `start` to `end` every `step_seconds`: a coroutine.
    fn query_range<'py>(
        slf: &Bound<'py, Self>,
        metric: String,
        promql: String,
        start: f64,
        end: f64,
        step_seconds: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = (metric, promql, start, end, step_seconds).into_pyobject(slf.py())?;
        coroutine(slf.as_any(), "_query_range", args)
    }

    fn _query_range<'py>(
        &self,
        py: Python<'py>,
        metric: String,
        promql: String,
        start: f64,
        end: f64,
        step_seconds: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let step = seconds("Prometheus query", "step", step_seconds)?;
        let source = self.inner.clone();
        samples_future(py, async move {
            source.query_range(&metric, &promql, start, end, step).await
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "PrometheusSource({})",
            PyString::new(py, &self.url).repr()?
        ))
    }
}

/// CPU, memory and disk samples of the machine this process runs on.
#[pyclass(module = "cased", name = "HostSource", frozen)]
#[derive(Debug)]
pub(crate) struct PyHostSource {
    inner: Mutex<HostSource>,
}

#[pymethods]
impl PyHostSource {
    #[new]
    fn new(py: Python<'_>) -> Self {
        Self {
            inner: Mutex::new(py.detach(HostSource::new)),
        }
    }

    /// The host's samples now.
    fn sample<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let samples = py.detach(|| {
            self.inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sample()
        });
        Ok(pythonize(py, &samples)?)
    }

    fn __repr__(&self) -> &'static str {
        "HostSource()"
    }
}

/// Where sessions keep each deployment's samples, the baselines of the next ones.
#[pyclass(module = "cased", name = "BaselineStore", frozen)]
#[derive(Debug)]
pub(crate) struct PyBaselineStore {
    inner: Arc<dyn BaselineStore>,
    path: Option<PathBuf>,
}

impl PyBaselineStore {
    /// The store as the monitor builder takes it.
    pub(crate) fn shared(&self) -> Arc<dyn BaselineStore> {
        Arc::clone(&self.inner)
    }
}

#[pymethods]
impl PyBaselineStore {
    /// A store in the SQLite file at `path` (created if missing).
    #[staticmethod]
    fn sqlite(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let store = py
            .detach(|| SqliteBaselineStore::open(&path))
            .map_err(CoreError)?;
        Ok(Self {
            inner: Arc::new(store),
            path: Some(path),
        })
    }

    /// A store in memory, gone with the last reference.
    #[staticmethod]
    fn in_memory() -> Self {
        Self {
            inner: Arc::new(MemoryBaselineStore::new()),
            path: None,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match &self.path {
            Some(p) => format!(
                "BaselineStore.sqlite({})",
                PyString::new(py, &p.display().to_string()).repr()?
            ),
            None => "BaselineStore.in_memory()".to_owned(),
        })
    }
}

/// Registers the classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrometheusSource>()?;
    m.add_class::<PyHostSource>()?;
    m.add_class::<PyBaselineStore>()?;
    Ok(())
}
