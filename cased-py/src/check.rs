//! Custom checks written in Python (async callables run on the event loop captured at `start()`,
//! wrapped in a core [`FnCheck`]) and the one-off runner `cased.run_check` over
//! [`cased_core::run_check`]. Conversions only: the outcome rules are the core's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cased_core::{CheckCategory, CheckConfig, CheckOutcome, CheckStatus, FnCheck};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyMapping, PyTuple};
use pyo3_async_runtimes::TaskLocals;
use pythonize::{depythonize, pythonize};
use serde_json::Value;

use crate::aio;
use crate::errors::{CoreError, describe};

/// A custom check as registered on a `cased.Monitor`: a name, a category and the callable.
#[derive(Debug, Clone)]
pub(crate) struct CustomCheck {
    pub(crate) name: String,
    pub(crate) category: CheckCategory,
    pub(crate) f: Arc<Py<PyAny>>,
}

impl CustomCheck {
    /// A check named `name` calling `f`; `category` is a category name or None.
    pub(crate) fn new(
        name: String,
        f: &Bound<'_, PyAny>,
        category: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        if !f.is_callable() {
            let kind = f.get_type().name()?;
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "check {name:?}: expected an async callable, got {kind}"
            )));
        }
        let category = match category {
            None => CheckCategory::default(),
            Some(c) => depythonize(c).map_err(|e| {
                CoreError::invalid(&format!("custom check {name:?}"), "category", e)
            })?,
        };
        Ok(Self {
            name,
            category,
            f: Arc::new(f.clone().unbind()),
        })
    }

    /// The core check. Each run calls the callable on the loop of `locals`; without a loop (a
    /// monitor built only to validate) a run is an `error` outcome.
    pub(crate) fn fn_check(&self, locals: Option<TaskLocals>) -> FnCheck {
        let f = Arc::clone(&self.f);
        FnCheck::new(self.name.clone(), move || {
            run_custom(locals.clone(), Arc::clone(&f))
        })
        .category(self.category)
    }
}

/// One run of a custom check: an exception is an `error` outcome with its message, a malformed
/// result an `error` outcome saying what is wrong. Latency is measured unless the check reports
/// `latency_ms`.
async fn run_custom(locals: Option<TaskLocals>, f: Arc<Py<PyAny>>) -> CheckOutcome {
    let Some(locals) = locals else {
        return CheckOutcome::error("no event loop: the monitor was not started from asyncio");
    };
    let started = Instant::now();
    let outcome = aio::call_on_loop(
        locals,
        f,
        |py| Ok(PyTuple::empty(py)),
        |py, result| match result {
            Ok(value) => returned(&value).unwrap_or_else(|why| {
                (
                    CheckOutcome::error(format!("malformed check result: {why}")),
                    false,
                )
            }),
            Err(e) => (CheckOutcome::error(describe(py, &e)), false),
        },
    )
    .await;
    match outcome {
        Some((outcome, true)) => outcome,
        Some((outcome, false)) => outcome.with_latency(started.elapsed()),
        None => {
            CheckOutcome::error("the Python interpreter is exiting").with_latency(started.elapsed())
        }
    }
}

/// A check's return value as an outcome, and whether it reported its latency; otherwise every
/// problem with it.
fn returned(value: &Bound<'_, PyAny>) -> Result<(CheckOutcome, bool), String> {
    const SHAPE: &str = r#"a dict like {"status": "pass", "message": "..."}"#;
    if value.cast::<PyMapping>().is_err() {
        let kind = value.get_type().name().map_err(|e| e.to_string())?;
        return Err(format!("expected {SHAPE}, got {kind}"));
    }
    if let Some(problem) = crate::guard::message(value).map_err(|e| e.to_string())? {
        return Err(problem);
    }
    let Value::Object(mut map) =
        depythonize::<Value>(value).map_err(|e| format!("not JSON-compatible: {e}"))?
    else {
        return Err(format!("expected {SHAPE}"));
    };
    let mut problems = Vec::new();
    let status = match map.remove("status") {
        None => {
            problems.push(r#""status" is missing"#.to_owned());
            None
        }
        Some(s) => {
            let status = serde_json::from_value::<CheckStatus>(s.clone()).ok();
            if status.is_none() {
                problems.push(format!(
                    r#""status" is {s}, not "pass", "warn", "fail" or "error""#
                ));
            }
            status
        }
    };
    let message = match map.remove("message") {
        Some(Value::String(m)) => Some(m),
        None => {
            problems.push(r#""message" is missing"#.to_owned());
            None
        }
        Some(other) => {
            problems.push(format!(r#""message" is {other}, not a string"#));
            None
        }
    };
    let evidence = map.remove("evidence").filter(|e| !e.is_null());
    let latency = match map.remove("latency_ms") {
        None | Some(Value::Null) => None,
        Some(ms) => {
            let latency = ms
                .as_f64()
                .filter(|ms| *ms >= 0.0)
                .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
            if latency.is_none() {
                problems.push(format!(
                    r#""latency_ms" is {ms}, not a non-negative number"#
                ));
            }
            latency
        }
    };
    problems.extend(map.keys().map(|k| format!("unknown key {k:?}")));
    match (status, message) {
        (Some(status), Some(message)) if problems.is_empty() => {
            let mut outcome = CheckOutcome::new(status, message);
            if let Some(evidence) = evidence {
                outcome = outcome.with_evidence(evidence);
            }
            let reported = latency.is_some();
            Ok((outcome.with_latency(latency.unwrap_or_default()), reported))
        }
        _ => Err(problems.join("; ")),
    }
}

/// What `run_check` resolves to, converted where pyo3-async-runtimes completes the future.
struct Ran(cased_core::Result<CheckOutcome>);

impl<'py> IntoPyObject<'py> for Ran {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let outcome = self.0.map_err(CoreError)?;
        Ok(pythonize(py, &outcome)?)
    }
}

/// Runs one check once from its configuration (`{"name": ..., "type": "http", ...}`): a
/// coroutine (from `cased._aio`) resolving to the outcome dict. Faults of the target are
/// outcomes; only an invalid configuration raises.
#[pyfunction]
pub(crate) fn run_check<'py>(config: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GLUE.import(config.py(), "cased._aio", "run_check")?
        .call1((config,))
}

/// Starts the check in the tokio runtime (see `run_check`).
#[pyfunction]
pub(crate) fn _run_check<'py>(config: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = config.py();
    let value: Value = crate::guard::to_json("check", "config", config)?;
    // Every problem is reported on `config`, with serde's message naming the key.
    let config: CheckConfig = serde_json::from_value(value)
        .map_err(|e| CoreError::invalid("check configuration", "config", e))?;
    aio::future_into_py(
        py,
        async move { Ok(Ran(cased_core::run_check(&config).await)) },
    )
}
