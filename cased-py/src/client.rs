//! `cased.Client`: conversions and asyncio glue around [`cased_core::Client`].

use std::time::Duration;

use cased_core::{Client, DeploymentQuery};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;
use pythonize::pythonize;

use crate::errors::CoreError;
use crate::event::PyDeploymentEvent;

/// A client of the deployments API.
#[pyclass(module = "cased", name = "Client", frozen)]
#[derive(Debug)]
pub(crate) struct PyClient {
    inner: Client,
}

/// Seconds as a `Duration`, saturating: NaN and values at or below zero become zero (which the
/// core then rejects by name), values too large for a `Duration` become the largest one.
fn seconds(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    }
}

/// The outcome of a request, turned into a dict or an exception by pyo3-async-runtimes'
/// completion, which holds the GIL anyway: the Rust future itself never touches Python.
struct Delivery<T>(cased_core::Result<T>);

impl<'py, T: serde::Serialize> IntoPyObject<'py> for Delivery<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let response = self.0.map_err(CoreError)?;
        Ok(pythonize(py, &response)?)
    }
}

#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (api_key=None, base_url=None, timeout=None, max_retries=None))]
    fn new(
        api_key: Option<&Bound<'_, PyAny>>,
        base_url: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        max_retries: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let api_key = crate::guard::opt_text("client", "api_key", api_key)?;
        let base_url = crate::guard::opt_text("client", "base_url", base_url)?;
        // An int out of range is a ValidationError naming the setting, not an OverflowError;
        // another type is a TypeError.
        let max_retries = crate::guard::opt_u32("client", "max_retries", max_retries)?;
        let mut builder = Client::builder();
        if let Some(key) = api_key {
            builder = builder.api_key(key);
        }
        if let Some(url) = base_url {
            builder = builder.base_url(url);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(seconds(t));
        }
        if let Some(n) = max_retries {
            builder = builder.max_retries(n);
        }
        Ok(Self {
            inner: builder.build().map_err(CoreError)?,
        })
    }

    /// The full URL events are posted to.
    #[getter]
    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }

    /// Posts `event`: a coroutine (from `cased._aio`) resolving to
    /// `{"status": int, "body": Any, "attempts": int}`.
    fn create_deployment<'py>(
        slf: &Bound<'py, Self>,
        event: &Bound<'py, PyDeploymentEvent>,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "create_deployment")?
            .call1((slf, event))
    }

    /// Starts the request in the tokio runtime; the asyncio future it returns needs a running
    /// loop, hence the coroutine above. Only owned clones cross into the Rust future.
    fn _create_deployment<'py>(
        &self,
        py: Python<'py>,
        event: PyRef<'py, PyDeploymentEvent>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        let event = event.inner.clone();
        crate::aio::future_into_py(py, async move {
            Ok(Delivery(client.create_deployment(&event).await))
        })
    }

    /// One page of deployments, newest first: a coroutine (from `cased._aio`) resolving to
    /// `{"deployments": [...], "next_cursor": str | None}`.
    #[pyo3(signature = (*, repository=None, environment=None, verdict=None, limit=None, cursor=None))]
    fn deployments<'py>(
        slf: &Bound<'py, Self>,
        repository: Option<String>,
        environment: Option<String>,
        verdict: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "call")?.call1((
            slf.getattr("_deployments")?,
            repository,
            environment,
            verdict,
            limit,
            cursor,
        ))
    }

    fn _deployments<'py>(
        &self,
        py: Python<'py>,
        repository: Option<String>,
        environment: Option<String>,
        verdict: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        let query = DeploymentQuery {
            repository,
            environment,
            verdict,
            limit,
            cursor,
        };
        crate::aio::future_into_py(
            py,
            async move { Ok(Delivery(client.deployments(&query).await)) },
        )
    }

    /// One deployment with its events and session: a coroutine resolving to a dict.
    fn deployment<'py>(slf: &Bound<'py, Self>, id: String) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "call")?
            .call1((slf.getattr("_deployment")?, id))
    }

    fn _deployment<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        crate::aio::future_into_py(
            py,
            async move { Ok(Delivery(client.deployment(&id).await)) },
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Client(endpoint={})",
            PyString::new(py, self.inner.endpoint()).repr()?
        ))
    }
}
