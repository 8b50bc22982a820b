//! The Postgres check (feature `postgres`, on by default): connect and run `SELECT 1` over the
//! real protocol with tokio-postgres.
//!
//! ```json
//! {"name": "db", "type": "postgres", "url": "postgres://app@db.internal:5432/app",
//!  "password": "...", "tls": "require", "timeout": "5s"}
//! ```
//! `tls`: `disable` (the default: a plain connection; SCRAM authentication never sends the
//! password itself), `prefer` (TLS when the server offers it) or `require`. TLS uses rustls
//! with the platform's certificate verifier. The password is a [`Secret`]: never in `Debug`,
//! messages or evidence, and a password inside `url` is rejected.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;
use tokio_postgres::config::SslMode;

use super::{TIMEOUT_GRACE, error_chain, ms, timed_out};
use crate::check::{CheckCategory, CheckOutcome, HealthCheck};
use crate::duration;
use crate::error::{Problems, Result};
use crate::secret::Secret;

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Whether the Postgres connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostgresTls {
    /// A plain connection (default).
    #[default]
    Disable,
    /// TLS when the server offers it, plain otherwise.
    Prefer,
    /// TLS or fail.
    Require,
}

/// Configuration of a Postgres check (`"type": "postgres"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresCheckConfig {
    /// The check's name.
    pub name: String,
    /// `postgres://user@host[:port]/database`, without a password.
    pub url: String,
    /// The password. Never serialized.
    #[serde(default, skip_serializing)]
    pub password: Option<Secret>,
    /// TLS mode (default `disable`).
    #[serde(default)]
    pub tls: PostgresTls,
    /// Timeout of the whole check (default 5 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about (default `database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CheckCategory>,
}

impl PostgresCheckConfig {
    /// A `SELECT 1` on the database at `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            password: None,
            tls: PostgresTls::Disable,
            timeout: default_timeout(),
            category: None,
        }
    }
}

/// A runnable Postgres check.
#[derive(Debug)]
pub struct PostgresCheck {
    config: PostgresCheckConfig,
    pg: tokio_postgres::Config,
    target: String,
}

impl PostgresCheck {
    /// Validates the configuration.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming `name`, `url` or `timeout`.
    pub fn new(config: PostgresCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        let mut pg = None;
        match url::Url::parse(&config.url) {
            Ok(u) if u.password().is_some() => p.add(
                "url",
                "holds a password: give it in `password`, which is kept secret",
            ),
            Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => {
                match config.url.parse::<tokio_postgres::Config>() {
                    Ok(c) if c.get_hosts().is_empty() => p.add("url", "names no host"),
                    Ok(c) => pg = Some(c),
                    Err(e) => p.add("url", format!("is not a Postgres URL: {e}")),
                }
            }
            _ => p.add(
                "url",
                format!(
                    "{:?} is not a postgres://user@host/database URL",
                    config.url
                ),
            ),
        }
        crate::limits::check_timeout(&mut p, "timeout", config.timeout);
        p.finish(&format!("postgres check {:?}", config.name))?;
        let mut pg = pg.expect("checked above");
        let target = format!(
            "{}@{}/{}",
            pg.get_user().unwrap_or("?"),
            url::Url::parse(&config.url)
                .ok()
                .and_then(|u| u
                    .host_str()
                    .map(|h| format!("{h}:{}", u.port().unwrap_or(5432))))
                .unwrap_or_default(),
            pg.get_dbname()
                .unwrap_or_else(|| pg.get_user().unwrap_or("?")),
        );
        pg.connect_timeout(config.timeout);
        pg.ssl_mode(match config.tls {
            PostgresTls::Disable => SslMode::Disable,
            PostgresTls::Prefer => SslMode::Prefer,
            PostgresTls::Require => SslMode::Require,
        });
        if let Some(pw) = &config.password {
            pg.password(pw.expose());
        }
        Ok(Self { config, pg, target })
    }

    async fn run(&self, started: Instant) -> CheckOutcome {
        match self.config.tls {
            PostgresTls::Disable => {
                self.query(self.pg.connect(tokio_postgres::NoTls).await, started)
                    .await
            }
            PostgresTls::Prefer | PostgresTls::Require => {
                use rustls_platform_verifier::ConfigVerifierExt;
                let tls = match rustls::ClientConfig::with_platform_verifier() {
                    Ok(c) => tokio_postgres_rustls::MakeRustlsConnect::new(c),
                    Err(e) => {
                        return CheckOutcome::error(format!(
                            "postgres {}: cannot set up TLS ({e})",
                            self.target
                        ))
                        .with_latency(started.elapsed());
                    }
                };
                self.query(self.pg.connect(tls).await, started).await
            }
        }
    }

    async fn query<S, T>(
        &self,
        connected: std::result::Result<
            (tokio_postgres::Client, tokio_postgres::Connection<S, T>),
            tokio_postgres::Error,
        >,
        started: Instant,
    ) -> CheckOutcome
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (client, connection) = match connected {
            Ok(c) => c,
            Err(e) => return self.failure("connect", &e, started),
        };
        let connect_time = started.elapsed();
        let driver = tokio::spawn(connection);
        let result = client.simple_query("SELECT 1").await;
        drop(client);
        driver.abort();
        let latency = started.elapsed();
        match result {
            Ok(rows) => {
                let one = rows.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                    _ => None,
                });
                if one.as_deref() == Some("1") {
                    CheckOutcome::pass(format!("postgres {}: SELECT 1 in {} ms", self.target, latency.as_millis()))
                        .with_latency(latency)
                        .with_evidence(json!({"target": self.target, "timings_ms": {"connect": ms(connect_time), "total": ms(latency)}}))
                } else {
                    CheckOutcome::fail(format!("postgres {}: SELECT 1 returned {one:?}", self.target))
                        .with_latency(latency)
                        .with_evidence(json!({"target": self.target, "error": "query", "expected": "1", "got": one}))
                }
            }
            Err(e) => self.failure("query", &e, started),
        }
    }

    fn failure(&self, phase: &str, e: &tokio_postgres::Error, started: Instant) -> CheckOutcome {
        let code = e.code().map(|c| c.code().to_owned());
        let kind = match code.as_deref() {
            Some("28P01" | "28000") => "auth",
            Some("3D000") => "no_such_database",
            Some(_) => "server",
            None => {
                let text = error_chain(e);
                if text.contains("refused") {
                    "connection_refused"
                } else if text.contains("tls")
                    || text.contains("TLS")
                    || text.contains("certificate")
                {
                    "tls"
                } else if text.contains("timed out") || text.contains("timeout") {
                    "timeout"
                } else {
                    phase
                }
            }
        };
        let detail = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => error_chain(e),
        };
        CheckOutcome::fail(format!("postgres {}: {phase} failed ({detail})", self.target))
            .with_latency(started.elapsed())
            .with_evidence(json!({"target": self.target, "phase": phase, "error": kind, "sqlstate": code,
                                  "detail": detail, "expected": "SELECT 1 answered 1", "got": detail}))
    }
}

#[async_trait::async_trait]
impl HealthCheck for PostgresCheck {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn category(&self) -> CheckCategory {
        self.config.category.unwrap_or(CheckCategory::Database)
    }
    fn timeout(&self) -> Option<Duration> {
        Some(self.config.timeout.saturating_add(TIMEOUT_GRACE))
    }
    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        match tokio::time::timeout(self.config.timeout, self.run(started)).await {
            Ok(o) => o,
            Err(_) => timed_out(
                &format!("postgres {}", self.target),
                self.config.timeout,
                started.elapsed(),
                json!({"target": self.target}),
            ),
        }
    }
}
