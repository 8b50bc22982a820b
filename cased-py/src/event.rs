//! `cased.DeploymentEvent`: conversions around [`cased_core::DeploymentEvent`]. Every value is
//! handed to the core as JSON, so validation (all problems at once) is the core's.

use std::collections::HashMap;

use cased_core::DeploymentEvent;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use pythonize::pythonize;
use serde_json::{Map, Value};

use crate::errors::CoreError;

/// A validated deployment event (the body of `POST /api/v1/deployments/`).
#[pyclass(module = "cased", name = "DeploymentEvent", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PyDeploymentEvent {
    pub(crate) inner: DeploymentEvent,
}

/// A Python value as JSON; a value JSON cannot hold raises `ValidationError` naming its path.
fn to_json(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    crate::guard::to_json("deployment event", field, obj)
}

/// Validates `value` in the core, without holding the GIL.
fn validate(py: Python<'_>, value: Value) -> PyResult<PyDeploymentEvent> {
    let inner = py
        .detach(move || DeploymentEvent::from_value(value))
        .map_err(CoreError)?;
    Ok(PyDeploymentEvent { inner })
}

/// An event argument: a `DeploymentEvent`, or a mapping with the wire field names (validated by
/// the core, every problem at once).
pub(crate) fn event_arg(obj: &Bound<'_, PyAny>) -> PyResult<DeploymentEvent> {
    if let Ok(event) = obj.cast::<PyDeploymentEvent>() {
        return Ok(event.get().inner.clone());
    }
    Ok(validate(obj.py(), to_json("event", obj)?)?.inner)
}

#[pymethods]
impl PyDeploymentEvent {
    #[new]
    #[pyo3(signature = (
        deployment_request, *, repository_full_name=None, status=None, external_url=None,
        commit_sha=None, commit_message=None, r#ref=None, event_metadata=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        deployment_request: &Bound<'_, PyAny>,
        repository_full_name: Option<&Bound<'_, PyAny>>,
        status: Option<&Bound<'_, PyAny>>,
        external_url: Option<&Bound<'_, PyAny>>,
        commit_sha: Option<&Bound<'_, PyAny>>,
        commit_message: Option<&Bound<'_, PyAny>>,
        r#ref: Option<&Bound<'_, PyAny>>,
        event_metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut map = Map::new();
        map.insert(
            "deployment_request".into(),
            to_json("deployment_request", deployment_request)?,
        );
        let optional = [
            ("repository_full_name", repository_full_name),
            ("status", status),
            ("external_url", external_url),
            ("commit_sha", commit_sha),
            ("commit_message", commit_message),
            ("ref", r#ref),
            ("event_metadata", event_metadata),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                map.insert(field.into(), to_json(field, value)?);
            }
        }
        validate(py, Value::Object(map))
    }

    /// Validates a dict with the wire field names.
    #[staticmethod]
    fn from_dict(py: Python<'_>, d: &Bound<'_, PyAny>) -> PyResult<Self> {
        validate(py, to_json("body", d)?)
    }

    /// Parses and validates JSON text (`str`) or bytes (`bytes`, which must be UTF-8).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Self> {
        let parsed = if let Ok(bytes) = text.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            py.detach(|| DeploymentEvent::from_slice(bytes))
        } else if let Ok(s) = text.cast::<PyString>() {
            // A lone surrogate cannot be UTF-8: a ValidationError, not a UnicodeEncodeError.
            let s = s.to_cow().map_err(|_| {
                CoreError::invalid(
                    "deployment event",
                    "text",
                    "is not valid Unicode (it holds a lone surrogate, which UTF-8 cannot encode)",
                )
            })?;
            py.detach(|| DeploymentEvent::from_json(&s))
        } else {
            let name = text.get_type().name()?;
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "from_json() expects str or bytes, got {name}"
            )));
        };
        Ok(Self {
            inner: parsed.map_err(CoreError)?,
        })
    }

    /// Builds an event from a CI environment (GitHub Actions or GitLab CI, detected);
    /// `env` defaults to `os.environ`.
    #[staticmethod]
    #[pyo3(signature = (env=None))]
    fn from_env(py: Python<'_>, env: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let environ;
        let env = match env {
            Some(env) => env,
            None => {
                environ = py.import("os")?.getattr("environ")?;
                &environ
            }
        };
        let mut vars = HashMap::new();
        for (key, value) in crate::guard::items("env", env)? {
            let key = crate::guard::text("deployment event", "env", &key)?;
            let field = format!("env.{}", cased_core::limits::field_segment(&key));
            let value = crate::guard::text("deployment event", &field, &value)?;
            vars.insert(key, value);
        }
        let inner = DeploymentEvent::from_ci_env(&vars).map_err(CoreError)?;
        Ok(Self { inner })
    }

    #[getter]
    fn deployment_request(&self) -> &str {
        self.inner.deployment_request()
    }
    #[getter]
    fn repository_full_name(&self) -> Option<&str> {
        self.inner.repository_full_name()
    }
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status().as_str()
    }
    #[getter]
    fn external_url(&self) -> Option<&str> {
        self.inner.external_url()
    }
    #[getter]
    fn commit_sha(&self) -> Option<&str> {
        self.inner.commit_sha()
    }
    #[getter]
    fn commit_message(&self) -> Option<&str> {
        self.inner.commit_message()
    }
    #[getter]
    fn r#ref(&self) -> Option<&str> {
        self.inner.git_ref()
    }
    /// A fresh dict on every access: changing it does not change the event.
    #[getter]
    fn event_metadata<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .event_metadata()
            .map(|m| Ok(pythonize(py, m)?))
            .transpose()
    }
    #[getter]
    fn environment(&self) -> Option<&str> {
        self.inner.environment()
    }
    #[getter]
    fn correlation_id(&self) -> Option<&str> {
        self.inner.correlation_id()
    }

    /// The event as the JSON object sent to the API, as a dict (absent fields omitted, keys in
    /// wire order: the event serializes itself, as `to_value()` would, without the detour).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(pythonize(py, &self.inner)?)
    }

    /// The event as compact JSON text, exactly as sent to the API.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let dict = self.to_dict(py)?;
        let mut parts = Vec::new();
        for (key, value) in dict.cast::<PyDict>()?.iter() {
            let value = value.repr()?;
            if parts.is_empty() {
                parts.push(value.to_string());
            } else {
                parts.push(format!("{key}={value}"));
            }
        }
        Ok(format!("DeploymentEvent({})", parts.join(", ")))
    }
}
