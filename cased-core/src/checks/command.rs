//! The command check: run a program with arguments, expect an exit code and output.
//!
//! ```json
//! {"name": "migrations", "type": "command", "program": "/usr/local/bin/migrate", "args": ["status"],
//!  "timeout": "30s", "expect": {"exit_code": 0, "stdout_contains": "up to date"}}
//! ```
//! The program is executed directly, never through a shell, unless `shell: true`: then
//! `program` is a script for `/bin/sh -c` and `args` must be empty. Standard input is empty;
//! up to [`MAX_OUTPUT_BYTES`] of each of stdout and stderr are kept (the rest is read and
//! dropped so the program never blocks on a full pipe). The program runs in a process group of
//! its own: on timeout, or when the check is dropped, the whole group is killed (SIGKILL, the
//! programs it started included) and a timeout fails the check. The check is judged by the
//! program's own exit status as soon as it exits: what it left running in the background
//! (`sleep 30 &`) is killed then, never waited for. A program that cannot
//! be started (missing, not executable) is an `error`: the check could not run.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::{TIMEOUT_GRACE, excerpt, ms};
use crate::check::{CheckCategory, CheckOutcome, HealthCheck};
use crate::duration;
use crate::error::{Problems, Result};

/// Bytes kept of each of stdout and stderr.
pub const MAX_OUTPUT_BYTES: usize = 64 << 10;

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// What the program must do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandExpect {
    /// The exit code (default 0).
    pub exit_code: i32,
    /// Text stdout must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_contains: Option<String>,
    /// A regular expression stdout must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_regex: Option<String>,
    /// Text stderr must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_contains: Option<String>,
    /// A regular expression stderr must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_regex: Option<String>,
}

/// Configuration of a command check (`"type": "command"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandCheckConfig {
    /// The check's name.
    pub name: String,
    /// The program (looked up in `PATH` unless it contains a `/`), or with `shell` the script.
    pub program: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Run `program` as a `/bin/sh -c` script (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell: bool,
    /// Working directory (default: the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Timeout; the program is killed when it runs longer (default 30 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about (default `availability`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CheckCategory>,
    /// What the program must do.
    #[serde(default)]
    pub expect: CommandExpect,
}

impl CommandCheckConfig {
    /// Run `program` with `args`, expecting exit code 0.
    pub fn new<I, S>(name: impl Into<String>, program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            shell: false,
            cwd: None,
            timeout: default_timeout(),
            category: None,
            expect: CommandExpect::default(),
        }
    }
}

/// A runnable command check.
#[derive(Debug)]
pub struct CommandCheck {
    config: CommandCheckConfig,
    stdout_regex: Option<regex::Regex>,
    stderr_regex: Option<regex::Regex>,
}

/// The process group of a running command (its leader's pid), killed once: explicitly, or
/// when the check is dropped before the program ended.
struct Group(Option<u32>);

impl Group {
    /// Kills every process of the group (SIGKILL); later calls do nothing. Through `kill(1)`:
    /// the crate has no unsafe code, and std has no `killpg`. A group already gone is fine.
    fn kill(&mut self) {
        let Some(pgid) = self.0.take() else { return };
        if cfg!(unix) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_OUTPUT_BYTES - kept.len();
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

impl CommandCheck {
    /// Validates the configuration.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming `name`, `program`, `args`, `timeout`,
    /// `expect.stdout_regex` or `expect.stderr_regex`.
    pub fn new(config: CommandCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        if config.program.trim().is_empty() {
            p.add("program", "must not be empty");
        }
        if config.shell && !config.args.is_empty() {
            p.add(
                "args",
                "must be empty with `shell: true` (write the arguments into the script)",
            );
        }
        crate::limits::check_timeout(&mut p, "timeout", config.timeout);
        let mut compile = |field: &str, r: &Option<String>| {
            r.as_ref().and_then(|r| match regex::Regex::new(r) {
                Ok(r) => Some(r),
                Err(e) => {
                    p.add(field, format!("is not a valid regular expression: {e}"));
                    None
                }
            })
        };
        let stdout_regex = compile("expect.stdout_regex", &config.expect.stdout_regex);
        let stderr_regex = compile("expect.stderr_regex", &config.expect.stderr_regex);
        p.finish(&format!("command check {:?}", config.name))?;
        Ok(Self {
            config,
            stdout_regex,
            stderr_regex,
        })
    }

    fn shown(&self) -> String {
        if self.config.shell {
            format!("sh -c {:?}", self.config.program)
        } else {
            std::iter::once(self.config.program.as_str())
                .chain(self.config.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for CommandCheck {
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
        let c = &self.config;
        let started = Instant::now();
        let mut cmd = if c.shell {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(&c.program);
            cmd
        } else {
            let mut cmd = Command::new(&c.program);
            cmd.args(&c.args);
            cmd
        };
        if let Some(dir) = &c.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let kind = match e.kind() {
                    std::io::ErrorKind::NotFound => "not_found",
                    std::io::ErrorKind::PermissionDenied => "permission_denied",
                    _ => "spawn",
                };
                return CheckOutcome::error(format!("cannot start {}: {e}", c.program))
                    .with_latency(started.elapsed())
                    .with_evidence(json!({"command": self.shown(), "error": kind, "detail": e.to_string(),
                                          "expected": "a program that can be started", "got": e.to_string()}));
            }
        };
        let pid = child.id();
        let mut group = Group(pid);
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        // The pipes are read on their own tasks: they end when every writer is gone, which the
        // group kill after the program's exit ensures.
        let out_task = tokio::spawn(read_capped(stdout));
        let err_task = tokio::spawn(read_capped(stderr));
        let ran = tokio::time::timeout(c.timeout, async {
            let status = child.wait().await;
            group.kill();
            let (out, err) = tokio::join!(out_task, err_task);
            (out.unwrap_or_default(), err.unwrap_or_default(), status)
        })
        .await;
        let (out, err, status) = match ran {
            Err(_) => {
                group.kill();
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                let latency = started.elapsed();
                return CheckOutcome::fail(format!("{}: still running after {} ms, killed", self.shown(), c.timeout.as_millis()))
                    .with_latency(latency)
                    .with_evidence(json!({"command": self.shown(), "pid": pid, "error": "timeout", "killed": true,
                                          "expected": format!("to exit within {} ms", c.timeout.as_millis()),
                                          "got": "still running", "elapsed_ms": ms(latency)}));
            }
            Ok((out, err, Ok(status))) => (out, err, status),
            Ok((_, _, Err(e))) => {
                return CheckOutcome::error(format!(
                    "{}: cannot wait for the program: {e}",
                    self.shown()
                ))
                .with_latency(started.elapsed());
            }
        };
        let latency = started.elapsed();
        let code = status.code();
        let e = &c.expect;
        let out_s = String::from_utf8_lossy(&out);
        let err_s = String::from_utf8_lossy(&err);
        let mut misses: Vec<(String, serde_json::Value)> = Vec::new();
        if code != Some(e.exit_code) {
            let got = code.map_or_else(
                || format!("killed by a signal ({status})"),
                |c| format!("exit code {c}"),
            );
            misses.push((
                format!("{got}, expected {}", e.exit_code),
                json!({"check": "exit_code", "expected": e.exit_code, "got": code}),
            ));
        }
        for (stream, text, contains, regex) in [
            ("stdout", &out_s, &e.stdout_contains, &self.stdout_regex),
            ("stderr", &err_s, &e.stderr_contains, &self.stderr_regex),
        ] {
            if let Some(want) = contains
                && !text.contains(want.as_str())
            {
                misses.push((format!("{stream} does not contain {want:?}"), json!({"check": format!("{stream}_contains"), "expected": want, "got": excerpt(text.as_bytes(), 256)})));
            }
            if let Some(re) = regex
                && !re.is_match(text)
            {
                misses.push((format!("{stream} does not match /{}/", re.as_str()), json!({"check": format!("{stream}_regex"), "expected": re.as_str(), "got": excerpt(text.as_bytes(), 256)})));
            }
        }
        let mut evidence = json!({"command": self.shown(), "exit_code": code, "stdout": excerpt(&out, 512),
                                  "stderr": excerpt(&err, 512), "timings_ms": {"total": ms(latency)}});
        let outcome = if let Some((first, _)) = misses.first() {
            let more = if misses.len() > 1 {
                format!(" (and {} more)", misses.len() - 1)
            } else {
                String::new()
            };
            let o = CheckOutcome::fail(format!("{}: {first}{more}", self.shown()));
            evidence["failures"] = misses.into_iter().map(|(_, v)| v).collect();
            o
        } else {
            CheckOutcome::pass(format!(
                "{}: exit code {} in {} ms",
                self.shown(),
                e.exit_code,
                latency.as_millis()
            ))
        };
        outcome.with_latency(latency).with_evidence(evidence)
    }
}
