//! The built-in check types, declared in configuration as `{"name": ..., "type": ..., ...}`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::check::HealthCheck;
use crate::error::Result;

pub mod http;

pub use http::{HttpCheck, HttpCheckConfig, HttpExpect, StatusSpec};

/// One check as written in configuration; `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckConfig {
    /// An HTTP request ([`HttpCheckConfig`]).
    Http(HttpCheckConfig),
}

impl CheckConfig {
    /// The check's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Http(c) => &c.name,
        }
    }

    /// Builds the runnable check.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming each bad setting (`field` paths start at the check).
    pub fn build(&self) -> Result<Arc<dyn HealthCheck>> {
        Ok(match self {
            Self::Http(c) => Arc::new(HttpCheck::new(c.clone())?),
        })
    }
}

/// Runs one check once, from its configuration: the one-off runner.
///
/// # Errors
/// [`crate::Error::Validation`] when the configuration is invalid; faults of the target are
/// outcomes, not errors.
pub async fn run_check(config: &CheckConfig) -> Result<crate::check::CheckOutcome> {
    let check = config.build()?;
    Ok(check.check().await)
}
