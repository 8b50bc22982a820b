//! The TCP check: connect, optionally send bytes and wait for expected bytes.
//!
//! ```json
//! {"name": "smtp", "type": "tcp", "host": "mail.internal", "port": 25, "timeout": "3s",
//!  "expect": "220 "}
//! ```
//! `send` is written once connected; `expect` must then appear in what the server sends
//! (read until it appears, the server closes, [`MAX_READ_BYTES`] are read or `timeout`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{TIMEOUT_GRACE, excerpt, ms, timed_out};
use crate::check::{CheckCategory, CheckOutcome, HealthCheck};
use crate::duration;
use crate::error::{Problems, Result};

/// The most bytes read while waiting for `expect`.
pub const MAX_READ_BYTES: usize = 64 << 10;

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Configuration of a TCP check (`"type": "tcp"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheckConfig {
    /// The check's name.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Text written after connecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// Text that must appear in what the server sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// Timeout of the whole check (default 5 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about (default `availability`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CheckCategory>,
}

impl TcpCheckConfig {
    /// A plain connect to `host:port`.
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        Self {
            name: name.into(),
            host: host.into(),
            port,
            send: None,
            expect: None,
            timeout: default_timeout(),
            category: None,
        }
    }
}

/// A runnable TCP check.
#[derive(Debug)]
pub struct TcpCheck {
    config: TcpCheckConfig,
    address: String,
}

impl TcpCheck {
    /// Validates the configuration.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming `name`, `host`, `port`, `expect` or `timeout`.
    pub fn new(config: TcpCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        if config.host.trim().is_empty() {
            p.add("host", "must not be empty");
        }
        if config.port == 0 {
            p.add("port", "must be 1..65535");
        }
        if config.expect.as_deref() == Some("") {
            p.add("expect", "must not be empty (leave it out to only connect)");
        }
        crate::limits::check_timeout(&mut p, "timeout", config.timeout);
        p.finish(&format!("tcp check {:?}", config.name))?;
        let address = if config.host.contains(':') && !config.host.starts_with('[') {
            format!("[{}]:{}", config.host, config.port)
        } else {
            format!("{}:{}", config.host, config.port)
        };
        Ok(Self { config, address })
    }

    async fn run(&self, started: Instant) -> CheckOutcome {
        let c = &self.config;
        let mut stream = match TcpStream::connect((c.host.as_str(), c.port)).await {
            Ok(s) => s,
            Err(e) => {
                let kind = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection_refused",
                    _ if e.to_string().contains("failed to lookup") => "dns",
                    _ => "connect",
                };
                return CheckOutcome::fail(format!("tcp {}: cannot connect ({e})", self.address))
                    .with_latency(started.elapsed())
                    .with_evidence(
                        json!({"address": self.address, "error": kind, "detail": e.to_string(),
                                          "expected": "a TCP connection", "got": e.to_string()}),
                    );
            }
        };
        let connected = started.elapsed();
        let _ = stream.set_nodelay(true);
        if let Some(send) = &c.send
            && let Err(e) = stream.write_all(send.as_bytes()).await
        {
            return CheckOutcome::fail(format!("tcp {}: cannot send ({e})", self.address))
                .with_latency(started.elapsed())
                .with_evidence(json!({"address": self.address, "error": "send", "detail": e.to_string(),
                                      "expected": format!("to send {} bytes", send.len()), "got": e.to_string()}));
        }
        let Some(expect) = &c.expect else {
            let latency = started.elapsed();
            return CheckOutcome::pass(format!("tcp {} connected in {} ms", self.address, latency.as_millis()))
                .with_latency(latency)
                .with_evidence(json!({"address": self.address, "timings_ms": {"connect": ms(connected), "total": ms(latency)}}));
        };
        let mut got = Vec::with_capacity(1024);
        let mut buf = [0u8; 4096];
        let found = loop {
            if memchr_find(&got, expect.as_bytes()) {
                break true;
            }
            if got.len() >= MAX_READ_BYTES {
                break false;
            }
            match stream.read(&mut buf).await {
                Ok(0) => break false,
                Ok(n) => got.extend_from_slice(&buf[..n.min(MAX_READ_BYTES - got.len())]),
                Err(e) => {
                    return CheckOutcome::fail(format!(
                        "tcp {}: connection broken while reading ({e})",
                        self.address
                    ))
                    .with_latency(started.elapsed())
                    .with_evidence(
                        json!({"address": self.address, "error": "read", "detail": e.to_string(),
                                              "expected": expect, "got": excerpt(&got, 512)}),
                    );
                }
            }
        };
        let latency = started.elapsed();
        let evidence = json!({"address": self.address, "expected": expect, "got": excerpt(&got, 512),
                              "timings_ms": {"connect": ms(connected), "total": ms(latency)}});
        if found {
            CheckOutcome::pass(format!(
                "tcp {} answered {expect:?} in {} ms",
                self.address,
                latency.as_millis()
            ))
        } else {
            CheckOutcome::fail(format!(
                "tcp {}: the answer does not contain {expect:?} (got {:?})",
                self.address,
                excerpt(&got, 80)
            ))
        }
        .with_latency(latency)
        .with_evidence(evidence)
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[async_trait::async_trait]
impl HealthCheck for TcpCheck {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn category(&self) -> CheckCategory {
        self.config.category.unwrap_or(CheckCategory::Availability)
    }
    fn timeout(&self) -> Option<Duration> {
        Some(self.config.timeout.saturating_add(TIMEOUT_GRACE))
    }
    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        match tokio::time::timeout(self.config.timeout, self.run(started)).await {
            Ok(o) => o,
            Err(_) => timed_out(
                &format!("tcp {}", self.address),
                self.config.timeout,
                started.elapsed(),
                json!({"address": self.address}),
            ),
        }
    }
}
