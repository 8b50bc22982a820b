//! `cased.render_report`: a report dict (or its JSON text) rendered by
//! [`cased_core::report::render`] as Markdown, HTML or JSON.

use cased_core::Report;
use cased_core::report::{self, Format, ReportContext};
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde_json::Value;

use crate::errors::CoreError;

/// A JSON-compatible value, or `ValidationError` naming `what` (or the path inside it).
fn json(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    crate::guard::to_json("report", what, obj)
}

/// Renders a session's report (the dict `Session.wait()` returns, or its JSON text) as
/// Markdown (`"md"`), a self-contained HTML page (`"html"`) or pretty JSON (`"json"`).
#[pyfunction]
#[pyo3(signature = (report, format=None, context=None))]
pub(crate) fn render_report(
    py: Python<'_>,
    report: &Bound<'_, PyAny>,
    format: Option<&Bound<'_, PyAny>>,
    context: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let format: Format = crate::guard::opt_text("report", "format", format)?
        .as_deref()
        .unwrap_or("md")
        .parse()
        .map_err(CoreError)?;
    let report: Report = match report.cast::<PyString>() {
        Ok(_) => Report::from_json(&crate::guard::text("report", "report", report)?)
            .map_err(CoreError)?,
        Err(_) => serde_json::from_value(json("report", report)?)
            .map_err(|e| CoreError::invalid("report", "report", e))?,
    };
    let context: ReportContext = match context {
        Some(c) if !c.is_none() => serde_json::from_value(json("context", c)?)
            .map_err(|e| CoreError::invalid("report context", "context", e))?,
        _ => ReportContext::default(),
    };
    Ok(py.detach(|| report::render(&report, &context, format)))
}
