//! The tables `cased serve` keeps of its own, in `serve.db` beside the history: API keys
//! (hashed), deployments as the API knows them (the latest event, the matched service, the
//! history session monitoring it, the state), every event received for a deployment, and
//! idempotency keys with the answer they got, and incidents with the deployments they were
//! correlated to.
//!
//! Sessions themselves (ticks, findings, alerts, reports) are kept by the core's history store
//! (`history.db`), under the session id a deployment row points to.
//!
//! Calls are synchronous and short (one SQLite connection behind a mutex); the server keeps
//! writes in one order with its ingest lock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use cased_core::{DeploymentEvent, DeploymentStatus, Verdict};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::incidents::{Candidate, Incident, Rule, correlate};
use super::trends::{COMMIT_TIME_KEY, Point, commit_time_of};

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: u32 = 3;

/// From schema 1 to 2: incidents, and each deployment's monitoring window (for correlating them).
const MIGRATION_2: &str = "
ALTER TABLE deployments ADD COLUMN monitor_started_at_ms INTEGER;
ALTER TABLE deployments ADD COLUMN monitor_ended_at_ms INTEGER;
CREATE TABLE incidents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    received_at_ms INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    repository TEXT,
    environment TEXT,
    correlation_id TEXT,
    incident TEXT NOT NULL
);
CREATE TABLE incident_deployments (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    rule TEXT NOT NULL,
    PRIMARY KEY (incident_id, deployment_id)
);
CREATE INDEX incident_deployments_by_deployment ON incident_deployments (deployment_id);
CREATE INDEX deployments_by_place ON deployments (repository, environment);
";

/// From schema 2 to 3: identity matching compares commits case-blind, so its index does too.
const MIGRATION_3: &str = "
DROP INDEX deployments_by_identity;
CREATE INDEX deployments_by_identity ON deployments (repository, lower(commit_sha), environment);
";

const SCHEMA: &str = "
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE TABLE deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    repository TEXT,
    environment TEXT,
    commit_sha TEXT,
    correlation_id TEXT,
    status TEXT NOT NULL,
    event TEXT NOT NULL,
    service TEXT,
    note TEXT,
    session_id TEXT,
    state TEXT NOT NULL,
    verdict TEXT,
    reason TEXT
);
CREATE INDEX deployments_by_identity ON deployments (repository, commit_sha, environment);
CREATE INDEX deployments_by_correlation ON deployments (correlation_id);
CREATE INDEX deployments_by_state ON deployments (state);
CREATE TABLE deployment_events (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    received_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX deployment_events_by_deployment ON deployment_events (deployment_id);
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
";

/// How long an idempotency key is remembered: 24 hours, as long as any retry policy runs.
pub(crate) const IDEMPOTENCY_TTL_MS: u64 = 24 * 3600 * 1000;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Post deployment events.
    Ingest,
    /// Read deployments, reports, verdicts and the event stream.
    Read,
}

impl Scope {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "ingest" {
            Self::Ingest
        } else {
            Self::Read
        }
    }
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KeyInfo {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) scope: Scope,
    pub(crate) created_at_unix_ms: u64,
    pub(crate) revoked_at_unix_ms: Option<u64>,
}

/// Where a deployment is, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Stored only: no service matched, or no session was started (`pending`, or a failure
    /// reported before monitoring began).
    Recorded,
    /// A session is monitoring it.
    Monitoring,
    /// Its session ended; the verdict is final.
    Finished,
    /// Its session was running when the server stopped; the reason says so.
    Interrupted,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Monitoring => "monitoring",
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "monitoring" => Self::Monitoring,
            "finished" => Self::Finished,
            "interrupted" => Self::Interrupted,
            _ => Self::Recorded,
        }
    }
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Deployment {
    pub(crate) id: String,
    pub(crate) created_at_unix_ms: u64,
    pub(crate) updated_at_unix_ms: u64,
    pub(crate) repository: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) commit_sha: Option<String>,
    pub(crate) correlation_id: Option<String>,
    /// The status the latest event reported.
    pub(crate) status: DeploymentStatus,
    pub(crate) state: State,
    /// Whether a service of the configuration matched it.
    pub(crate) monitored: bool,
    pub(crate) service: Option<String>,
    /// Why it is not monitored, when it is not.
    #[serde(rename = "unmonitored_reason", skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) verdict: Option<Verdict>,
    pub(crate) reason: Option<String>,
    /// The latest event, as received.
    pub(crate) event: serde_json::Value,
}

/// Which deployments a list is about.
#[derive(Debug, Default)]
pub(crate) struct ListFilter {
    pub(crate) repository: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) verdict: Option<Verdict>,
    pub(crate) state: Option<State>,
    /// Only deployments older than this position (the cursor).
    pub(crate) before_seq: Option<i64>,
    pub(crate) limit: usize,
}

/// A stored idempotent answer.
#[derive(Debug, Clone)]
pub(crate) struct StoredAnswer {
    pub(crate) request_hash: String,
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// The server's own database.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

/// A storage failure, already worded.
pub(crate) type StoreResult<T> = Result<T, String>;

fn err(e: rusqlite::Error) -> String {
    format!("serve store: {e}")
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &[u8]) -> String {
    Sha256::digest(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` bytes from the operating system's random source, as hex.
pub(crate) fn random_hex(n: usize) -> StoreResult<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// Opens (creating) `serve.db` at `path`.
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        // WAL with NORMAL, as the history store by default: a commit survives the process being
        // killed (a power cut may drop the last ones) and waits for no fsync of its own.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(format!(
                "{} was written by a newer cased (schema {version}, this one knows {SCHEMA_VERSION})",
                path.display()
            ));
        }
        let steps = match version {
            0 => format!("{SCHEMA} {MIGRATION_2} {MIGRATION_3}"),
            1 => format!("{MIGRATION_2} {MIGRATION_3}"),
            2 => MIGRATION_3.to_owned(),
            _ => String::new(),
        };
        if !steps.is_empty() {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(err)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a write transaction on this connection (the ingest writer's batch).
    pub(crate) fn begin(&self) -> StoreResult<()> {
        self.conn().execute_batch("BEGIN IMMEDIATE").map_err(err)
    }

    /// Commits the transaction [`begin`](Self::begin) started; rolls it back if that fails.
    pub(crate) fn commit(&self) -> StoreResult<()> {
        let conn = self.conn();
        conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            err(e)
        })
    }

    // ---- API keys ------------------------------------------------------------------------

    /// Creates a key; returns its id and the key itself (shown once, stored hashed).
    pub(crate) fn create_key(
        &self,
        scope: Scope,
        name: Option<&str>,
    ) -> StoreResult<(String, String)> {
        let id = format!("key_{}", random_hex(6)?);
        let key = format!("cased_{}_{}", scope.as_str(), random_hex(24)?);
        self.conn()
            .execute(
                "INSERT INTO api_keys (id, name, scope, hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, scope.as_str(), sha256_hex(key.as_bytes()), now_ms() as i64],
            )
            .map_err(err)?;
        Ok((id, key))
    }

    pub(crate) fn list_keys(&self) -> StoreResult<Vec<KeyInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, scope, created_at_ms, revoked_at_ms FROM api_keys ORDER BY created_at_ms, id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KeyInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    scope: Scope::parse(&r.get::<_, String>(2)?),
                    created_at_unix_ms: r.get::<_, i64>(3)? as u64,
                    revoked_at_unix_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Revokes a key; `false` when no active key has this id.
    pub(crate) fn revoke_key(&self, id: &str) -> StoreResult<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
                params![id, now_ms() as i64],
            )
            .map_err(err)?;
        Ok(n > 0)
    }

    /// The id and scope of the active key `key`, if any.
    pub(crate) fn find_key(&self, key: &str) -> StoreResult<Option<(String, Scope)>> {
        self.conn()
            .query_row(
                "SELECT id, scope FROM api_keys WHERE hash = ?1 AND revoked_at_ms IS NULL",
                [sha256_hex(key.as_bytes())],
                |r| Ok((r.get(0)?, Scope::parse(&r.get::<_, String>(1)?))),
            )
            .optional()
            .map_err(err)
    }

    // ---- idempotency ---------------------------------------------------------------------

    /// The answer kept for `key` of caller `scope`, unless it is older than
    /// [`IDEMPOTENCY_TTL_MS`] at `now`.
    pub(crate) fn idempotent_answer(
        &self,
        scope: &str,
        key: &str,
        now: u64,
    ) -> StoreResult<Option<StoredAnswer>> {
        self.conn()
            .query_row(
                "SELECT request_hash, status, body FROM idempotency \
                 WHERE scope = ?1 AND key = ?2 AND created_at_ms >= ?3",
                params![scope, key, now.saturating_sub(IDEMPOTENCY_TTL_MS) as i64],
                |r| {
                    Ok(StoredAnswer {
                        request_hash: r.get(0)?,
                        status: r.get::<_, i64>(1)? as u16,
                        body: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(err)
    }

    /// Keeps the answer to `key` of caller `scope` (replacing an expired one).
    pub(crate) fn keep_answer(
        &self,
        scope: &str,
        key: &str,
        answer: &StoredAnswer,
        now: u64,
    ) -> StoreResult<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, request_hash, status, body, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    scope,
                    key,
                    answer.request_hash,
                    i64::from(answer.status),
                    answer.body,
                    now as i64
                ],
            )
            .map_err(err)?;
        Ok(())
    }

    /// Forgets the idempotency keys older than [`IDEMPOTENCY_TTL_MS`] at `now`; how many.
    pub(crate) fn prune_idempotency(&self, now: u64) -> StoreResult<usize> {
        self.conn()
            .execute(
                "DELETE FROM idempotency WHERE created_at_ms < ?1",
                [now.saturating_sub(IDEMPOTENCY_TTL_MS) as i64],
            )
            .map_err(err)
    }

    // ---- deployments ---------------------------------------------------------------------

    /// The deployment `event` is a later event of: the same correlation id, else the same
    /// repository + commit + environment.
    pub(crate) fn find_same(&self, event: &DeploymentEvent) -> StoreResult<Option<Deployment>> {
        if let Some(c) = event.correlation_id() {
            let found = self.one("WHERE correlation_id = ?1", params![c])?;
            if found.is_some() {
                return Ok(found);
            }
        }
        match (event.repository_full_name(), event.commit_sha()) {
            (Some(repo), Some(sha)) => self.one(
                "WHERE repository = ?1 AND lower(commit_sha) = lower(?2) AND environment IS ?3",
                params![repo, sha, event.environment()],
            ),
            _ => Ok(None),
        }
    }

    /// Stores a new deployment.
    pub(crate) fn insert(
        &self,
        id: &str,
        event: &DeploymentEvent,
        service: Option<&str>,
        note: Option<&str>,
    ) -> StoreResult<()> {
        let now = now_ms() as i64;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO deployments (id, created_at_ms, updated_at_ms, repository, environment, \
             commit_sha, correlation_id, status, event, service, note, state) \
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'recorded')",
            params![
                id,
                now,
                event.repository_full_name(),
                event.environment(),
                event.commit_sha(),
                event.correlation_id(),
                event.status().as_str(),
                event.to_json(),
                service,
                note
            ],
        )
        .map_err(err)?;
        log_event(&conn, id, event, now)
    }

    /// Keeps a later event of deployment `id` as its latest.
    pub(crate) fn update_event(&self, id: &str, event: &DeploymentEvent) -> StoreResult<()> {
        let now = now_ms() as i64;
        let conn = self.conn();
        conn.execute(
            "UPDATE deployments SET status = ?2, event = ?3, updated_at_ms = ?4, \
             correlation_id = coalesce(correlation_id, ?5) WHERE id = ?1",
            params![
                id,
                event.status().as_str(),
                event.to_json(),
                now,
                event.correlation_id()
            ],
        )
        .map_err(err)?;
        log_event(&conn, id, event, now)
    }

    /// A session started for deployment `id`.
    pub(crate) fn set_monitoring(&self, id: &str, session_id: &str) -> StoreResult<()> {
        self.conn()
            .execute(
                "UPDATE deployments SET state = 'monitoring', session_id = ?2, updated_at_ms = ?3, \
                 monitor_started_at_ms = ?3 WHERE id = ?1",
                params![id, session_id, now_ms() as i64],
            )
            .map_err(err)?;
        Ok(())
    }

    /// The session of deployment `id` ended with `verdict`.
    pub(crate) fn set_finished(&self, id: &str, verdict: Verdict, reason: &str) -> StoreResult<()> {
        self.conn()
            .execute(
                "UPDATE deployments SET state = 'finished', verdict = ?2, reason = ?3, updated_at_ms = ?4, \
                 monitor_ended_at_ms = coalesce(monitor_ended_at_ms, ?4) WHERE id = ?1",
                params![id, verdict.as_str(), reason, now_ms() as i64],
            )
            .map_err(err)?;
        Ok(())
    }

    /// Marks every deployment still `monitoring` as `interrupted` with `reason`; returns their
    /// ids. Called at start-up: no session of an earlier process runs any more.
    pub(crate) fn interrupt_running(&self, reason: &str) -> StoreResult<Vec<String>> {
        let conn = self.conn();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM deployments WHERE state = 'monitoring' ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(err)?;
        conn.execute(
            "UPDATE deployments SET state = 'interrupted', reason = ?1, updated_at_ms = ?2, \
             monitor_ended_at_ms = coalesce(monitor_ended_at_ms, ?2) WHERE state = 'monitoring'",
            params![reason, now_ms() as i64],
        )
        .map_err(err)?;
        Ok(ids)
    }

    pub(crate) fn get(&self, id: &str) -> StoreResult<Option<Deployment>> {
        self.one("WHERE id = ?1", params![id])
    }

    /// The events received for deployment `id`, oldest first.
    pub(crate) fn events(&self, id: &str) -> StoreResult<Vec<serde_json::Value>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT received_at_ms, event FROM deployment_events WHERE deployment_id = ?1 ORDER BY rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([id], |r| {
                let at: i64 = r.get(0)?;
                let event: String = r.get(1)?;
                Ok(serde_json::json!({
                    "received_at_unix_ms": at,
                    "event": serde_json::from_str::<serde_json::Value>(&event).unwrap_or_default(),
                }))
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// A page of deployments, newest first, with the cursor of the next page.
    pub(crate) fn list(&self, f: &ListFilter) -> StoreResult<(Vec<Deployment>, Option<i64>)> {
        let mut clauses = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, v: rusqlite::types::Value| {
            values.push(v);
            clauses.push(clause.replace('?', &format!("?{}", values.len())));
        };
        if let Some(r) = &f.repository {
            add("repository = ?", r.clone().into());
        }
        if let Some(e) = &f.environment {
            add("environment = ?", e.clone().into());
        }
        if let Some(v) = f.verdict {
            add("verdict = ?", v.as_str().to_owned().into());
        }
        if let Some(s) = f.state {
            add("state = ?", s.as_str().to_owned().into());
        }
        if let Some(before) = f.before_seq {
            add("seq < ?", before.into());
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM deployments {filter} ORDER BY seq DESC LIMIT {}",
            f.limit + 1
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(err)?;
        let mut rows: Vec<(i64, Deployment)> = stmt
            .query_map(rusqlite::params_from_iter(values), row)
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let next = if rows.len() > f.limit {
            rows.truncate(f.limit);
            rows.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        Ok((rows.into_iter().map(|(_, d)| d).collect(), next))
    }

    /// Stores `incident` and its correlation (see [`incidents`](super::incidents)) in one
    /// transaction; the deployment ids and the rule that chose them.
    pub(crate) fn insert_incident(
        &self,
        id: &str,
        incident: &Incident,
    ) -> StoreResult<(Vec<String>, Option<Rule>)> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(err)?;
        let candidates: Vec<Candidate> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, repository, environment, correlation_id, created_at_ms, \
                     monitor_started_at_ms, monitor_ended_at_ms FROM deployments \
                     WHERE correlation_id IS ?1 AND ?1 IS NOT NULL OR repository IS ?2 AND ?2 IS NOT NULL",
                )
                .map_err(err)?;
            stmt.query_map(params![incident.correlation_id, incident.repository], |r| {
                Ok(Candidate {
                    id: r.get(0)?,
                    repository: r.get(1)?,
                    environment: r.get(2)?,
                    correlation_id: r.get(3)?,
                    created_at_ms: r.get::<_, i64>(4)? as u64,
                    monitor_started_at_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                    monitor_ended_at_ms: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?
        };
        let (ids, rule) = correlate(incident, &candidates);
        tx.execute(
            "INSERT INTO incidents (id, received_at_ms, time_ms, repository, environment, \
             correlation_id, incident) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                now_ms() as i64,
                incident.time_unix_ms as i64,
                incident.repository,
                incident.environment,
                incident.correlation_id,
                serde_json::to_string(incident).map_err(|e| e.to_string())?
            ],
        )
        .map_err(err)?;
        if let Some(rule) = rule {
            for d in &ids {
                tx.execute(
                    "INSERT INTO incident_deployments (incident_id, deployment_id, rule) VALUES (?1, ?2, ?3)",
                    params![id, d, rule.as_str()],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok((ids, rule))
    }

    /// The incidents correlated to deployment `id`, newest first: each incident's fields plus
    /// its `id`, `received_at_unix_ms` and the `rule` that correlated it.
    pub(crate) fn incidents_of(&self, id: &str) -> StoreResult<Vec<serde_json::Value>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT i.id, i.received_at_ms, i.incident, c.rule FROM incident_deployments c \
                 JOIN incidents i ON i.id = c.incident_id WHERE c.deployment_id = ?1 \
                 ORDER BY i.time_ms DESC, i.seq DESC",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([id], |r| {
                let incident: String = r.get(2)?;
                let mut v: serde_json::Value = serde_json::from_str(&incident).unwrap_or_default();
                v["id"] = serde_json::Value::String(r.get(0)?);
                v["received_at_unix_ms"] = r.get::<_, i64>(1)?.into();
                v["rule"] = serde_json::Value::String(r.get(3)?);
                Ok(v)
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The deployments of `repository` (+ `environment`, `None` matching deployments without
    /// one) created in `[from_ms, to_ms]`, oldest first, as the trends need them.
    pub(crate) fn trend_points(
        &self,
        repository: &str,
        environment: Option<&str>,
        from_ms: u64,
        to_ms: u64,
    ) -> StoreResult<Vec<Point>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, created_at_ms, monitor_ended_at_ms, verdict, \
                 json_extract(event, '$.event_metadata.' || ?5), session_id FROM deployments \
                 WHERE repository = ?1 AND environment IS ?2 AND created_at_ms BETWEEN ?3 AND ?4 \
                 ORDER BY created_at_ms, seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![
                    repository,
                    environment,
                    from_ms as i64,
                    to_ms as i64,
                    COMMIT_TIME_KEY
                ],
                |r| {
                    let verdict: Option<String> = r.get(3)?;
                    // Only the commit time is read out of the event (in SQLite: no event is
                    // parsed here).
                    let commit: serde_json::Value = match r.get_ref(4)? {
                        rusqlite::types::ValueRef::Integer(i) => i.into(),
                        rusqlite::types::ValueRef::Real(f) => f.into(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned().into()
                        }
                        _ => serde_json::Value::Null,
                    };
                    Ok(Point {
                        id: r.get(0)?,
                        created_at_unix_ms: r.get::<_, i64>(1)? as u64,
                        finished_at_unix_ms: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                        verdict: verdict.and_then(|v| {
                            serde_json::from_value(serde_json::Value::String(v)).ok()
                        }),
                        commit_time_unix_ms: commit_time_of(&commit),
                        session_id: r.get(5)?,
                        time_to_detect_ms: None,
                    })
                },
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn one(&self, filter: &str, params: impl rusqlite::Params) -> StoreResult<Option<Deployment>> {
        let sql = format!("SELECT {COLUMNS} FROM deployments {filter} ORDER BY seq DESC LIMIT 1");
        self.conn()
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(params, row).optional())
            .map(|o| o.map(|(_, d)| d))
            .map_err(err)
    }
}

fn log_event(conn: &Connection, id: &str, event: &DeploymentEvent, now: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO deployment_events (deployment_id, received_at_ms, status, event) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![id, now, event.status().as_str(), event.to_json()]))
    .map_err(err)?;
    Ok(())
}

const COLUMNS: &str = "seq, id, created_at_ms, updated_at_ms, repository, environment, commit_sha, \
    correlation_id, status, event, service, note, session_id, state, verdict, reason";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Deployment)> {
    let status: String = r.get(8)?;
    let event: String = r.get(9)?;
    let service: Option<String> = r.get(10)?;
    let verdict: Option<String> = r.get(14)?;
    Ok((
        r.get(0)?,
        Deployment {
            id: r.get(1)?,
            created_at_unix_ms: r.get::<_, i64>(2)? as u64,
            updated_at_unix_ms: r.get::<_, i64>(3)? as u64,
            repository: r.get(4)?,
            environment: r.get(5)?,
            commit_sha: r.get(6)?,
            correlation_id: r.get(7)?,
            status: DeploymentStatus::parse(&status).unwrap_or_default(),
            monitored: service.is_some(),
            service,
            note: r.get(11)?,
            session_id: r.get(12)?,
            state: State::parse(&r.get::<_, String>(13)?),
            verdict: verdict
                .and_then(|v| serde_json::from_value(serde_json::Value::String(v)).ok()),
            reason: r.get(15)?,
            event: serde_json::from_str(&event).unwrap_or_default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_forgotten_after_a_day() {
        let dir = std::env::temp_dir().join(format!("cased-serve-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("serve.db")).unwrap();
        let answer = |body: &str| StoredAnswer {
            request_hash: "h".into(),
            status: 201,
            body: body.into(),
        };
        let t0 = 1_800_000_000_000;
        store
            .keep_answer("key_a", "k", &answer("first"), t0)
            .unwrap();
        let seen = |at| {
            store
                .idempotent_answer("key_a", "k", at)
                .unwrap()
                .map(|a| a.body)
        };
        assert_eq!(seen(t0 + IDEMPOTENCY_TTL_MS).as_deref(), Some("first"));
        assert_eq!(seen(t0 + IDEMPOTENCY_TTL_MS + 1), None);
        // Keys are per caller.
        assert!(store.idempotent_answer("key_b", "k", t0).unwrap().is_none());
        // An expired key may be used again.
        let later = t0 + IDEMPOTENCY_TTL_MS + 1;
        store
            .keep_answer("key_a", "k", &answer("second"), later)
            .unwrap();
        assert_eq!(seen(later).as_deref(), Some("second"));
        assert_eq!(
            store.prune_idempotency(later + IDEMPOTENCY_TTL_MS).unwrap(),
            0
        );
        assert_eq!(
            store
                .prune_idempotency(later + IDEMPOTENCY_TTL_MS + 1)
                .unwrap(),
            1
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_schema_1_store_is_migrated_keeping_its_deployments() {
        let dir = std::env::temp_dir().join(format!("cased-serve-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("serve.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(&format!(
            "{SCHEMA} PRAGMA user_version = 1; INSERT INTO deployments (id, created_at_ms, \
             updated_at_ms, repository, environment, status, event, state) VALUES \
             ('dep_old', 1, 1, 'acme/shop', 'production', 'success', '{{}}', 'finished');"
        ))
        .unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        assert!(store.get("dep_old").unwrap().is_some());
        let incident = super::super::incidents::parse(
            &serde_json::json!({"title": "t", "repository": "acme/shop", "time": 5}),
            0,
        )
        .unwrap();
        let (ids, rule) = store.insert_incident("inc_1", &incident).unwrap();
        assert_eq!(
            (ids, rule),
            (vec!["dep_old".to_owned()], Some(Rule::LatestBefore))
        );
        assert_eq!(
            store.incidents_of("dep_old").unwrap()[0]["rule"],
            "latest_before"
        );
        let version: u32 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        std::fs::remove_dir_all(dir).ok();
    }
}
