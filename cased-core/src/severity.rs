//! How bad something is: shared by findings and alerts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Severity of a finding or an alert, from least to most severe (ordered).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record: deployment started, progress.
    #[default]
    Info,
    /// Minor issues, degradation.
    Warning,
    /// Significant issues, service unavailable.
    Critical,
    /// Severe: act now.
    Emergency,
}

impl Severity {
    /// The wire name (`"info"`, `"warning"`, `"critical"`, `"emergency"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Emergency => "emergency",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
