//! The deployment event: the wire contract of `POST /api/v1/deployments/`.
//!
//! A [`DeploymentEvent`] can only be obtained validated: from [`DeploymentEvent::builder`], from
//! JSON ([`DeploymentEvent::from_json`], or serde), or from a CI environment
//! ([`DeploymentEvent::from_ci_env`]). Validation reports every bad field at once.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Problems, Result};

/// Longest accepted `deployment_request`, in characters.
pub const MAX_DEPLOYMENT_REQUEST_CHARS: usize = 1000;
/// Longest accepted `commit_message`, in characters.
pub const MAX_COMMIT_MESSAGE_CHARS: usize = 65_536;
/// Longest accepted `repository_full_name`, `ref` or `external_url`, in characters.
pub const MAX_NAME_CHARS: usize = 2048;
/// Largest accepted `event_metadata`, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

const FIELDS: [&str; 8] = [
    "deployment_request",
    "repository_full_name",
    "status",
    "external_url",
    "commit_sha",
    "commit_message",
    "ref",
    "event_metadata",
];

/// The state of the deployment an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Queued, not started.
    Pending,
    /// In progress.
    Running,
    /// Finished successfully (the default when the field is absent).
    #[default]
    Success,
    /// Finished with a failure.
    Failure,
    /// Stopped before it finished.
    Cancelled,
}

impl DeploymentStatus {
    /// All statuses, in wire order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failure,
        Self::Cancelled,
    ];

    /// The wire name (`"pending"`, `"running"`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// [`Error::Validation`] naming `status` when `s` is not one of the five names.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!("{} is not one of {}", quote(s), status_names()),
                )
            })
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn status_names() -> String {
    DeploymentStatus::ALL
        .map(DeploymentStatus::as_str)
        .join(", ")
}

/// A validated deployment event. Serializes to exactly the JSON the API expects: absent optional
/// fields are omitted (never `null`), the git ref is the key `ref`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentEvent {
    deployment_request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository_full_name: Option<String>,
    status: DeploymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit_message: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_metadata: Option<Map<String, Value>>,
}

impl DeploymentEvent {
    /// Starts a builder for an event describing `deployment_request` (e.g. `"Deploy v1.4.2"`).
    pub fn builder(deployment_request: impl Into<String>) -> DeploymentEventBuilder {
        DeploymentEventBuilder {
            request: deployment_request.into(),
            ..Default::default()
        }
    }

    /// A builder holding this event's fields, to change some and build again.
    pub fn to_builder(&self) -> DeploymentEventBuilder {
        DeploymentEventBuilder {
            request: self.deployment_request.clone(),
            repository: self.repository_full_name.clone(),
            status: Some(self.status),
            external_url: self.external_url.clone(),
            commit_sha: self.commit_sha.clone(),
            commit_message: self.commit_message.clone(),
            git_ref: self.git_ref.clone(),
            metadata: self.event_metadata.clone(),
        }
    }

    /// What is being deployed, for a person (`deployment_request`).
    #[must_use]
    pub fn deployment_request(&self) -> &str {
        &self.deployment_request
    }
    /// `owner/name` (or `group/sub/project`) of the repository, if given.
    #[must_use]
    pub fn repository_full_name(&self) -> Option<&str> {
        self.repository_full_name.as_deref()
    }
    /// The reported deployment status (`success` when it was absent).
    #[must_use]
    pub fn status(&self) -> DeploymentStatus {
        self.status
    }
    /// Link to the pipeline or deployment page, if given.
    #[must_use]
    pub fn external_url(&self) -> Option<&str> {
        self.external_url.as_deref()
    }
    /// The deployed commit, if given.
    #[must_use]
    pub fn commit_sha(&self) -> Option<&str> {
        self.commit_sha.as_deref()
    }
    /// The deployed commit's message, if given.
    #[must_use]
    pub fn commit_message(&self) -> Option<&str> {
        self.commit_message.as_deref()
    }
    /// The git ref (`ref` on the wire), if given.
    #[must_use]
    pub fn git_ref(&self) -> Option<&str> {
        self.git_ref.as_deref()
    }
    /// The free-form metadata object, if given.
    #[must_use]
    pub fn event_metadata(&self) -> Option<&Map<String, Value>> {
        self.event_metadata.as_ref()
    }
    /// `event_metadata.environment`, the conventional environment name.
    #[must_use]
    pub fn environment(&self) -> Option<&str> {
        self.metadata_str("environment")
    }
    /// `event_metadata.correlation_id`, the conventional id tying logs and alerts together.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.metadata_str("correlation_id")
    }

    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.event_metadata.as_ref()?.get(key)?.as_str()
    }

    /// The event as the JSON object sent to the API.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a validated event always serializes")
    }

    /// The event as compact JSON text, exactly as sent to the API.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a validated event always serializes")
    }

    /// Parses and validates JSON text.
    ///
    /// # Errors
    /// [`Error::Validation`] listing every problem: malformed JSON, a body that is not an object,
    /// unknown fields (by name), wrong types and broken rules.
    pub fn from_json(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Err(Error::invalid("body", "is empty; expected a JSON object"));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Parses and validates JSON bytes, as received from a socket or a file.
    ///
    /// # Errors
    /// As [`DeploymentEvent::from_json`], plus bytes that are not UTF-8 (the offset is named).
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::invalid(
                "body",
                format!(
                    "is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })?;
        Self::from_json(text)
    }

    /// Validates a JSON value (for bindings that hold a dict or object).
    ///
    /// # Errors
    /// As [`DeploymentEvent::from_json`].
    pub fn from_value(value: Value) -> Result<Self> {
        let Value::Object(mut map) = value else {
            return Err(Error::invalid(
                "body",
                format!("must be a JSON object, got {}", json_type(&value)),
            ));
        };
        let mut problems = Problems::default();
        let mut unknown: Vec<&String> = map
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            let hint = closest_field(key)
                .map(|f| format!("; did you mean `{f}`?"))
                .unwrap_or_default();
            problems.add(
                crate::limits::field_segment(key),
                format!("unknown field{hint} (known fields: {})", FIELDS.join(", ")),
            );
        }
        let mut builder = DeploymentEventBuilder::default();
        let mut take_str = |name: &str, problems: &mut Problems| -> Option<String> {
            match map.remove(name) {
                None => None,
                Some(Value::String(s)) => Some(s),
                Some(other) => {
                    problems.add(name, format!("must be a string, got {}", json_type(&other)));
                    None
                }
            }
        };
        let request = take_str("deployment_request", &mut problems);
        let request_missing = request.is_none() && !problems.has("deployment_request");
        builder.request = request.unwrap_or_default();
        builder.repository = take_str("repository_full_name", &mut problems);
        builder.external_url = take_str("external_url", &mut problems);
        builder.commit_sha = take_str("commit_sha", &mut problems);
        builder.commit_message = take_str("commit_message", &mut problems);
        builder.git_ref = take_str("ref", &mut problems);
        if let Some(s) = take_str("status", &mut problems) {
            match DeploymentStatus::parse(&s) {
                Ok(status) => builder.status = Some(status),
                Err(e) => problems.extend_from(&e),
            }
        }
        match map.remove("event_metadata") {
            None => {}
            Some(Value::Object(m)) => builder.metadata = Some(m),
            Some(other) => problems.add(
                "event_metadata",
                format!("must be a JSON object, got {}", json_type(&other)),
            ),
        }
        builder.check(&mut problems, request_missing);
        problems.finish("deployment event")?;
        Ok(builder.assemble())
    }

    /// Builds an event from a CI environment, detecting GitHub Actions (`GITHUB_ACTIONS=true`) or
    /// GitLab CI (`GITLAB_CI=true`). `vars` is the environment to read (pass
    /// `std::env::vars().collect()` for the process's own). See
    /// [`DeploymentEventBuilder::from_github_actions`] and
    /// [`DeploymentEventBuilder::from_gitlab_ci`] for what is read.
    ///
    /// # Errors
    /// [`Error::Validation`] on field `environment` when neither CI is detected, or listing the
    /// problems of the values found.
    pub fn from_ci_env(vars: &HashMap<String, String>) -> Result<Self> {
        DeploymentEventBuilder::from_ci_env(vars)?.build()
    }
}

/// A deployment event kept for a session's lifetime, its metadata object held as a boxed slice
/// of entries: a `serde_json::Map` with one entry takes a 632-byte tree node, more than the
/// rest of the event. [`Self::event`] gives back an event equal to the one stored.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    /// The event without its metadata.
    event: DeploymentEvent,
    metadata: Option<Box<[(String, Value)]>>,
}

impl StoredEvent {
    pub(crate) fn new(mut event: DeploymentEvent) -> Self {
        let metadata = event
            .event_metadata
            .take()
            .map(|m| m.into_iter().collect::<Box<[_]>>());
        Self { event, metadata }
    }

    /// The event, as it was stored.
    pub(crate) fn event(&self) -> DeploymentEvent {
        let mut event = self.event.clone();
        event.event_metadata = self
            .metadata
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        event
    }
}

impl<'de> Deserialize<'de> for DeploymentEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Builds a [`DeploymentEvent`]; [`build`](Self::build) validates every field at once.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DeploymentEventBuilder {
    request: String,
    repository: Option<String>,
    status: Option<DeploymentStatus>,
    external_url: Option<String>,
    commit_sha: Option<String>,
    commit_message: Option<String>,
    git_ref: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl DeploymentEventBuilder {
    /// Sets what is being deployed (`deployment_request`).
    pub fn deployment_request(mut self, v: impl Into<String>) -> Self {
        self.request = v.into();
        self
    }
    /// Sets the repository, `owner/name` or `group/sub/project`.
    pub fn repository(mut self, v: impl Into<String>) -> Self {
        self.repository = Some(v.into());
        self
    }
    /// Sets the status (default `success`).
    pub fn status(mut self, v: DeploymentStatus) -> Self {
        self.status = Some(v);
        self
    }
    /// Sets the link to the pipeline or deployment page.
    pub fn external_url(mut self, v: impl Into<String>) -> Self {
        self.external_url = Some(v.into());
        self
    }
    /// Sets the deployed commit (7 to 64 hex characters).
    pub fn commit_sha(mut self, v: impl Into<String>) -> Self {
        self.commit_sha = Some(v.into());
        self
    }
    /// Sets the deployed commit's message.
    pub fn commit_message(mut self, v: impl Into<String>) -> Self {
        self.commit_message = Some(v.into());
        self
    }
    /// Sets the git ref (`refs/heads/main`, or a bare branch or tag name).
    pub fn git_ref(mut self, v: impl Into<String>) -> Self {
        self.git_ref = Some(v.into());
        self
    }
    /// Replaces the metadata object.
    pub fn metadata(mut self, v: Map<String, Value>) -> Self {
        self.metadata = Some(v);
        self
    }
    /// Sets one metadata key.
    pub fn metadata_entry(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }
    /// Sets `event_metadata.environment`.
    pub fn environment(self, v: impl Into<String>) -> Self {
        self.metadata_entry("environment", v.into())
    }
    /// Sets `event_metadata.correlation_id`.
    pub fn correlation_id(self, v: impl Into<String>) -> Self {
        self.metadata_entry("correlation_id", v.into())
    }

    /// Validates every field and returns the event.
    ///
    /// # Errors
    /// [`Error::Validation`] listing every bad field with the reason.
    pub fn build(self) -> Result<DeploymentEvent> {
        let mut problems = Problems::default();
        self.check(&mut problems, false);
        problems.finish("deployment event")?;
        Ok(self.assemble())
    }

    /// Reads a GitHub Actions environment: `GITHUB_SHA` → `commit_sha`, `GITHUB_REPOSITORY` →
    /// `repository_full_name`, `GITHUB_REF` → `ref`, `GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`/
    /// `GITHUB_RUN_ID` → `external_url` (the run page), `GITHUB_RUN_ID`/`GITHUB_RUN_ATTEMPT` →
    /// `event_metadata.correlation_id`. `CASED_ENVIRONMENT` sets `event_metadata.environment`,
    /// `CASED_DEPLOYMENT_REQUEST` the request (otherwise `"Deploy <repo>@<short sha>"`).
    pub fn from_github_actions(vars: &HashMap<String, String>) -> Self {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let mut b = Self {
            repository: get("GITHUB_REPOSITORY"),
            commit_sha: get("GITHUB_SHA"),
            git_ref: get("GITHUB_REF"),
            ..Self::default()
        };
        if let (Some(server), Some(repo), Some(run)) = (
            get("GITHUB_SERVER_URL"),
            get("GITHUB_REPOSITORY"),
            get("GITHUB_RUN_ID"),
        ) {
            b.external_url = Some(format!(
                "{}/{repo}/actions/runs/{run}",
                server.trim_end_matches('/')
            ));
            let attempt = get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
            b = b.correlation_id(format!("github:{repo}:{run}:{attempt}"));
        }
        b.common_ci(vars)
    }

    /// Reads a GitLab CI environment: `CI_COMMIT_SHA`, `CI_PROJECT_PATH`, `CI_COMMIT_REF_NAME`,
    /// `CI_PIPELINE_URL` → `external_url`, `CI_COMMIT_MESSAGE`, `CI_ENVIRONMENT_NAME` →
    /// `event_metadata.environment`, `CI_PIPELINE_ID` → `event_metadata.correlation_id`.
    /// `CASED_ENVIRONMENT` and `CASED_DEPLOYMENT_REQUEST` as for GitHub.
    pub fn from_gitlab_ci(vars: &HashMap<String, String>) -> Self {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let mut b = Self {
            repository: get("CI_PROJECT_PATH"),
            commit_sha: get("CI_COMMIT_SHA"),
            git_ref: get("CI_COMMIT_REF_NAME"),
            external_url: get("CI_PIPELINE_URL"),
            commit_message: get("CI_COMMIT_MESSAGE"),
            ..Self::default()
        };
        if let Some(env) = get("CI_ENVIRONMENT_NAME") {
            b = b.environment(env);
        }
        if let Some(id) = get("CI_PIPELINE_ID") {
            let project = get("CI_PROJECT_PATH").unwrap_or_default();
            b = b.correlation_id(format!("gitlab:{project}:{id}"));
        }
        b.common_ci(vars)
    }

    /// Detects the CI (GitHub Actions, then GitLab CI) and reads its environment.
    ///
    /// # Errors
    /// [`Error::Validation`] on field `environment` when neither is detected.
    pub fn from_ci_env(vars: &HashMap<String, String>) -> Result<Self> {
        let is = |k: &str| vars.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if is("GITHUB_ACTIONS") {
            Ok(Self::from_github_actions(vars))
        } else if is("GITLAB_CI") {
            Ok(Self::from_gitlab_ci(vars))
        } else {
            Err(Error::invalid(
                "environment",
                "no supported CI detected (expected GITHUB_ACTIONS=true or GITLAB_CI=true)",
            ))
        }
    }

    fn common_ci(mut self, vars: &HashMap<String, String>) -> Self {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(env) = get("CASED_ENVIRONMENT") {
            self = self.environment(env);
        }
        self.request = get("CASED_DEPLOYMENT_REQUEST").unwrap_or_else(|| {
            let repo = self.repository.as_deref().unwrap_or("repository");
            match self.commit_sha.as_deref() {
                // By characters: a malformed (non-ASCII) SHA must reach validation, not panic here.
                Some(sha) => format!("Deploy {repo}@{}", sha.chars().take(7).collect::<String>()),
                None => format!("Deploy {repo}"),
            }
        });
        self
    }

    fn assemble(self) -> DeploymentEvent {
        DeploymentEvent {
            deployment_request: self.request,
            repository_full_name: self.repository,
            status: self.status.unwrap_or_default(),
            external_url: self.external_url,
            commit_sha: self.commit_sha,
            commit_message: self.commit_message,
            git_ref: self.git_ref,
            event_metadata: self.metadata,
        }
    }

    fn check(&self, p: &mut Problems, request_missing: bool) {
        if request_missing {
            p.add("deployment_request", "is required");
        } else if !p.has("deployment_request") {
            // Not when it was already reported as the wrong JSON type (no second "empty" problem).
            check_request(&self.request, p);
        }
        if let Some(r) = &self.repository {
            check_repository(r, p);
        }
        if let Some(u) = &self.external_url {
            check_url(u, p);
        }
        if let Some(s) = &self.commit_sha {
            let hex = s.bytes().all(|b| b.is_ascii_hexdigit());
            if !(7..=64).contains(&s.len()) || !hex {
                p.add(
                    "commit_sha",
                    format!("{} must be 7 to 64 hexadecimal characters", quote(s)),
                );
            }
        }
        if let Some(m) = &self.commit_message {
            check_text("commit_message", m, MAX_COMMIT_MESSAGE_CHARS, p);
        }
        if let Some(r) = &self.git_ref {
            check_ref(r, p);
        }
        if let Some(m) = &self.metadata {
            check_metadata(m, p);
        }
    }
}

fn check_request(s: &str, p: &mut Problems) {
    if s.trim().is_empty() {
        p.add("deployment_request", "must not be empty");
    } else {
        check_text("deployment_request", s, MAX_DEPLOYMENT_REQUEST_CHARS, p);
    }
}

/// Free text: a length cap, and no control characters other than tab and line breaks.
fn check_text(field: &str, s: &str, max_chars: usize, p: &mut Problems) {
    let n = s.chars().count();
    if n > max_chars {
        p.add(
            field,
            format!("is {n} characters long; at most {max_chars} are allowed"),
        );
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        p.add(
            field,
            format!("contains the control character U+{:04X}", c as u32),
        );
    }
}

/// An identifier: a length cap, and no whitespace or control characters at all.
fn check_token(field: &str, s: &str, p: &mut Problems) -> bool {
    if s.is_empty() {
        p.add(field, "must not be empty");
        return false;
    }
    if s.chars().count() > MAX_NAME_CHARS {
        p.add(field, format!("is longer than {MAX_NAME_CHARS} characters"));
        return false;
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
        p.add(
            field,
            format!(
                "{} contains whitespace or a control character (U+{:04X})",
                quote(s),
                c as u32
            ),
        );
        return false;
    }
    true
}

fn check_repository(s: &str, p: &mut Problems) {
    const FIELD: &str = "repository_full_name";
    if !check_token(FIELD, s, p) {
        return;
    }
    let segments: Vec<&str> = s.split('/').collect();
    let valid_segment = |seg: &&str| {
        !seg.is_empty()
            && *seg != "."
            && *seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if segments.len() < 2 || !segments.iter().all(valid_segment) {
        p.add(
            FIELD,
            format!(
                "{} must look like `owner/name` (or `group/sub/project`): segments of letters, digits, `-`, `_` and `.`",
                quote(s)
            ),
        );
    }
}

fn check_url(s: &str, p: &mut Problems) {
    const FIELD: &str = "external_url";
    if !check_token(FIELD, s, p) {
        return;
    }
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => p.add(
            FIELD,
            format!(
                "{} must be an absolute http(s) URL, not {}:",
                quote(s),
                u.scheme()
            ),
        ),
        Err(e) => p.add(
            FIELD,
            format!("{} is not an absolute http(s) URL: {e}", quote(s)),
        ),
    }
}

fn check_ref(s: &str, p: &mut Problems) {
    if !check_token("ref", s, p) {
        return;
    }
    let bad = s.contains("..")
        || s.contains("@{")
        || s.chars()
            .any(|c| matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
        || s.ends_with('/')
        || s.ends_with('.')
        || s.ends_with(".lock");
    if bad {
        p.add("ref", format!("{} is not a valid git ref name", quote(s)));
    }
}

fn check_metadata(m: &Map<String, Value>, p: &mut Problems) {
    // `m` is one level; a value nested too deep is refused before it is serialized.
    let depth = 1 + m.values().map(crate::limits::json_depth).max().unwrap_or(0);
    if depth > crate::limits::MAX_JSON_DEPTH {
        p.add("event_metadata", crate::limits::too_deep_message());
        return;
    }
    for key in ["environment", "correlation_id"] {
        match m.get(key) {
            None | Some(Value::String(_)) => {}
            Some(other) => p.add(
                format!("event_metadata.{key}"),
                format!("must be a string, got {}", json_type(other)),
            ),
        }
    }
    if let Some(Value::String(env)) = m.get("environment") {
        check_token("event_metadata.environment", env, p);
    }
    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        p.add(
            "event_metadata",
            format!("is {size} bytes of JSON; at most {MAX_METADATA_BYTES} are allowed"),
        );
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Quotes a user value for an error message, shortened so a huge value cannot flood a log.
fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

/// The known field closest to an unknown one (a typo hint), if any is close.
fn closest_field(unknown: &str) -> Option<&'static str> {
    let lower = unknown.to_ascii_lowercase().replace('-', "_");
    FIELDS
        .iter()
        .map(|f| (edit_distance(&lower, f), *f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 5))
        .min()
        .map(|(_, f)| f)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_hint_names_the_close_field() {
        assert_eq!(closest_field("commit_hash"), None);
        assert_eq!(closest_field("comit_sha"), Some("commit_sha"));
        assert_eq!(
            closest_field("repository-full-name"),
            Some("repository_full_name")
        );
    }

    #[test]
    fn quote_shortens_long_values() {
        let q = quote(&"x".repeat(500));
        assert!(q.len() < 80, "{q}");
        assert!(q.ends_with('…'));
    }
}
