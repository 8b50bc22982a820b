//! The DNS check: resolve a host name; optionally require addresses in the answer.
//!
//! ```json
//! {"name": "db-dns", "type": "dns", "host": "db.internal", "addresses": ["10.0.0.5"], "timeout": "2s"}
//! ```
//! Without `addresses` the check passes when the name has at least one address ("record
//! present"); with them, every listed address must be in the answer (others may be too).
//!
//! Resolution goes through the system resolver (`getaddrinfo` via
//! [`tokio::net::lookup_host`]): `/etc/hosts`, `nsswitch.conf` and the configured name
//! servers, i.e. what the monitored service's own processes see, with no extra dependency.
//! It answers A/AAAA only and cannot pick a name server; a query of other record types (MX,
//! TXT, CNAME) or of a given server would need a DNS client such as hickory-resolver.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use super::{TIMEOUT_GRACE, ms, resolver_unavailable, timed_out};
use crate::check::{CheckCategory, CheckOutcome, HealthCheck};
use crate::duration;
use crate::error::{Problems, Result};

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Configuration of a DNS check (`"type": "dns"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsCheckConfig {
    /// The check's name.
    pub name: String,
    /// The host name to resolve.
    pub host: String,
    /// Addresses that must all be in the answer (empty: any answer passes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// Timeout (default 5 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about (default `dependency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CheckCategory>,
}

impl DnsCheckConfig {
    /// Resolve `host`; any address passes.
    pub fn new(name: impl Into<String>, host: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            host: host.into(),
            addresses: Vec::new(),
            timeout: default_timeout(),
            category: None,
        }
    }
}

/// A runnable DNS check.
#[derive(Debug)]
pub struct DnsCheck {
    config: DnsCheckConfig,
}

impl DnsCheck {
    /// Validates the configuration.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming `name`, `host` or `timeout`.
    pub fn new(config: DnsCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        let h = config.host.trim();
        if h.is_empty()
            || h.len() > 253
            || h.contains(char::is_whitespace)
            || h.contains(':') && h.parse::<IpAddr>().is_err()
        {
            p.add("host", format!("{:?} is not a host name", config.host));
        }
        crate::limits::check_timeout(&mut p, "timeout", config.timeout);
        p.finish(&format!("dns check {:?}", config.name))?;
        Ok(Self { config })
    }
}

#[async_trait::async_trait]
impl HealthCheck for DnsCheck {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn category(&self) -> CheckCategory {
        self.config.category.unwrap_or(CheckCategory::Dependency)
    }
    fn timeout(&self) -> Option<Duration> {
        Some(self.config.timeout.saturating_add(TIMEOUT_GRACE))
    }
    async fn check(&self) -> CheckOutcome {
        let c = &self.config;
        let started = Instant::now();
        let host = c.host.trim();
        let looked = tokio::time::timeout(c.timeout, tokio::net::lookup_host((host, 0))).await;
        let latency = started.elapsed();
        let expected: Vec<String> = c.addresses.iter().map(ToString::to_string).collect();
        let got: BTreeSet<IpAddr> = match looked {
            Err(_) => {
                return timed_out(
                    &format!("dns {host}"),
                    c.timeout,
                    latency,
                    json!({"host": host}),
                );
            }
            Ok(Err(e)) if resolver_unavailable(&e.to_string()) => {
                // The monitor's resolver did not answer: nothing was learned about the name.
                return CheckOutcome::error(format!(
                    "dns {host}: the monitor's resolver did not answer ({e})"
                ))
                .with_latency(latency)
                .with_evidence(
                    json!({"host": host, "error": "resolver_unavailable", "detail": e.to_string()}),
                );
            }
            Ok(Err(e)) => {
                return CheckOutcome::fail(format!("dns {host}: does not resolve ({e})"))
                    .with_latency(latency)
                    .with_evidence(json!({"host": host, "error": "dns", "detail": e.to_string(),
                                          "expected": if expected.is_empty() { json!("at least one address") } else { json!(expected) },
                                          "got": []}));
            }
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        };
        let got_s: Vec<String> = got.iter().map(ToString::to_string).collect();
        let missing: Vec<String> = c
            .addresses
            .iter()
            .filter(|a| !got.contains(a))
            .map(ToString::to_string)
            .collect();
        let evidence = json!({"host": host, "expected": if expected.is_empty() { json!("at least one address") } else { json!(expected) },
                              "got": got_s, "timings_ms": {"total": ms(latency)}});
        let outcome = if got.is_empty() {
            CheckOutcome::fail(format!("dns {host}: no address"))
        } else if !missing.is_empty() {
            CheckOutcome::fail(format!(
                "dns {host}: {} missing from the answer {}",
                missing.join(", "),
                got_s.join(", ")
            ))
        } else {
            CheckOutcome::pass(format!(
                "dns {host}: {} in {} ms",
                got_s.join(", "),
                latency.as_millis()
            ))
        };
        outcome.with_latency(latency).with_evidence(evidence)
    }
}
