//! Logging switch: mirrors `cased_core::logging`.

use napi::{Env, Result};
use napi_derive::napi;

use crate::errors::to_js_error;

/// Turns on cased's logs, written to stderr. The library is silent until this is called.
///
/// `filter` is a `RUST_LOG`-style directive such as `"info"` or `"cased_core=debug"`; when it
/// is omitted, the `RUST_LOG` environment variable is read, and `"warn"` is used when that is
/// unset. Secrets (the API key) are never logged.
///
/// Throws a `validation` error (field `filter`) for a directive that does not parse, or when
/// logging was already enabled in this process.
#[napi]
pub fn enable_logging(env: &Env, filter: Option<String>) -> Result<()> {
    cased_core::logging::init(filter.as_deref()).map_err(|e| to_js_error(env, e))
}
