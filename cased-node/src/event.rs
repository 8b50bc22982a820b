//! The deployment event: mirrors `cased_core::DeploymentEvent`.
//!
//! The object given to `new DeploymentEvent(...)` uses the **wire names** (`deployment_request`,
//! `commit_sha`, `ref`, ...), the same keys as the JSON the API receives, `cased.toml` and
//! Python's keyword arguments: one serde model serves every language. It is handed to the core
//! as JSON, so validation (every problem at once, unknown keys by name, wrong types) is the
//! core's. Getters are camelCase, as JavaScript properties are.

use std::collections::HashMap;

use napi::bindgen_prelude::{Either, JsObjectValue, Object, Uint8Array, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::Value;

use crate::errors::to_js_error;
use crate::js::JsonArg;

/// The object `new DeploymentEvent(...)` takes and `toJSON()` returns: the wire contract of
/// `POST /api/v1/deployments/`, with the wire names. A key not listed here is rejected by name.
///
/// (This declaration types the object for TypeScript; at run time the object is passed to the
/// core as JSON and validated there.)
#[napi(object)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentEventInit {
    /// What is being deployed, for a person (`"Deploy v1.4.2"`): required, not blank, at most
    /// 1000 characters.
    #[napi(js_name = "deployment_request")]
    pub deployment_request: String,
    /// `owner/name`, or `group/sub/project` for GitLab nested groups.
    #[napi(js_name = "repository_full_name")]
    pub repository_full_name: Option<String>,
    /// The deployment's state; `success` when absent.
    #[napi(ts_type = "'pending' | 'running' | 'success' | 'failure' | 'cancelled'")]
    pub status: Option<String>,
    /// Link to the pipeline or deployment page: an absolute http(s) URL.
    #[napi(js_name = "external_url")]
    pub external_url: Option<String>,
    /// The deployed commit: 7 to 64 hexadecimal characters (SHA-1 or SHA-256).
    #[napi(js_name = "commit_sha")]
    pub commit_sha: Option<String>,
    /// The deployed commit's message.
    #[napi(js_name = "commit_message")]
    pub commit_message: Option<String>,
    /// The git ref: `refs/heads/main`, or a bare branch or tag name.
    #[napi(js_name = "ref")]
    pub git_ref: Option<String>,
    /// Free-form metadata; must be an object. `environment`, `version` and `correlation_id`
    /// are the conventional keys (`environment` and `correlation_id` must be strings).
    #[napi(js_name = "event_metadata", ts_type = "Record<string, unknown>")]
    pub event_metadata: Option<Value>,
}

/// A validated deployment event. It can only be obtained valid: from the constructor,
/// `DeploymentEvent.fromJson()` or `DeploymentEvent.fromEnv()`; each throws an error with
/// `code: 'validation'` and every bad field in `fields` (see `CasedErrorInfo`).
///
/// ```js
/// const event = new DeploymentEvent({
///   deployment_request: 'Deploy v1.4.2',
///   repository_full_name: 'acme/shop',
///   commit_sha: 'a1b2c3d',
///   ref: 'refs/heads/main',
///   event_metadata: { environment: 'production' },
/// })
/// JSON.stringify(event) // the body sent to the API, byte for byte (= event.toJson())
/// ```
#[napi]
#[derive(Debug, Clone)]
pub struct DeploymentEvent {
    pub(crate) inner: cased_core::DeploymentEvent,
}

#[napi]
impl DeploymentEvent {
    /// Validates `init` (wire names) and builds the event. Absent optional fields stay absent;
    /// properties whose value is `undefined` count as absent, as in `JSON.stringify`.
    #[napi(constructor, ts_args_type = "init: DeploymentEventInit")]
    pub fn new(env: &Env, init: Option<JsonArg>) -> Result<Self> {
        let value = init.map_or(Value::Null, |j| j.0);
        cased_core::DeploymentEvent::from_value(value)
            .map(Self::from)
            .map_err(|e| to_js_error(env, e))
    }

    /// Parses and validates the JSON body of a deployment event. A `string` is parsed as it is;
    /// bytes (a `Buffer` or any `Uint8Array`) must be UTF-8, and the offset of the first invalid
    /// byte is named otherwise.
    #[napi(factory)]
    pub fn from_json(env: &Env, text: Either<String, Uint8Array>) -> Result<Self> {
        let parsed = match &text {
            Either::A(s) => cased_core::DeploymentEvent::from_json(s),
            Either::B(bytes) => cased_core::DeploymentEvent::from_slice(bytes),
        };
        parsed.map(Self::from).map_err(|e| to_js_error(env, e))
    }

    /// Builds an event from a CI environment, detecting GitHub Actions (`GITHUB_ACTIONS=true`)
    /// or GitLab CI (`GITLAB_CI=true`): commit, repository, ref, pipeline URL, correlation id;
    /// `CASED_ENVIRONMENT` and `CASED_DEPLOYMENT_REQUEST` are read too.
    ///
    /// `vars` is the environment to read. When it is omitted, `process.env` is read (the
    /// JavaScript object, so changes made to it from JavaScript and a worker thread's own copy
    /// are seen). Throws a `validation` error on field `environment` when neither CI is
    /// detected, or listing the problems of the values found.
    #[napi(factory)]
    pub fn from_env(env: &Env, vars: Option<HashMap<String, String>>) -> Result<Self> {
        let vars = match vars {
            Some(vars) => vars,
            None => process_env(env)?,
        };
        cased_core::DeploymentEvent::from_ci_env(&vars)
            .map(Self::from)
            .map_err(|e| to_js_error(env, e))
    }

    /// The event as the object sent to the API: wire names in wire order, absent fields omitted
    /// (never `null`), so `JSON.stringify(event)` is exactly `event.toJson()`.
    #[napi(js_name = "toJSON", ts_return_type = "DeploymentEventInit")]
    pub fn to_json_value<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        env.to_js_value(&self.inner)
    }

    /// The event as a plain object with the wire names; the same as `toJSON()`.
    #[napi(ts_return_type = "DeploymentEventInit")]
    pub fn to_object<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        env.to_js_value(&self.inner)
    }

    /// The event as compact JSON text, exactly as sent to the API.
    #[napi]
    pub fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// What is being deployed (`deployment_request`).
    #[napi(getter)]
    pub fn deployment_request(&self) -> String {
        self.inner.deployment_request().to_owned()
    }

    /// `owner/name` of the repository (`repository_full_name`), or `null`.
    #[napi(getter)]
    pub fn repository_full_name(&self) -> Option<String> {
        self.inner.repository_full_name().map(str::to_owned)
    }

    /// The reported status; `'success'` when it was absent.
    #[napi(
        getter,
        ts_return_type = "'pending' | 'running' | 'success' | 'failure' | 'cancelled'"
    )]
    pub fn status(&self) -> &'static str {
        self.inner.status().as_str()
    }

    /// Link to the pipeline or deployment page (`external_url`), or `null`.
    #[napi(getter)]
    pub fn external_url(&self) -> Option<String> {
        self.inner.external_url().map(str::to_owned)
    }

    /// The deployed commit (`commit_sha`), or `null`.
    #[napi(getter)]
    pub fn commit_sha(&self) -> Option<String> {
        self.inner.commit_sha().map(str::to_owned)
    }

    /// The deployed commit's message (`commit_message`), or `null`.
    #[napi(getter)]
    pub fn commit_message(&self) -> Option<String> {
        self.inner.commit_message().map(str::to_owned)
    }

    /// The git ref (`ref`), or `null`.
    #[napi(getter, js_name = "ref")]
    pub fn git_ref(&self) -> Option<String> {
        self.inner.git_ref().map(str::to_owned)
    }

    /// A copy of the metadata object (`event_metadata`), or `null`.
    #[napi(getter, ts_return_type = "Record<string, unknown> | null")]
    pub fn event_metadata(&self) -> Option<Value> {
        self.inner
            .event_metadata()
            .map(|m| Value::Object(m.clone()))
    }

    /// `event_metadata.environment`, the conventional environment name, or `null`.
    #[napi(getter)]
    pub fn environment(&self) -> Option<String> {
        self.inner.environment().map(str::to_owned)
    }

    /// `event_metadata.correlation_id`, the id tying logs and alerts together, or `null`.
    #[napi(getter)]
    pub fn correlation_id(&self) -> Option<String> {
        self.inner.correlation_id().map(str::to_owned)
    }
}

impl From<cased_core::DeploymentEvent> for DeploymentEvent {
    fn from(inner: cased_core::DeploymentEvent) -> Self {
        Self { inner }
    }
}

/// `globalThis.process.env` as a map.
fn process_env(env: &Env) -> Result<HashMap<String, String>> {
    let process: Object<'_> = env.get_global()?.get_named_property("process")?;
    process.get_named_property("env")
}
