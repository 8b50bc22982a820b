//! Alerts: the webhook signature functions receivers use, over
//! [`cased_core::alert::sign_webhook`] and [`cased_core::alert::verify_webhook_signature`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cased_core::alert;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyString};

use crate::errors::{CoreError, signature_error};

/// A request body as bytes: `bytes`, `bytearray`, or `str` (as UTF-8).
fn body_bytes(body: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = body.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = body.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if body.is_instance_of::<PyString>() {
        return Ok(crate::guard::text("webhook signature", "body", body)?.into_bytes());
    }
    let kind = body.get_type().name()?;
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "body: expected bytes or str, got {kind}"
    )))
}

/// A timestamp header value: the text as received, or an int of Unix seconds.
fn timestamp_text(timestamp: &Bound<'_, PyAny>) -> PyResult<String> {
    if timestamp.is_instance_of::<PyString>() {
        return crate::guard::text("webhook signature", "timestamp", timestamp);
    }
    if timestamp.is_instance_of::<PyInt>() {
        // Beyond 64 bits: its decimal text, which the verifier then judges (never an
        // OverflowError).
        return Ok(match timestamp.extract::<i64>() {
            Ok(n) => n.to_string(),
            Err(_) => timestamp.str()?.to_string(),
        });
    }
    let kind = timestamp.get_type().name()?;
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "timestamp: expected str or int (Unix seconds), got {kind}"
    )))
}

/// Seconds as a duration, or a validation error on `field`.
fn seconds(field: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        CoreError::invalid(
            "webhook verification",
            field,
            format!("must be a non-negative number of seconds, got {s}"),
        )
        .into()
    })
}

/// The signature header value for `body` sent at `timestamp`.
#[pyfunction]
pub(crate) fn sign_webhook(
    secret: &Bound<'_, PyAny>,
    timestamp: &Bound<'_, PyAny>,
    body: &Bound<'_, PyAny>,
) -> PyResult<String> {
    Ok(alert::sign_webhook(
        &crate::guard::text("webhook signature", "secret", secret)?,
        &timestamp_text(timestamp)?,
        &body_bytes(body)?,
    ))
}

/// Checks a received webhook; raises `SignatureError` when it must be rejected.
#[pyfunction]
#[pyo3(signature = (secret, timestamp, body, signature, tolerance=300.0, now=None))]
pub(crate) fn verify_webhook_signature(
    py: Python<'_>,
    secret: &Bound<'_, PyAny>,
    timestamp: &Bound<'_, PyAny>,
    body: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
    tolerance: f64,
    now: Option<f64>,
) -> PyResult<()> {
    let tolerance = seconds("tolerance", tolerance)?;
    let now = match now {
        None => SystemTime::now(),
        Some(s) => UNIX_EPOCH.checked_add(seconds("now", s)?).ok_or_else(|| {
            PyErr::from(CoreError::invalid(
                "webhook verification",
                "now",
                format!("{s} is beyond the clock's range"),
            ))
        })?,
    };
    let secret = crate::guard::text("webhook verification", "secret", secret)?;
    let signature = crate::guard::text("webhook verification", "signature", signature)?;
    alert::verify_webhook_signature(
        &secret,
        &timestamp_text(timestamp)?,
        &body_bytes(body)?,
        &signature,
        tolerance,
        now,
    )
    .map_err(|e| signature_error(py, e))
}

/// Registers the alert API.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sign_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(verify_webhook_signature, m)?)?;
    Ok(())
}
