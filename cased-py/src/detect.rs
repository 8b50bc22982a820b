//! `cased.Detector` and the one-shot comparisons `cased.compare` / `cased.compare_error_rates`:
//! conversions around [`cased_core::detect`]. Configurations are the core's serde shapes
//! (the `detectors` entries of a monitor configuration); findings and comparisons come back as
//! the core serializes them.
//!
//! Batch input is read through the buffer protocol when the object has one of doubles
//! (`array.array("d")`, numpy `float64`), copied once, and judged with the GIL released; any
//! other sequence is converted in Rust. No Python code runs per element.

use std::sync::{Mutex, MutexGuard, PoisonError};

use cased_core::detect::ShiftDetector;
use cased_core::detect::{
    BuiltDetector, Detection, Detector, IndexedFinding, SeverityPolicy, compare_counts,
    compare_values, segment as segment_values,
};
use cased_core::{BaselineComparisonDetector, Counts, DetectorConfig};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyMemoryView, PyString};
use pythonize::pythonize;
use serde_json::Value;

use crate::errors::CoreError;

/// A value JSON can hold, or `ValidationError` naming `what` (or the path inside it).
fn json_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    crate::guard::to_json("detector", what, obj)
}

/// The settings dict of a one-shot comparison (None: the defaults), as JSON.
fn settings(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    match obj {
        Some(o) if !o.is_none() => json_arg("config", o),
        _ => Ok(Value::Null),
    }
}

/// The values of a batch. An object with the buffer protocol is read through one
/// `memoryview`: a 1-D buffer of doubles (`array.array("d")`, numpy `float64`) is copied once
/// as bytes, any other item type converted from `tolist()`; any other object (and a buffer
/// memoryview cannot unpack) must be a sequence of numbers. Only that last case calls Python
/// per element.
///
/// (pyo3's `PyBuffer` is not in the abi3-py39 limited API this package is built for.)
pub(crate) fn values(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let py = obj.py();
    if obj.is_instance_of::<PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "values: expected a sequence of numbers or a buffer of doubles, got str",
        ));
    }
    if let Ok(view) = PyMemoryView::from(obj) {
        let ndim: usize = view.getattr("ndim")?.extract()?;
        if ndim != 1 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "values: expected a one-dimensional buffer, got {ndim} dimensions"
            )));
        }
        let format: String = view.getattr("format")?.extract()?;
        if matches!(format.as_str(), "d" | "@d" | "=d")
            || (format == "<d" && cfg!(target_endian = "little"))
            || (format == ">d" && cfg!(target_endian = "big"))
        {
            let bytes = view.call_method0("tobytes")?;
            let bytes = bytes.cast::<PyBytes>()?.as_bytes();
            return Ok(py.detach(|| {
                bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_ne_bytes(b.try_into().expect("chunks of 8")))
                    .collect()
            }));
        }
        // Formats memoryview cannot unpack (non-native byte order) fall through to iteration.
        if let Ok(list) = view.call_method0("tolist") {
            return list.extract::<Vec<f64>>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "values: a buffer of {format:?} items does not hold numbers"
                ))
            });
        }
    }
    obj.extract::<Vec<f64>>().map_err(|_| {
        let kind = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        pyo3::exceptions::PyTypeError::new_err(format!(
            "values: expected a sequence of numbers or a buffer of doubles \
             (array.array('d'), numpy float64), got {kind}"
        ))
    })
}

/// The detector behind a `cased.Detector`: a streaming one, or one that also takes a baseline
/// (a baseline comparison, or the shift detector).
#[derive(Debug)]
enum Inner {
    Stream(Box<dyn Detector>),
    Baseline(BaselineComparisonDetector),
    /// Boxed: the largest detector by far.
    Shift(Box<ShiftDetector>),
}

impl Inner {
    fn detector(&mut self) -> &mut dyn Detector {
        match self {
            Self::Stream(d) => d.as_mut(),
            Self::Baseline(d) => d,
            Self::Shift(d) => d.as_mut(),
        }
    }
}

/// One detector from its configuration, fed values one at a time or in batches.
#[pyclass(module = "cased", name = "Detector", frozen)]
#[derive(Debug)]
pub(crate) struct PyDetector {
    config: DetectorConfig,
    policy: SeverityPolicy,
    inner: Mutex<Inner>,
}

impl PyDetector {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finding(&self, detection: Detection) -> IndexedFinding {
        IndexedFinding::new(&self.config, &self.policy, detection)
    }
}

fn build(config: &DetectorConfig) -> cased_core::Result<Inner> {
    Ok(match config.kind.build()? {
        BuiltDetector::Stream(d) => Inner::Stream(d),
        BuiltDetector::Baseline(d) => Inner::Baseline(d),
        BuiltDetector::Shift(d) => Inner::Shift(d),
        BuiltDetector::ErrorRate(_) => {
            return Err(CoreError::invalid(
                "detector configuration",
                "type",
                "error_rate detectors judge (errors, requests) counts, not values: \
                 use cased.compare_error_rates",
            )
            .0);
        }
    })
}

#[pymethods]
impl PyDetector {
    #[new]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let value = json_arg("config", config)?;
        let config = py
            .detach(move || -> cased_core::Result<DetectorConfig> {
                DetectorConfig::from_value(value)
            })
            .map_err(CoreError)?;
        let inner = build(&config).map_err(CoreError)?;
        let policy = config.severity.unwrap_or_else(|| match &inner {
            Inner::Stream(d) => d.default_severity(),
            Inner::Baseline(d) => Detector::default_severity(d),
            Inner::Shift(d) => d.default_severity(),
        });
        Ok(Self {
            config,
            policy,
            inner: Mutex::new(inner),
        })
    }

    /// The detector's type (`"spike"`, `"baseline"`...).
    #[getter]
    fn r#type(&self) -> &'static str {
        self.config.kind.type_name()
    }

    /// The metric its findings are about.
    #[getter]
    fn metric(&self) -> &str {
        &self.config.metric
    }

    /// The name its findings carry.
    #[getter]
    fn name(&self) -> &str {
        self.config.name()
    }

    /// The configuration, with every default filled in.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(pythonize(py, &self.config)?)
    }

    /// Feeds one value; the finding it raises, or None.
    fn update<'py>(&self, py: Python<'py>, x: f64) -> PyResult<Option<Bound<'py, PyAny>>> {
        let detection = self.inner().detector().update(x).map_err(CoreError)?;
        detection
            .map(|d| Ok(pythonize(py, &self.finding(d))?))
            .transpose()
    }

    /// Feeds every value of `values` in order (continuing the stream); every finding raised.
    fn detect<'py>(&self, values: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let py = values.py();
        let xs = self::values(values)?;
        let found = py
            .detach(|| -> cased_core::Result<Vec<IndexedFinding>> {
                let detections = self.inner().detector().detect(&xs)?;
                Ok(detections.into_iter().map(|d| self.finding(d)).collect())
            })
            .map_err(CoreError)?;
        let out = PyList::empty(py);
        for f in &found {
            out.append(pythonize(py, f)?)?;
        }
        Ok(out)
    }

    /// The score of the last value: below 1 is normal, 1 or more an alarm.
    fn score(&self) -> f64 {
        self.inner().detector().score()
    }

    /// Forgets every value seen (the configuration, and a baseline, stay).
    fn reset(&self) {
        self.inner().detector().reset();
    }

    /// Sets the baseline of a `baseline` or `shift` detector (values oldest first).
    fn set_baseline(&self, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let xs = self::values(values)?;
        match &mut *self.inner() {
            Inner::Baseline(d) => d.set_baseline(&xs).map_err(CoreError)?,
            Inner::Shift(d) => d.set_baseline(&xs).map_err(CoreError)?,
            Inner::Stream(_) => {
                return Err(CoreError::invalid(
                    "detector",
                    "type",
                    format!(
                        "only baseline and shift detectors take a baseline, this one is {:?}",
                        self.config.kind.type_name()
                    ),
                )
                .into());
            }
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Detector(type={}, metric={}, name={})",
            PyString::new(py, self.config.kind.type_name()).repr()?,
            PyString::new(py, &self.config.metric).repr()?,
            PyString::new(py, self.config.name()).repr()?,
        ))
    }
}

/// One comparison of `current` with `baseline` (Mann–Whitney U against the allowed change,
/// Hodges–Lehmann shift, Brown–Forsythe spread) at the full level α.
///
/// `look` (1-based) judges the call as that look of a session, at the share of α a session
/// spends on it, so a loop of calls with looks 1, 2, 3… keeps its false-alarm rate within α;
/// None (the default) is one look at the full level α.
#[pyfunction]
#[pyo3(signature = (baseline, current, config=None, *, metric=None, look=None))]
pub(crate) fn compare<'py>(
    baseline: &Bound<'py, PyAny>,
    current: &Bound<'py, PyAny>,
    config: Option<&Bound<'py, PyAny>>,
    metric: Option<&Bound<'py, PyAny>>,
    look: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = baseline.py();
    let metric = crate::guard::opt_text("comparison", "metric", metric)?;
    let metric = metric.as_deref().unwrap_or("value");
    let look = crate::guard::opt_u32("comparison", "look", look)?;
    let settings = settings(config)?;
    let (b, c) = (values(baseline)?, values(current)?);
    let judged = py
        .detach(|| compare_values(settings, metric, &b, &c, look))
        .map_err(CoreError)?;
    Ok(pythonize(py, &judged)?)
}

/// `(errors, requests)` as counts.
fn counts(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Counts> {
    let (errors, requests): (u64, u64) = obj.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{what}: expected an (errors, requests) pair of non-negative integers"
        ))
    })?;
    Ok(Counts::new(errors, requests).map_err(CoreError)?)
}

/// One comparison of current error counts with baseline counts at the full level α, or, with
/// `look` (1-based), as that look of a session.
#[pyfunction]
#[pyo3(signature = (baseline, current, config=None, *, metric=None, look=None))]
pub(crate) fn compare_error_rates<'py>(
    baseline: &Bound<'py, PyAny>,
    current: &Bound<'py, PyAny>,
    config: Option<&Bound<'py, PyAny>>,
    metric: Option<&Bound<'py, PyAny>>,
    look: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = baseline.py();
    let metric = crate::guard::opt_text("comparison", "metric", metric)?;
    let metric = metric.as_deref().unwrap_or("errors");
    let look = crate::guard::opt_u32("comparison", "look", look)?;
    let settings = settings(config)?;
    let (b, c) = (counts("baseline", baseline)?, counts("current", current)?);
    let judged = compare_counts(settings, metric, b, c, look).map_err(CoreError)?;
    Ok(pythonize(py, &judged)?)
}

/// Registers the detector API.
/// Splits a whole series into segments with PELT (the core's `segment`): `config` holds
/// `cost` (`"normal_meanvar"`, `"normal_mean"` or `"poisson"`), `penalty` (`"mbic"`, `"bic"` or
/// a number) and `min_size`.
#[pyfunction]
#[pyo3(signature = (values, config=None))]
pub(crate) fn segment<'py>(
    values: &Bound<'py, PyAny>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = values.py();
    let settings = settings(config)?;
    let xs = self::values(values)?;
    let found = py
        .detach(|| segment_values(&xs, settings))
        .map_err(CoreError)?;
    Ok(pythonize(py, &found)?)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDetector>()?;
    m.add_function(wrap_pyfunction!(segment, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(compare_error_rates, m)?)?;
    Ok(())
}
