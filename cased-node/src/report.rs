//! Reports: mirrors `cased_core::report` — a session's report rendered as Markdown (for a pull
//! request comment or a CI step summary), a self-contained HTML page, or pretty JSON.

use std::str::FromStr;

use cased_core::report::{Format, ReportContext};
use napi::{Env, Result};
use napi_derive::napi;

use crate::errors::to_js_error;
use crate::js::JsonText;

/// Renders a session's report (the object `session.wait()`, `monitor.run()` or
/// `history.report()` resolved with) as `md` (Markdown), `html` (one self-contained page: inline
/// SVG charts, no external resources) or `json` (pretty JSON).
///
/// Throws `code: 'validation'` on `format` for another format, on `report` for an object
/// that is not a cased report.
#[napi(
    catch_unwind,
    ts_args_type = "report: Report, format: 'md' | 'markdown' | 'html' | 'json'"
)]
pub fn render_report(env: &Env, report: JsonText, format: String) -> Result<String> {
    let rendered = Format::from_str(&format).and_then(|format| {
        let report = cased_core::Report::from_json(&report.0)?;
        Ok(cased_core::report::render(
            &report,
            &ReportContext::default(),
            format,
        ))
    });
    rendered.map_err(|e| to_js_error(env, e))
}
