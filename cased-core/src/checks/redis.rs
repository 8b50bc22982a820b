//! The Redis check: `PING` over RESP on a TCP connection, after `AUTH` when a password is set.
//!
//! ```json
//! {"name": "cache", "type": "redis", "url": "redis://cache.internal:6379", "password": "...", "timeout": "2s"}
//! ```
//! The protocol exchange is two commands and a line of answer each, so it is written here on a
//! tokio `TcpStream` rather than pulling in a Redis client. `rediss://` (TLS) is not supported.
//! The password is a [`Secret`]: never in `Debug`, messages or evidence, and a password inside
//! `url` is rejected.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{TIMEOUT_GRACE, ms, timed_out};
use crate::check::{CheckCategory, CheckOutcome, HealthCheck};
use crate::duration;
use crate::error::{Problems, Result};
use crate::secret::Secret;

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Configuration of a Redis check (`"type": "redis"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCheckConfig {
    /// The check's name.
    pub name: String,
    /// `redis://[user@]host[:port]` (port 6379 by default), without a password.
    pub url: String,
    /// The password sent with `AUTH`. Never serialized.
    #[serde(default, skip_serializing)]
    pub password: Option<Secret>,
    /// Timeout of the whole check (default 5 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about (default `dependency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CheckCategory>,
}

impl RedisCheckConfig {
    /// A `PING` of the server at `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            password: None,
            timeout: default_timeout(),
            category: None,
        }
    }
}

/// A runnable Redis check.
#[derive(Debug)]
pub struct RedisCheck {
    config: RedisCheckConfig,
    host: String,
    port: u16,
    user: Option<String>,
    address: String,
}

/// A RESP bulk-string array.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl RedisCheck {
    /// Validates the configuration.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming `name`, `url` or `timeout`.
    pub fn new(config: RedisCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        let mut parts = None;
        match url::Url::parse(&config.url) {
            Ok(u) if u.password().is_some() => p.add(
                "url",
                "holds a password: give it in `password`, which is kept secret",
            ),
            Ok(u) if u.scheme() == "redis" && u.host_str().is_some_and(|h| !h.is_empty()) => {
                let host = u
                    .host_str()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .to_owned();
                let user = (!u.username().is_empty()).then(|| u.username().to_owned());
                parts = Some((host, u.port().unwrap_or(6379), user));
            }
            Ok(u) if u.scheme() == "rediss" => p.add("url", "rediss:// (TLS) is not supported"),
            _ => p.add(
                "url",
                format!("{:?} is not a redis://host[:port] URL", config.url),
            ),
        }
        crate::limits::check_timeout(&mut p, "timeout", config.timeout);
        p.finish(&format!("redis check {:?}", config.name))?;
        let (host, port, user) = parts.expect("checked above");
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            config,
            host,
            port,
            user,
            address,
        })
    }

    async fn run(&self, started: Instant) -> CheckOutcome {
        let fail = |kind: &str, message: String, got: String| {
            CheckOutcome::fail(format!("redis {}: {message}", self.address)).with_latency(started.elapsed()).with_evidence(
                json!({"address": self.address, "error": kind, "expected": "+PONG", "got": got}),
            )
        };
        let stream = match TcpStream::connect((self.host.as_str(), self.port)).await {
            Ok(s) => s,
            Err(e) => {
                let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    "connection_refused"
                } else {
                    "connect"
                };
                return fail(kind, format!("cannot connect ({e})"), e.to_string());
            }
        };
        let _ = stream.set_nodelay(true);
        let mut stream = BufReader::new(stream);
        let mut out = Vec::new();
        let authenticating = self.config.password.is_some();
        if let Some(pw) = &self.config.password {
            match &self.user {
                Some(u) => out.extend(command(&["AUTH", u, pw.expose()])),
                None => out.extend(command(&["AUTH", pw.expose()])),
            }
        }
        out.extend(command(&["PING"]));
        if let Err(e) = stream.get_mut().write_all(&out).await {
            return fail("send", format!("cannot send ({e})"), e.to_string());
        }
        let mut line = String::new();
        for step in if authenticating {
            &["AUTH", "PING"][..]
        } else {
            &["PING"][..]
        } {
            line.clear();
            match (&mut stream).take(512).read_line(&mut line).await {
                Ok(0) => {
                    return fail(
                        "connection_closed",
                        format!("closed the connection before answering {step}"),
                        String::new(),
                    );
                }
                Ok(_) => {}
                Err(e) => return fail("read", format!("connection broken ({e})"), e.to_string()),
            }
            let answer = line.trim_end().to_owned();
            if *step == "AUTH" && answer != "+OK" {
                return fail("auth", format!("AUTH refused: {answer}"), answer);
            }
        }
        let answer = line.trim_end().to_owned();
        let latency = started.elapsed();
        if answer == "+PONG" {
            CheckOutcome::pass(format!(
                "redis {}: PONG in {} ms",
                self.address,
                latency.as_millis()
            ))
            .with_latency(latency)
            .with_evidence(json!({"address": self.address, "timings_ms": {"total": ms(latency)}}))
        } else {
            let kind = if answer.starts_with("-NOAUTH") {
                "auth"
            } else {
                "unexpected_answer"
            };
            fail(kind, format!("PING answered {answer:?}"), answer)
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for RedisCheck {
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
        let started = Instant::now();
        match tokio::time::timeout(self.config.timeout, self.run(started)).await {
            Ok(o) => o,
            Err(_) => timed_out(
                &format!("redis {}", self.address),
                self.config.timeout,
                started.elapsed(),
                json!({"address": self.address}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays_and_passwords_stay_out_of_debug() {
        assert_eq!(command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        let mut c = RedisCheckConfig::new("cache", "redis://127.0.0.1:6390");
        c.password = Some(Secret::new("hunter2"));
        let check = RedisCheck::new(c).unwrap();
        assert!(!format!("{check:?}").contains("hunter2"));
        let e = RedisCheck::new(RedisCheckConfig::new("cache", "redis://:hunter2@127.0.0.1"))
            .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "url");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
