//! `cased.Monitor`: conversions and asyncio glue around [`cased_core::Monitor`].
//!
//! The binding builds the core monitor — the plan every session runs — once, at construction,
//! from the configuration, the history, the direct baselines and the baseline store. Python
//! callables (custom checks, the rollback hook, custom notifiers) must run on the event loop of
//! the caller of `start()`, in its context, so they are bound there and handed to the core
//! beside the plan with `Monitor::start_with` (a session with custom notifiers then has its own
//! alert manager). Validation is the core's: a monitor with the callables is built by the
//! constructor and `add_check` to raise configuration errors, never at `start()`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cased_core::alert::{FnNotifier, Notification, Notifier, NotifyError};
use cased_core::{
    BaselineStore, Monitor, MonitorConfig, RollbackContext, RollbackHook, StartOptions,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyDict, PyString, PyTuple};
use pyo3_async_runtimes::TaskLocals;
use pythonize::pythonize;
use serde_json::Value;

use crate::aio;
use crate::check::CustomCheck;
use crate::errors::{CoreError, describe};
use crate::event::event_arg;
use crate::history::PyHistory;
use crate::metrics::PyBaselineStore;
use crate::session::PySession;

/// Starts monitoring sessions from one configuration.
#[pyclass(module = "cased", name = "Monitor", frozen)]
#[derive(Debug)]
pub(crate) struct PyMonitor {
    config: MonitorConfig,
    on_rollback: Option<Arc<Py<PyAny>>>,
    extras: Extras,
    state: Mutex<State>,
    /// The plan every session runs: everything but the Python callables.
    plan: Monitor,
}

/// What the monitor is built with besides the configuration, checks and hook.
#[derive(Debug, Default)]
struct Extras {
    /// Where sessions are recorded.
    history: Option<Py<PyHistory>>,
    /// The notifiers of `"type": "custom"` alert channels, by channel name.
    notifiers: Vec<(String, Arc<Py<PyAny>>)>,
    /// Baselines given directly, by metric.
    baselines: Vec<(String, Vec<f64>)>,
    /// Baseline counts `(errors, requests)` given directly, by metric.
    baseline_counts: Vec<(String, cased_core::Counts)>,
    /// Where sessions record their samples and find the baselines of the last healthy ones.
    baseline_store: Option<Arc<dyn BaselineStore>>,
}

#[derive(Debug)]
struct State {
    checks: Vec<CustomCheck>,
    /// Built with the callables but no event loop: proves the whole configuration valid.
    validated: Monitor,
}

impl PyMonitor {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn build(
        &self,
        checks: &[CustomCheck],
        locals: Option<TaskLocals>,
    ) -> cased_core::Result<Monitor> {
        build(
            &self.config,
            self.on_rollback.as_ref(),
            &self.extras,
            checks,
            locals,
        )
    }

    fn add(&self, check: CustomCheck) -> PyResult<()> {
        let mut state = self.state();
        let mut checks = state.checks.clone();
        checks.push(check);
        state.validated = self.build(&checks, None).map_err(CoreError)?;
        state.checks = checks;
        Ok(())
    }
}

/// The core monitor: the configuration, the custom checks and the hook, with callables bound to
/// the loop of `locals` (none: they report that no loop is running).
fn build(
    config: &MonitorConfig,
    on_rollback: Option<&Arc<Py<PyAny>>>,
    extras: &Extras,
    checks: &[CustomCheck],
    locals: Option<TaskLocals>,
) -> cased_core::Result<Monitor> {
    // Decorator checks are added after the constructor: the detector-metric rule is applied
    // when a session starts, with every custom check counted.
    let mut builder = Monitor::builder(config.clone()).checks_at_start();
    for check in checks {
        builder = builder.check(check.fn_check(locals.clone()));
    }
    for (metric, values) in &extras.baselines {
        builder = builder.baseline(metric.clone(), values.clone());
    }
    for (metric, counts) in &extras.baseline_counts {
        builder = builder.baseline_counts(metric.clone(), *counts);
    }
    if let Some(history) = &extras.history {
        builder = builder.history(history.get().shared());
    }
    if let Some(store) = &extras.baseline_store {
        builder = builder.baseline_store(Arc::clone(store));
    }
    for (name, f) in &extras.notifiers {
        let notifier = python_notifier(name, Arc::clone(f), locals.clone());
        builder = builder.notifier(name.clone(), Arc::new(notifier) as Arc<dyn Notifier>);
    }
    if let Some(f) = on_rollback {
        builder = builder.on_rollback(rollback_hook(Arc::clone(f), locals));
    }
    builder.build()
}

/// Baseline counts: a `(errors, requests)` tuple or an `{"errors", "requests"}` dict (any
/// other value is a list of baseline values).
fn baseline_counts(v: &Bound<'_, PyAny>) -> PyResult<Option<cased_core::Counts>> {
    let pair: Option<(u64, u64)> = if v.is_instance_of::<PyTuple>() {
        Some(v.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "baselines: a tuple must be (errors, requests), two non-negative integers",
            )
        })?)
    } else if let Ok(d) = v.cast::<PyDict>() {
        let get = |k: &str| -> PyResult<u64> {
            d.get_item(k)?
                .ok_or_else(|| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "baselines: a counts dict needs {k:?}"
                    ))
                })?
                .extract()
        };
        Some((get("errors")?, get("requests")?))
    } else {
        None
    };
    pair.map(|(e, r)| cased_core::Counts::new(e, r).map_err(|e| CoreError(e).into()))
        .transpose()
}

/// The rollback hook calling `f({"session_id", "event", "reason"})` on the loop of `locals`; an
/// exception is the hook's error, recorded by the core in the report.
fn rollback_hook(f: Arc<Py<PyAny>>, locals: Option<TaskLocals>) -> RollbackHook {
    RollbackHook::new(move |ctx: RollbackContext| {
        let f = Arc::clone(&f);
        let locals = locals.clone();
        async move {
            let Some(locals) = locals else {
                return Err("no event loop: the monitor was not started from asyncio".to_owned());
            };
            let done = aio::call_on_loop(
                locals,
                f,
                move |py| rollback_info(py, &ctx),
                |py, result| result.map(drop).map_err(|e| describe(py, &e)),
            );
            done.await
                .unwrap_or_else(|| Err("the Python interpreter is exiting".to_owned()))
        }
    })
}

/// The notifier calling `f(notification)` (the `cased.notification/v1` dict) on the loop of
/// `locals`; an exception is a failed attempt, retried by the core's delivery policy.
fn python_notifier(name: &str, f: Arc<Py<PyAny>>, locals: Option<TaskLocals>) -> FnNotifier {
    FnNotifier::new(name, move |n: Arc<Notification>| {
        let f = Arc::clone(&f);
        let locals = locals.clone();
        async move {
            let Some(locals) = locals else {
                return Err(NotifyError::permanent(
                    "no event loop: the monitor was not started from asyncio",
                ));
            };
            let done = aio::call_on_loop(
                locals,
                f,
                move |py| PyTuple::new(py, [pythonize(py, &*n)?]),
                |py, result| {
                    result
                        .map(drop)
                        .map_err(|e| NotifyError::retryable(describe(py, &e)))
                },
            );
            done.await
                .unwrap_or_else(|| Err(NotifyError::permanent("the Python interpreter is exiting")))
        }
    })
}

/// The hook's argument: `({"session_id": ..., "event": <wire dict>, "reason": ...},)`.
fn rollback_info<'py>(py: Python<'py>, ctx: &RollbackContext) -> PyResult<Bound<'py, PyTuple>> {
    let info = PyDict::new(py);
    info.set_item("session_id", &ctx.session_id)?;
    info.set_item("event", pythonize(py, &ctx.event)?)?;
    info.set_item("reason", &ctx.reason)?;
    PyTuple::new(py, [info])
}

#[pymethods]
impl PyMonitor {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (config=None, *, on_rollback=None, checks=None, notifiers=None, history=None, baselines=None, baseline_store=None))]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyAny>>,
        on_rollback: Option<&Bound<'_, PyAny>>,
        checks: Option<&Bound<'_, PyAny>>,
        notifiers: Option<&Bound<'_, PyAny>>,
        history: Option<Py<PyHistory>>,
        baselines: Option<&Bound<'_, PyAny>>,
        baseline_store: Option<Py<PyBaselineStore>>,
    ) -> PyResult<Self> {
        let value: Value = match config {
            None => Value::Object(serde_json::Map::new()),
            Some(c) => crate::guard::to_json("monitor config", "config", c)?,
        };
        let config = py
            .detach(move || MonitorConfig::from_value(value))
            .map_err(CoreError)?;
        let on_rollback = match on_rollback {
            Some(f) if !f.is_none() => {
                if !f.is_callable() {
                    let kind = f.get_type().name()?;
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "on_rollback: expected a callable, got {kind}"
                    )));
                }
                Some(Arc::new(f.clone().unbind()))
            }
            _ => None,
        };
        let mut custom = Vec::new();
        if let Some(checks) = checks {
            for (name, f) in crate::guard::items("checks", checks)? {
                let name = crate::guard::text("monitor", "checks", &name)?;
                custom.push(CustomCheck::new(name, &f, None)?);
            }
        }
        let mut extras = Extras {
            history,
            baseline_store: baseline_store.map(|s| s.get().shared()),
            ..Extras::default()
        };
        if let Some(baselines) = baselines {
            for (metric, values) in crate::guard::items("baselines", baselines)? {
                let metric = crate::guard::text("monitor", "baselines", &metric)?;
                match baseline_counts(&values)? {
                    Some(counts) => extras.baseline_counts.push((metric, counts)),
                    None => extras
                        .baselines
                        .push((metric, crate::detect::values(&values)?)),
                }
            }
        }
        if let Some(notifiers) = notifiers {
            for (name, f) in crate::guard::items("notifiers", notifiers)? {
                let name = crate::guard::text("monitor", "notifiers", &name)?;
                if !f.is_callable() {
                    let kind = f.get_type().name()?;
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "notifier {name:?}: expected an async callable, got {kind}"
                    )));
                }
                extras.notifiers.push((name, Arc::new(f.unbind())));
            }
        }
        let validated = py
            .detach(|| build(&config, on_rollback.as_ref(), &extras, &custom, None))
            .map_err(CoreError)?;
        let plain = Extras {
            history: extras.history.as_ref().map(|h| h.clone_ref(py)),
            notifiers: Vec::new(),
            baselines: extras.baselines.clone(),
            baseline_counts: extras.baseline_counts.clone(),
            baseline_store: extras.baseline_store.clone(),
        };
        let plan = py
            .detach(|| build(&config, None, &plain, &[], None))
            .map_err(CoreError)?;
        Ok(Self {
            config,
            on_rollback,
            extras,
            state: Mutex::new(State {
                checks: custom,
                validated,
            }),
            plan,
        })
    }

    /// Adds a custom check: `f` is called with no argument at every tick.
    #[pyo3(signature = (name, f, *, category=None))]
    fn add_check(
        &self,
        name: String,
        f: &Bound<'_, PyAny>,
        category: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.add(CustomCheck::new(name, f, category)?)
    }

    /// A decorator registering the decorated function as the custom check `name`.
    #[pyo3(signature = (name, *, category=None))]
    fn check<'py>(
        slf: &Bound<'py, Self>,
        name: String,
        category: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCFunction>> {
        let monitor = slf.clone().unbind();
        let category = category.map(|c| c.clone().unbind());
        PyCFunction::new_closure(
            slf.py(),
            Some(c"check"),
            Some(c"Registers the decorated callable as a custom check and returns it."),
            move |args: &Bound<'_, PyTuple>,
                  _kwargs: Option<&Bound<'_, PyDict>>|
                  -> PyResult<Py<PyAny>> {
                let py = args.py();
                let (f,): (Bound<'_, PyAny>,) = args.extract()?;
                let category = category.as_ref().map(|c| c.bind(py));
                monitor
                    .get()
                    .add(CustomCheck::new(name.clone(), &f, category)?)?;
                Ok(f.unbind())
            },
        )
    }

    /// The names of the checks each tick runs, configured ones first.
    fn check_names(&self) -> Vec<String> {
        self.state()
            .validated
            .check_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Starts a session: a coroutine (from `cased._aio`) resolving to a `Session`.
    fn start<'py>(
        slf: &Bound<'py, Self>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "start")?
            .call1((slf, event))
    }

    /// Starts a session and waits for its report: a coroutine (from `cased._aio`).
    fn run<'py>(slf: &Bound<'py, Self>, event: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "run")?
            .call1((slf, event))
    }

    /// Starts the session on pyo3-async-runtimes' tokio runtime; called by the coroutines above,
    /// inside the running loop, whose loop and context the Python callables are bound to.
    fn _start(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<PySession> {
        let event = event_arg(event)?;
        let checks = self.state().checks.clone();
        let mut options = StartOptions::default();
        if !checks.is_empty() || self.on_rollback.is_some() || !self.extras.notifiers.is_empty() {
            let locals = TaskLocals::with_running_loop(py)?.copy_context(py)?;
            for check in &checks {
                options = options.check(Arc::new(check.fn_check(Some(locals.clone()))));
            }
            if let Some(f) = &self.on_rollback {
                options = options.on_rollback(rollback_hook(Arc::clone(f), Some(locals.clone())));
            }
            for (name, f) in &self.extras.notifiers {
                let notifier = python_notifier(name, Arc::clone(f), Some(locals.clone()));
                options = options.notifier(name.clone(), Arc::new(notifier) as Arc<dyn Notifier>);
            }
        }
        let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
        let session = self.plan.start_with(event, options).map_err(CoreError)?;
        Ok(PySession::new(session))
    }

    /// Replays a recorded deployment through this monitor's pipeline on a virtual clock: a
    /// coroutine (from `cased._aio`) resolving to the report it would have given.
    fn replay<'py>(
        slf: &Bound<'py, Self>,
        event: &Bound<'py, PyAny>,
        recording: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "call")?.call1((
            slf.getattr("_replay")?,
            event,
            recording,
        ))
    }

    /// The asyncio future of a replay's report; called by the coroutine above.
    fn _replay<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        recording: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let event = event_arg(event)?;
        let value: Value = crate::guard::to_json("recording", "recording", recording)?;
        let recording = py
            .detach(move || cased_core::Recording::from_value(value))
            .map_err(CoreError)?;
        let monitor = self.plan.clone();
        crate::aio::future_into_py(py, async move {
            let report = monitor.replay(event, recording).await.map_err(CoreError)?;
            Ok(crate::session::ReportOut(report))
        })
    }

    /// Flushes and stops every alert channel of this monitor: a coroutine (from `cased._aio`)
    /// resolving to the channels' counters (see `cased_core::Monitor::close`).
    #[pyo3(signature = (grace=10.0))]
    fn close<'py>(slf: &Bound<'py, Self>, grace: f64) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "call")?
            .call1((slf.getattr("_close")?, grace))
    }

    /// The asyncio future of `close`; called by the coroutine above.
    fn _close<'py>(&self, py: Python<'py>, grace: f64) -> PyResult<Bound<'py, PyAny>> {
        let grace = std::time::Duration::try_from_secs_f64(grace).map_err(|_| {
            CoreError::invalid(
                "monitor close",
                "grace",
                format!("must be a non-negative number of seconds, got {grace}"),
            )
        })?;
        let monitor = self.plan.clone();
        crate::aio::future_into_py(py, async move {
            let stats = monitor.close(grace).await;
            Python::attach(|py| Ok(pythonize(py, &stats)?.unbind()))
        })
    }

    /// `async with Monitor(...) as monitor:` closes it (flushing its alerts) on the way out.
    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static GLUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        GLUE.import(slf.py(), "cased._aio", "enter")?.call1((slf,))
    }

    /// See `__aenter__`.
    fn __aexit__<'py>(
        slf: &Bound<'py, Self>,
        _exc_type: &Bound<'py, PyAny>,
        _exc: &Bound<'py, PyAny>,
        _tb: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::close(slf, 10.0)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let names = self
            .check_names()
            .iter()
            .map(|n| Ok(PyString::new(py, n).repr()?.to_string()))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(format!("Monitor(checks=[{}])", names.join(", ")))
    }
}
