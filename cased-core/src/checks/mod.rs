//! The built-in check types, declared in configuration as `{"name": ..., "type": ..., ...}`:
//! `http`, `tcp`, `dns`, `postgres` (feature `postgres`, on by default), `redis` and `command`.
//!
//! Every type takes `name`, `timeout` and `category`; unknown keys are rejected. When
//! `category` is absent it defaults by type: `http` → `availability` (`endpoint` when `expect`
//! looks at the body, JSON or headers), `tcp` → `availability`, `dns` → `dependency`,
//! `postgres` → `database`, `redis` → `dependency`, `command` → `availability`.
//!
//! Faults of the target are `fail` outcomes with evidence (`expected` and `got`), a target that
//! does not answer within the check's `timeout` included; `error` outcomes are kept for faults
//! of the monitor, where the check could not run at all (a program that cannot be started, a
//! resolver that does not answer). `docs/checks.md` has the table of every fault. Each check enforces its own `timeout`; [`HealthCheck::timeout`] reports it plus
//! [`TIMEOUT_GRACE`] so that a caller's outer timeout does not pre-empt the check's evidence.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::check::{CheckOutcome, HealthCheck};
use crate::error::Result;

pub mod command;
pub mod dns;
pub mod http;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod redis;
pub mod tcp;

pub use command::{CommandCheck, CommandCheckConfig, CommandExpect};
pub use dns::{DnsCheck, DnsCheckConfig};
pub use http::{ConnectionMode, HttpCheck, HttpCheckConfig, HttpExpect, JsonExpect, StatusSpec};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresCheck, PostgresCheckConfig, PostgresTls};
pub use redis::{RedisCheck, RedisCheckConfig};
pub use tcp::{TcpCheck, TcpCheckConfig};

/// How much longer than its configured `timeout` a built-in check reports as its
/// [`HealthCheck::timeout`]: the check stops itself at `timeout` with a `fail` and evidence;
/// the grace keeps an outer timeout of the same length from turning that into an `error`.
pub const TIMEOUT_GRACE: Duration = Duration::from_millis(250);

/// One check as written in configuration; `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckConfig {
    /// An HTTP request ([`HttpCheckConfig`]).
    Http(HttpCheckConfig),
    /// A TCP connection, optionally sending and expecting bytes ([`TcpCheckConfig`]).
    Tcp(TcpCheckConfig),
    /// A name resolution ([`DnsCheckConfig`]).
    Dns(DnsCheckConfig),
    /// A Postgres connection and `SELECT 1` ([`PostgresCheckConfig`], feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(PostgresCheckConfig),
    /// A Redis `PING` ([`RedisCheckConfig`]).
    Redis(RedisCheckConfig),
    /// A program run with arguments ([`CommandCheckConfig`]).
    Command(CommandCheckConfig),
}

impl CheckConfig {
    /// The check's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Http(c) => &c.name,
            Self::Tcp(c) => &c.name,
            Self::Dns(c) => &c.name,
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => &c.name,
            Self::Redis(c) => &c.name,
            Self::Command(c) => &c.name,
        }
    }

    /// Builds the runnable check.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming each bad setting (`field` paths start at the check).
    pub fn build(&self) -> Result<Arc<dyn HealthCheck>> {
        Ok(match self {
            Self::Http(c) => Arc::new(HttpCheck::new(c.clone())?),
            Self::Tcp(c) => Arc::new(TcpCheck::new(c.clone())?),
            Self::Dns(c) => Arc::new(DnsCheck::new(c.clone())?),
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => Arc::new(PostgresCheck::new(c.clone())?),
            Self::Redis(c) => Arc::new(RedisCheck::new(c.clone())?),
            Self::Command(c) => Arc::new(CommandCheck::new(c.clone())?),
        })
    }

    /// Reads one check from a JSON value (a Python dict or a JS object passed through).
    ///
    /// # Errors
    /// [`crate::Error::Validation`] whose field is the path of the offending key.
    pub fn from_value(value: Value) -> Result<Self> {
        crate::error::deserialize_at(value, "input", "check")
    }
}

/// Runs one check once, from its configuration: the one-off runner.
///
/// # Errors
/// [`crate::Error::Validation`] when the configuration is invalid; faults of the target are
/// outcomes, not errors.
pub async fn run_check(config: &CheckConfig) -> Result<CheckOutcome> {
    let check = config.build()?;
    Ok(check.check().await)
}

/// Milliseconds as a float, for evidence.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An error and its sources, joined with `": "`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// At most `max` characters of `bytes` as text (invalid UTF-8 replaced), `…` when cut.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Whether a name-resolution error says that the monitor's resolver did not answer
/// (`EAI_AGAIN`: glibc's "Temporary failure in name resolution", musl's "Try again") rather
/// than that the name does not exist (`NXDOMAIN`, "Name or service not known"). The first is a
/// fault of the monitor's environment, an `error`; the second a fault of the target, a `fail`.
pub(crate) fn resolver_unavailable(detail: &str) -> bool {
    detail.contains("Temporary failure in name resolution") || detail.contains("Try again")
}

/// Deserializes a present value, `null` included, as `Some`.
pub(crate) fn some_value<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The outcome of a check that timed out, with evidence.
pub(crate) fn timed_out(
    what: &str,
    timeout: Duration,
    elapsed: Duration,
    extra: Value,
) -> CheckOutcome {
    let mut evidence = serde_json::json!({
        "error": "timeout", "expected": format!("an answer within {} ms", timeout.as_millis()),
        "got": "no answer", "elapsed_ms": ms(elapsed),
    });
    if let (Some(m), Value::Object(x)) = (evidence.as_object_mut(), extra) {
        m.extend(x);
    }
    CheckOutcome::fail(format!(
        "{what}: timed out after {} ms",
        timeout.as_millis()
    ))
    .with_latency(elapsed)
    .with_evidence(evidence)
}

#[cfg(test)]
mod tests {
    use super::resolver_unavailable;

    #[test]
    fn a_resolver_outage_is_told_from_a_name_that_does_not_exist() {
        // glibc and musl wordings of EAI_AGAIN, as reqwest and tokio pass them on.
        assert!(resolver_unavailable(
            "dns error: failed to lookup address information: Temporary failure in name resolution"
        ));
        assert!(resolver_unavailable(
            "failed to lookup address information: Try again"
        ));
        // NXDOMAIN and "no address" are the target's.
        assert!(!resolver_unavailable(
            "dns error: failed to lookup address information: Name or service not known"
        ));
        assert!(!resolver_unavailable(
            "failed to lookup address information: No address associated with hostname"
        ));
        assert!(!resolver_unavailable(
            "failed to lookup address information: Name does not resolve"
        ));
    }
}
