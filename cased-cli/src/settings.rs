//! What `cased.toml` says besides the monitor configuration, read by `cased monitor`:
//!
//! ```toml
//! [api]                      # post the deployment event before monitoring
//! notify = true
//! base_url = "https://app.cased.com"   # or CASED_BASE_URL
//! api_key_env = "CASED_API_KEY"        # the variable holding the key (never the key itself)
//!
//! [rollback]                 # run on an unhealthy verdict, once
//! command = "./scripts/rollback.sh"
//! timeout = "5m"
//! ```
//!
//! The rollback command runs under `sh -c` with `CASED_SESSION_ID`, `CASED_REASON`,
//! `CASED_REPOSITORY`, `CASED_ENVIRONMENT`, `CASED_COMMIT_SHA` and `CASED_CORRELATION_ID` in its
//! environment; a non-zero exit, or running past its timeout, is recorded in the report.

use std::time::Duration;

use cased_core::{Client, DeploymentEvent, RollbackContext, RollbackHook, Secret};
use serde::Deserialize;
use serde_json::Value;

use crate::Failure;

/// The `[api]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSettings {
    /// Post the event before monitoring.
    #[serde(default)]
    pub(crate) notify: bool,
    /// The API's base URL (default: `CASED_BASE_URL`, else the hosted service).
    pub(crate) base_url: Option<String>,
    /// The environment variable holding the API key.
    #[serde(default = "default_key_env")]
    pub(crate) api_key_env: String,
}

fn default_key_env() -> String {
    cased_core::API_KEY_ENV.to_owned()
}

/// The `[rollback]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackSettings {
    /// The shell command to run.
    pub(crate) command: String,
    /// How long it may run (default 5 minutes).
    #[serde(default = "default_timeout", deserialize_with = "human_duration")]
    pub(crate) timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(300)
}

fn human_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
}

/// `[api]` and `[rollback]`, when present.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) api: Option<ApiSettings>,
    pub(crate) rollback: Option<RollbackSettings>,
}

/// Takes `api` and `rollback` out of a configuration file's value, leaving the monitor
/// configuration.
///
/// # Errors
/// A usage failure naming the table and key that are wrong.
pub(crate) fn split(value: &mut Value) -> Result<Settings, Failure> {
    let Some(map) = value.as_object_mut() else {
        return Ok(Settings::default());
    };
    let mut settings = Settings::default();
    if let Some(api) = map.remove("api") {
        settings.api = Some(table("api", api)?);
    }
    if let Some(rollback) = map.remove("rollback") {
        let r: RollbackSettings = table("rollback", rollback)?;
        if r.command.trim().is_empty() {
            return Err(Failure::Usage(
                "[rollback]: command must not be empty".into(),
            ));
        }
        settings.rollback = Some(r);
    }
    Ok(settings)
}

/// Reads the table `[name]`; an error names the key inside it (`rollback.command: …`).
fn table<T: serde::de::DeserializeOwned>(name: &str, value: Value) -> Result<T, Failure> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            format!("[{name}]")
        } else {
            format!("{name}.{path}")
        };
        Failure::Usage(format!("{field}: {}", e.inner()))
    })
}

/// Posts `event` as `[api]` says; the answer (or the failure) is printed, and monitoring goes on
/// either way.
pub(crate) async fn notify(api: &ApiSettings, event: &DeploymentEvent) {
    let mut builder = Client::builder();
    if let Some(url) = api.base_url.clone().or_else(|| {
        std::env::var("CASED_BASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
    }) {
        builder = builder.base_url(url);
    }
    if let Ok(key) = std::env::var(&api.api_key_env) {
        builder = builder.api_key(Secret::new(key));
    }
    let outcome = match builder.build() {
        Ok(client) => client.create_deployment(event).await.map(|a| a.status),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(status) => println!("deployment event posted (HTTP {status})"),
        Err(e) => eprintln!("warning: the deployment event was not posted: {e}"),
    }
}

/// The rollback hook running `[rollback].command`.
pub(crate) fn rollback_hook(r: &RollbackSettings) -> RollbackHook {
    let command = r.command.clone();
    RollbackHook::new(move |ctx: RollbackContext| {
        let command = command.clone();
        async move {
            println!("rolling back: {command}");
            let e = &ctx.event;
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .env("CASED_SESSION_ID", &ctx.session_id)
                .env("CASED_REASON", &ctx.reason)
                .env("CASED_REPOSITORY", e.repository_full_name().unwrap_or(""))
                .env("CASED_ENVIRONMENT", e.environment().unwrap_or(""))
                .env("CASED_COMMIT_SHA", e.commit_sha().unwrap_or(""))
                .env("CASED_CORRELATION_ID", e.correlation_id().unwrap_or(""))
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| format!("cannot run the rollback command: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("the rollback command exited with {status}"))
            }
        }
    })
    .timeout(r.timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_and_rollback_are_taken_out_and_checked() {
        let mut v = json!({"schedule": {}, "api": {"notify": true}, "rollback": {"command": "true", "timeout": "30s"}});
        let s = split(&mut v).unwrap();
        assert_eq!(v, json!({"schedule": {}}));
        assert!(s.api.unwrap().notify);
        assert_eq!(s.rollback.unwrap().timeout, Duration::from_secs(30));
        let Err(Failure::Usage(m)) = split(&mut json!({"api": {"notfy": true}})) else {
            panic!()
        };
        assert!(m.starts_with("api.notfy: unknown field"), "{m}");
        // A wrong type names the key inside the table.
        let Err(Failure::Usage(m)) = split(&mut json!({"rollback": {"command": ["true"]}})) else {
            panic!()
        };
        assert!(m.starts_with("rollback.command: invalid type"), "{m}");
        let Err(Failure::Usage(m)) = split(&mut json!({"rollback": {"command": " "}})) else {
            panic!()
        };
        assert!(m.contains("must not be empty"), "{m}");
    }
}

#[cfg(test)]
mod documented {
    /// The `cased.toml` of docs/ci.md is a valid configuration, `[api]` and `[rollback]` included.
    #[test]
    fn the_documented_cased_toml_is_valid() {
        let doc = include_str!("../../docs/ci.md");
        let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let text = &doc[start..start + doc[start..].find("```").expect("its end")];
        let dir = std::env::temp_dir().join(format!("cased-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cased.toml");
        std::fs::write(&path, text).unwrap();
        let (config, settings) =
            crate::monitor::load_config_and_settings(&path).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.sources.len(), 1);
        assert!(settings.api.is_some_and(|a| a.notify));
        assert_eq!(
            settings.rollback.map(|r| r.command),
            Some("./scripts/rollback.sh".to_owned())
        );
        cased_core::Monitor::new(config).expect("the monitor builds");
        std::fs::remove_dir_all(dir).ok();
    }
}
