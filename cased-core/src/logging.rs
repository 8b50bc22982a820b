//! Logging. The library only emits [`tracing`] events and spans (fields: `repository`,
//! `environment`, `correlation_id`, `session`, `status`, `attempt`); it prints nothing until the
//! caller installs a subscriber, with its own `tracing-subscriber` setup or with [`init`].
//! Secrets are never recorded.

use crate::error::{Error, Result};

/// Installs a global subscriber that writes to stderr, filtered by a `RUST_LOG`-style directive
/// such as `"info"` or `"cased_core=debug"`. When `filter` is `None`, `RUST_LOG` is read, and
/// `warn` is used when that is unset.
///
/// # Errors
/// [`Error::Validation`] on field `filter` for a directive that does not parse, or when a global
/// subscriber is already installed.
pub fn init(filter: Option<&str>) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => {
            EnvFilter::try_new(f).map_err(|e| Error::invalid("filter", format!("{f:?}: {e}")))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| Error::invalid("filter", format!("logging is already initialised: {e}")))
}
