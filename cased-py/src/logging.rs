//! `cased.enable_logging`: switches on the core's `tracing` output.

use pyo3::prelude::*;

use crate::errors::CoreError;

/// Writes the core's log to stderr, filtered by a `RUST_LOG`-style directive (default: the
/// `RUST_LOG` variable, else `warn`).
#[pyfunction]
#[pyo3(signature = (filter=None))]
pub(crate) fn enable_logging(filter: Option<String>) -> PyResult<()> {
    cased_core::logging::init(filter.as_deref()).map_err(CoreError)?;
    Ok(())
}
