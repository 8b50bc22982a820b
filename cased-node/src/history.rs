//! History: mirrors `cased_core::history` — the embedded SQLite history of sessions
//! (`SqliteHistory`) and its queries. A monitor given one (`new Monitor(config, { history })`)
//! records every session's event, ticks, findings, alerts and report as it runs.

use std::sync::Arc;

use cased_core::history::{Bucket, DeploymentFilter as CoreFilter, HistoryStore};
use cased_core::{Error, SqliteHistory};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::Value;

use crate::errors::to_js_error;
use crate::js::{Json, JsonText};

/// The query result as the core's JSON.
macro_rules! json {
    ($value:expr) => {
        Ok(Json(
            serde_json::to_string(&$value).expect("history records always serialize"),
        ))
    };
}

/// Which deployments a query is about. Every key is optional; an absent one matches
/// everything. Wire (snake_case) names; unknown keys are refused (`code: 'validation'`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentFilter {
    /// Exactly this repository (`owner/name`).
    pub repository: Option<String>,
    /// Exactly this environment.
    pub environment: Option<String>,
    /// Exactly this correlation id.
    #[napi(js_name = "correlation_id")]
    pub correlation_id: Option<String>,
    /// Only deployments with this final verdict.
    #[napi(ts_type = "'healthy' | 'degraded' | 'unhealthy' | 'inconclusive'")]
    pub verdict: Option<String>,
    /// Started at or after this time (ms since the Unix epoch).
    #[napi(js_name = "since_unix_ms")]
    pub since_unix_ms: Option<f64>,
    /// Started before this time (ms since the Unix epoch; exclusive).
    #[napi(js_name = "until_unix_ms")]
    pub until_unix_ms: Option<f64>,
    /// At most this many, newest first (for `deployments`; aggregates ignore it).
    pub limit: Option<u32>,
}

/// One deployment as history keeps it (the core's `DeploymentRecord`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    /// The session's id.
    #[napi(js_name = "session_id")]
    pub session_id: String,
    /// The correlation id.
    #[napi(js_name = "correlation_id")]
    pub correlation_id: String,
    /// The deployment's description.
    #[napi(js_name = "deployment_request")]
    pub deployment_request: String,
    /// `owner/name`.
    #[napi(ts_type = "string | null")]
    pub repository: Option<String>,
    /// The environment.
    #[napi(ts_type = "string | null")]
    pub environment: Option<String>,
    /// The commit.
    #[napi(js_name = "commit_sha", ts_type = "string | null")]
    pub commit_sha: Option<String>,
    /// The git ref.
    #[napi(js_name = "git_ref", ts_type = "string | null")]
    pub git_ref: Option<String>,
    /// When the session started, ms since the Unix epoch.
    #[napi(js_name = "started_at_unix_ms")]
    pub started_at_unix_ms: f64,
    /// How long it lasted; `null` while unfinished.
    #[napi(js_name = "duration_ms", ts_type = "number | null")]
    pub duration_ms: Option<f64>,
    /// The final verdict; `null` while unfinished.
    #[napi(ts_type = "'healthy' | 'degraded' | 'unhealthy' | 'inconclusive' | null")]
    pub verdict: Option<String>,
    /// Why.
    #[napi(ts_type = "string | null")]
    pub reason: Option<String>,
    /// Why the session ended; `null` while unfinished.
    #[napi(js_name = "ended_by", ts_type = "string | null")]
    pub ended_by: Option<String>,
    /// The verdict after the last recorded tick.
    #[napi(js_name = "last_tick_verdict", ts_type = "string | null")]
    pub last_tick_verdict: Option<String>,
    /// Ticks recorded.
    pub ticks: u32,
    /// Findings recorded.
    pub findings: u32,
    /// Alerts recorded.
    pub alerts: u32,
    /// When the session was last heard from, ms since the Unix epoch.
    #[napi(js_name = "last_seen_unix_ms", ts_type = "number | null")]
    pub last_seen_unix_ms: Option<f64>,
    /// When the history found the session interrupted (no verdict, its process gone), ms since
    /// the Unix epoch; `null` for a finished or running session.
    #[napi(js_name = "interrupted_at_unix_ms", ts_type = "number | null")]
    pub interrupted_at_unix_ms: Option<f64>,
}

/// The embedded history of sessions: one SQLite file (WAL, versioned schema) or memory.
///
/// ```js
/// const history = new History('.cased/history.db')
/// const monitor = new Monitor(config, { history })
/// await monitor.run(event)
/// const [last] = await history.deployments({ repository: 'acme/shop', limit: 1 })
/// console.log(renderReport(await history.report(last.session_id), 'md'))
/// ```
///
/// Queries run off the JavaScript thread and reject with `code: 'storage'` when the database
/// fails, `validation` for a bad filter.
#[napi]
#[derive(Debug, Clone)]
pub struct History {
    pub(crate) inner: SqliteHistory,
}

#[napi]
impl History {
    /// Opens (creating it and its directory when missing) the history at `path` and migrates
    /// its schema. Throws `code: 'storage'` when the file cannot be opened, is not a cased
    /// history, or was written by a newer cased.
    #[napi(constructor)]
    pub fn new(env: &Env, path: String) -> Result<Self> {
        SqliteHistory::open(path)
            .map(|inner| Self { inner })
            .map_err(|e| to_js_error(env, e))
    }

    /// A history in memory, gone with the process (tests, one-off runs).
    #[napi(factory)]
    pub fn in_memory(env: &Env) -> Result<Self> {
        SqliteHistory::in_memory()
            .map(|inner| Self { inner })
            .map_err(|e| to_js_error(env, e))
    }

    /// The file's path; `null` in memory.
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.inner.path().map(|p| p.display().to_string())
    }

    /// Deployments matching `filter`, newest first.
    #[napi(
        ts_args_type = "filter?: DeploymentFilter | null",
        ts_return_type = "Promise<Array<DeploymentRecord>>"
    )]
    pub fn deployments<'env>(
        &self,
        env: &'env Env,
        filter: Option<JsonText>,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            let filter = read_filter(filter)?;
            json!(store.deployments(&filter).await?)
        })
    }

    /// The final report of a session (the object `monitor.run` resolved with); `null` when
    /// unknown or unfinished.
    #[napi(ts_return_type = "Promise<Report | null>")]
    pub fn report<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            Ok(Json(
                store
                    .report(&session_id)
                    .await?
                    .map_or_else(|| "null".to_owned(), |r| r.to_json()),
            ))
        })
    }

    /// The findings recorded for a session, in order: `{ id, session_id, seq, tick,
    /// elapsed_ms, finding }` (the `id` is what `deploymentOfFinding` takes).
    #[napi(
        ts_return_type = "Promise<Array<{ id: string; session_id: string; seq: number; tick: number | null; elapsed_ms: number | null; finding: Finding }>>"
    )]
    pub fn findings<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(
            env,
            async move { json!(store.findings(&session_id).await?) },
        )
    }

    /// Verdict counts and success rate per UTC `day` or ISO `week`, oldest first; buckets
    /// without deployments are left out. Success rate: `(healthy + degraded) / (healthy +
    /// degraded + unhealthy)`, `null` without any of those.
    #[napi(
        ts_args_type = "bucket: 'day' | 'week', filter?: DeploymentFilter | null",
        ts_return_type = "Promise<Array<{ start_unix_ms: number; healthy: number; degraded: number; unhealthy: number; inconclusive: number; unfinished: number; total: number; success_rate: number | null }>>"
    )]
    pub fn verdict_counts<'env>(
        &self,
        env: &'env Env,
        bucket: String,
        filter: Option<JsonText>,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            let bucket: Bucket = serde_json::from_value(Value::String(bucket.clone()))
                .map_err(|_| invalid("bucket", format!("{bucket:?} is not one of day, week")))?;
            let filter = read_filter(filter)?;
            json!(store.verdict_counts(&filter, bucket).await?)
        })
    }

    /// The time to detect of every matching deployment that was detected, oldest first: from
    /// the deploy start to the first critical finding (else the first failed tick).
    #[napi(
        ts_args_type = "filter?: DeploymentFilter | null",
        ts_return_type = "Promise<Array<{ session_id: string; started_at_unix_ms: number; time_to_detect_ms: number; detected_by: 'critical_finding' | 'failed_tick'; tick: number }>>"
    )]
    pub fn time_to_detect<'env>(
        &self,
        env: &'env Env,
        filter: Option<JsonText>,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            let filter = read_filter(filter)?;
            json!(store.time_to_detect(&filter).await?)
        })
    }

    /// Moves the write-ahead log (`history.db-wal`) into the database file, so the file alone
    /// holds every session: call it before copying or uploading the file, or before the process
    /// exits (JavaScript objects are not finalized at exit).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn checkpoint<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            store.checkpoint().await?;
            Ok(Json("null".to_owned()))
        })
    }

    /// The deployment a finding (by its history `id`) belongs to; `null` when unknown.
    #[napi(ts_return_type = "Promise<DeploymentRecord | null>")]
    pub fn deployment_of_finding<'env>(
        &self,
        env: &'env Env,
        finding_id: String,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            json!(store.deployment_of_finding(&finding_id).await?)
        })
    }

    /// The last `n` healthy deployments matching `filter` (its verdict and limit are
    /// replaced), newest first: what baselines are built from.
    #[napi(
        ts_args_type = "n: number, filter?: DeploymentFilter | null",
        ts_return_type = "Promise<Array<DeploymentRecord>>"
    )]
    pub fn last_healthy<'env>(
        &self,
        env: &'env Env,
        n: u32,
        filter: Option<JsonText>,
    ) -> Result<PromiseRaw<'env, Json>> {
        let store = self.inner.clone();
        query(env, async move {
            let filter = read_filter(filter)?;
            json!(store.last_healthy(&filter, n as usize).await?)
        })
    }
}

impl History {
    /// The store a monitor records into.
    pub(crate) fn store(&self) -> Arc<dyn HistoryStore> {
        Arc::new(self.inner.clone())
    }
}

/// Runs a query on napi's runtime; its error is converted on the JavaScript thread.
fn query<'env, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, Json>>
where
    F: std::future::Future<Output = cased_core::Result<Json>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r| {
        r.map_err(|e| to_js_error(env, e))
    })
}

fn invalid(field: &str, message: String) -> Error {
    Error::Validation(cased_core::ValidationErrors {
        subject: "history query".to_owned(),
        errors: vec![cased_core::FieldError::new(field, message)],
    })
}

fn read_filter(filter: Option<JsonText>) -> cased_core::Result<CoreFilter> {
    match filter {
        Some(JsonText(text)) if text != "null" => {
            serde_json::from_str(&text).map_err(|e| invalid("filter", e.to_string()))
        }
        _ => Ok(CoreFilter::default()),
    }
}
