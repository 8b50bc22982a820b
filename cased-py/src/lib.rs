//! Python bindings of cased: the module `cased._cased`, re-exported by the `cased` package.
//! Conversions and asyncio glue only; everything real lives in `cased-core`.

mod aio;
mod alert;
mod check;
mod client;
mod detect;
mod errors;
mod event;
mod guard;
mod history;
mod logging;
mod metrics;
mod monitor;
mod report;
mod session;

use pyo3::prelude::*;

#[pymodule]
fn _cased(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    aio::register(m)?;
    m.add_class::<event::PyDeploymentEvent>()?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<monitor::PyMonitor>()?;
    m.add_class::<session::PySession>()?;
    m.add_class::<session::PyUpdates>()?;
    m.add_class::<session::PyAlerts>()?;
    m.add_function(wrap_pyfunction!(check::run_check, m)?)?;
    m.add_function(wrap_pyfunction!(check::_run_check, m)?)?;
    m.add_function(wrap_pyfunction!(logging::enable_logging, m)?)?;
    detect::register(m)?;
    alert::register(m)?;
    m.add_class::<history::PyHistory>()?;
    metrics::register(m)?;
    m.add_function(wrap_pyfunction!(report::render_report, m)?)?;
    m.add("CasedError", py.get_type::<errors::CasedError>())?;
    m.add("ValidationError", py.get_type::<errors::ValidationError>())?;
    m.add("ApiError", py.get_type::<errors::ApiError>())?;
    m.add(
        "UnauthorizedError",
        py.get_type::<errors::UnauthorizedError>(),
    )?;
    m.add(
        "InvalidRequestError",
        py.get_type::<errors::InvalidRequestError>(),
    )?;
    m.add(
        "RateLimitedError",
        py.get_type::<errors::RateLimitedError>(),
    )?;
    m.add("ServerError", py.get_type::<errors::ServerError>())?;
    m.add("TimeoutError", py.get_type::<errors::TimeoutError>())?;
    m.add("TransportError", py.get_type::<errors::TransportError>())?;
    m.add("StorageError", py.get_type::<errors::StorageError>())?;
    m.add("ClosedError", py.get_type::<errors::ClosedError>())?;
    m.add("QueryError", py.get_type::<errors::QueryError>())?;
    m.add("NoDataError", py.get_type::<errors::NoDataError>())?;
    m.add("SignatureError", py.get_type::<errors::SignatureError>())?;
    Ok(())
}
