//! `[[services]]` of `cased.toml`: which deployments `cased serve` monitors, and how.
//!
//! ```toml
//! [[services]]
//! name = "shop"                 # optional; defaults to the repository pattern
//! repository = "acme/*"         # glob: `*` any characters (`/` too), `?` one character
//! environment = "production"    # optional; any environment when absent
//!
//! [services.schedule]           # the monitor configuration, as `cased monitor` reads it
//! intervals = ["10s", "30s", "1m", "5m"]
//!
//! [[services.checks]]
//! name = "web"
//! type = "http"
//! url = "https://shop.example.com/health"
//!
//! [services.rollback]           # optional, as in `cased monitor`
//! command = "./scripts/rollback.sh"
//! ```
//!
//! Every table of the monitor configuration (`schedule`, `checks`, `sources`, `detectors`,
//! `verdict`, `alerts`, ...) and `[rollback]` is read by the same code as `cased monitor`'s;
//! other top-level tables of the file are `cased monitor`'s and are ignored here.

use std::path::Path;
use std::sync::Arc;

use cased_core::metrics::SqliteBaselineStore;
use cased_core::{DeploymentEvent, Monitor, MonitorConfig, SqliteHistory};
use serde_json::Value;

use crate::Failure;
use crate::monitor::{config_error, parse_file, read};

/// One service: what it matches and the monitor its deployments run on.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) name: String,
    repository: String,
    environment: Option<String>,
    pub(crate) monitor: Monitor,
}

impl Service {
    /// Whether `event` is a deployment of this service.
    pub(crate) fn matches(&self, event: &DeploymentEvent) -> bool {
        let Some(repo) = event.repository_full_name() else {
            return false;
        };
        glob(&self.repository, repo)
            && self
                .environment
                .as_deref()
                .is_none_or(|e| event.environment() == Some(e))
    }
}

/// Why no service matches `event`, for the answer.
pub(crate) fn why_unmatched(services: &[Service], event: &DeploymentEvent) -> String {
    if services.is_empty() {
        return "no [[services]] are configured".to_owned();
    }
    let Some(repo) = event.repository_full_name() else {
        return "the event has no repository_full_name to match [[services]] by".to_owned();
    };
    let env = event.environment();
    if services.iter().any(|s| glob(&s.repository, repo)) {
        format!(
            "no service of repository {repo:?} is configured for environment {}",
            env.map_or_else(|| "(none)".to_owned(), |e| format!("{e:?}"))
        )
    } else {
        format!("no service matches repository {repo:?}")
    }
}

/// `*` matches any run of characters (`/` included), `?` one character; the rest literally.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Reads `[[services]]` from `path` and builds a monitor for each, recording into `history`.
pub(crate) fn load(
    path: &Path,
    history: &Arc<SqliteHistory>,
    baselines: &Arc<SqliteBaselineStore>,
) -> Result<Vec<Service>, Failure> {
    let text = read(path)?;
    let mut value = parse_file(path, &text)?;
    let invalid =
        |m: String| Failure::Usage(format!("invalid configuration in {}: {m}", path.display()));
    let entries = match value.as_object_mut().and_then(|m| m.remove("services")) {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(invalid(
                "services: must be an array of tables ([[services]])".into(),
            ));
        }
    };
    let mut services: Vec<Service> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("services[{i}]");
        let Value::Object(mut map) = entry else {
            return Err(invalid(format!("{at}: must be a table")));
        };
        let mut take = |key: &str, required: bool| -> Result<Option<String>, Failure> {
            match map.remove(key) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
                None if !required => Ok(None),
                None => Err(invalid(format!("{at}.{key}: is required"))),
                Some(_) => Err(invalid(format!("{at}.{key}: must be a non-empty string"))),
            }
        };
        let repository = take("repository", true)?.unwrap_or_default();
        let environment = take("environment", false)?;
        let name = take("name", false)?.unwrap_or_else(|| repository.clone());
        if services.iter().any(|s| s.name == name) {
            return Err(invalid(format!(
                "{at}.name: two services are named {name:?}"
            )));
        }
        let mut rest = Value::Object(map);
        let settings = crate::settings::split(&mut rest).map_err(|e| match e {
            Failure::Usage(m) => invalid(format!("{at}: {m}")),
            other => other,
        })?;
        let config = MonitorConfig::from_value(rest).map_err(|e| {
            let e = prefix_fields(e, &at);
            config_error(path, &text, e)
        })?;
        if config.checks.is_empty() && config.sources.is_empty() {
            return Err(invalid(format!(
                "{at}: nothing to monitor: declare at least one [[services.checks]] or \
                 [[services.sources]] entry"
            )));
        }
        let mut builder = Monitor::builder(config)
            .history(history.clone())
            .baseline_store(baselines.clone());
        if let Some(r) = &settings.rollback {
            builder = builder.on_rollback(crate::settings::rollback_hook(r));
        }
        let monitor = builder.build().map_err(|e| {
            let e = prefix_fields(e, &at);
            config_error(path, &text, e)
        })?;
        services.push(Service {
            name,
            repository,
            environment,
            monitor,
        });
    }
    Ok(services)
}

/// A validation error whose fields are under `services[i]`.
fn prefix_fields(e: cased_core::Error, at: &str) -> cased_core::Error {
    match e {
        cased_core::Error::Validation(mut v) => {
            for p in &mut v.errors {
                p.field = format!("{at}.{}", p.field);
            }
            cased_core::Error::Validation(v)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_owners_groups_and_single_characters() {
        assert!(glob("acme/*", "acme/shop"));
        assert!(glob("acme/*", "acme/sub/shop"));
        assert!(!glob("acme/*", "acme"));
        assert!(!glob("acme/*", "other/shop"));
        assert!(glob("*/shop", "acme/shop"));
        assert!(glob("acme/sh?p", "acme/shop"));
        assert!(!glob("acme/sh?p", "acme/shoop"));
        assert!(glob("acme/shop", "acme/shop"));
        assert!(!glob("acme/shop", "acme/shops"));
        assert!(glob("*", "anything/at/all"));
        assert!(glob("a*b*c", "a-xx-b-yy-c"));
        assert!(!glob("a*b*c", "a-xx-c-yy-b"));
    }
}

#[cfg(test)]
mod documented {
    use std::sync::Arc;

    use cased_core::SqliteHistory;
    use cased_core::metrics::SqliteBaselineStore;

    /// The `cased.toml` of docs/serve.md loads: two services, a rollback command, and the
    /// first one matching the payments repository.
    #[test]
    fn the_documented_services_are_valid() {
        let doc = include_str!("../../../docs/serve.md");
        let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let text = &doc[start..start + doc[start..].find("```").expect("its end")];
        let dir = std::env::temp_dir().join(format!("cased-serve-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cased.toml");
        std::fs::write(&path, text).unwrap();
        let history = Arc::new(SqliteHistory::in_memory().unwrap());
        let baselines = Arc::new(SqliteBaselineStore::in_memory().unwrap());
        let services = super::load(&path, &history, &baselines).unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["payments", "everything else"]);
        let event = cased_core::DeploymentEvent::builder("Deploy")
            .repository("acme/payments")
            .environment("production")
            .build()
            .unwrap();
        assert!(services[0].matches(&event));
        std::fs::remove_dir_all(dir).ok();
    }
}
