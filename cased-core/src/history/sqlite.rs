//! The embedded history store: one SQLite file in WAL mode.
//!
//! Two connections: a writer behind a mutex (SQLite has one writer at a time anyway) and a
//! read-only reader behind another, so queries do not wait for writes (WAL readers see the last
//! commit). Every call runs on tokio's blocking pool. Writes are committed in groups: each
//! write joins a queue, and whichever call takes the writer runs every write waiting in one
//! transaction (each in its own savepoint, so a failing write undoes only itself) and commits
//! once; each caller's answer waits for that commit. Thousands of sessions starting at once
//! then share commits instead of queueing one commit each. The
//! schema is versioned with `PRAGMA user_version` and migrated in one immediate transaction
//! on open; a database written by a newer cased is refused, never altered.
//!
//! Durability: a committed write survives a crash of the process (WAL). With the default
//! `synchronous = NORMAL` a power loss may drop the last commits (never corrupting the file);
//! [`SqliteOptions::full_sync`] makes every commit wait for the disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AlertRecord, Bucket, DeploymentFilter, DeploymentRecord, DetectedBy, Detection, HistoryStore,
    StoredFinding, VerdictCounts, now_unix_ms,
};
use crate::error::{Error, Result};
use crate::event::DeploymentEvent;
use crate::severity::Severity;
use crate::update::{CheckResult, DeploymentInfo, Finding, Report, StatusUpdate, TickRecord};
use crate::verdict::Verdict;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append; never edit.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE deployments (
    session_id          TEXT PRIMARY KEY,
    correlation_id      TEXT NOT NULL,
    deployment_request  TEXT NOT NULL,
    repository          TEXT,
    environment         TEXT,
    commit_sha          TEXT,
    git_ref             TEXT,
    started_at_ms       INTEGER NOT NULL,
    duration_ms         REAL,
    verdict             TEXT,
    reason              TEXT,
    ended_by            TEXT,
    event_json          TEXT,
    report_json         TEXT
);
CREATE INDEX deployments_by_repo_env ON deployments (repository, environment, started_at_ms);
CREATE INDEX deployments_by_start ON deployments (started_at_ms);
CREATE INDEX deployments_by_correlation ON deployments (correlation_id);

CREATE TABLE ticks (
    session_id  TEXT NOT NULL REFERENCES deployments (session_id) ON DELETE CASCADE,
    tick        INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    elapsed_ms  REAL NOT NULL,
    late_ms     REAL,
    verdict     TEXT NOT NULL,
    PRIMARY KEY (session_id, tick)
) WITHOUT ROWID;

CREATE TABLE check_results (
    session_id  TEXT NOT NULL,
    tick        INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    status      TEXT NOT NULL,
    latency_ms  REAL NOT NULL,
    message     TEXT NOT NULL,
    PRIMARY KEY (session_id, tick, position),
    FOREIGN KEY (session_id, tick) REFERENCES ticks (session_id, tick) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX check_results_failed ON check_results (session_id, tick) WHERE status = 'fail';

CREATE TABLE findings (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES deployments (session_id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    tick           INTEGER,
    metric         TEXT NOT NULL,
    detector       TEXT NOT NULL,
    severity       TEXT NOT NULL,
    severity_rank  INTEGER NOT NULL,
    message        TEXT NOT NULL,
    finding_json   TEXT NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES deployments (session_id) ON DELETE CASCADE,
    dedup_key      TEXT NOT NULL,
    severity       TEXT NOT NULL,
    state          TEXT NOT NULL,
    title          TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    alert_json     TEXT NOT NULL
);
CREATE INDEX alerts_by_session ON alerts (session_id, created_at_ms);
CREATE INDEX alerts_by_dedup_key ON alerts (dedup_key);
",
    // 2: check evidence (JSON, NULL when the check gave none).
    r"ALTER TABLE check_results ADD COLUMN evidence TEXT;",
    // 3: the process a session belongs to and when it was last heard from, so a session whose
    // process was killed is found interrupted when the history is next opened.
    r"
ALTER TABLE deployments ADD COLUMN owner_host TEXT;
ALTER TABLE deployments ADD COLUMN owner_pid INTEGER;
ALTER TABLE deployments ADD COLUMN owner_started TEXT;
ALTER TABLE deployments ADD COLUMN last_seen_ms INTEGER;
ALTER TABLE deployments ADD COLUMN interrupted_at_ms INTEGER;
",
];

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// How the SQLite store opens its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Wait for the disk on every commit (`synchronous = FULL`): survives power loss, slower.
    /// Default `false` (`NORMAL`: survives a crash of the process).
    pub full_sync: bool,
    /// How long a write waits for another process holding the file (default 5 s).
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            full_sync: false,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The embedded [`HistoryStore`]: a SQLite file (or memory). Cheap to clone; every clone
/// shares the same connections.
#[derive(Clone)]
pub struct SqliteHistory {
    inner: Arc<Inner>,
}

/// A queued write: runs in the group's transaction and returns what to answer once it
/// committed; given the error instead when the transaction could not begin (then it answers).
type Job = Box<dyn FnOnce(std::result::Result<&Connection, String>) -> Option<Done> + Send>;
/// Answers a write's caller with the group's commit outcome.
type Done = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

struct Inner {
    writer: Mutex<Connection>,
    /// Writes waiting for the writer (group commit).
    pending: Mutex<Vec<Job>>,
    /// `None` for an in-memory database (one connection serves both).
    reader: Option<Mutex<Connection>>,
    path: Option<PathBuf>,
}

/// When the last clone goes, the read-only connection closes first and the writer moves the
/// write-ahead log into the database file (`wal_checkpoint(TRUNCATE)`): the `.db` file alone then
/// holds every session, which is what a CI job uploads. (Closed in the other order, the last
/// connection is the read-only one, which cannot checkpoint, and the log stays beside the file.)
impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.reader.take());
        if self.path.is_some() {
            let conn = lock(&self.writer);
            if let Err(e) = checkpoint(&conn) {
                tracing::warn!(error = %e, "history: the write-ahead log was not checkpointed");
            }
        }
    }
}

/// Moves every committed write from the log into the database file and empties the log.
fn checkpoint(conn: &Connection) -> Result<()> {
    let (busy, _log, _moved): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        return Err(Error::Storage(
            "the write-ahead log is in use by another connection; it was not checkpointed".into(),
        ));
    }
    Ok(())
}

impl std::fmt::Debug for SqliteHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHistory")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteHistory {
    /// Opens (creating it and its parent directory when missing) the history at `path`, with
    /// the default options, and migrates its schema.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened or created, is not a cased history,
    /// or was written by a newer version of cased.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &SqliteOptions::default())
    }

    /// Opens the history at `path` with `options`.
    ///
    /// # Errors
    /// As [`SqliteHistory::open`].
    pub fn open_with(path: impl AsRef<Path>, options: &SqliteOptions) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Storage(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(path)
            .map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
        configure(&writer, options)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Storage(format!(
                "{} cannot use WAL (journal mode {mode})",
                path.display()
            )));
        }
        migrate(&mut writer)?;
        mark_interrupted(&writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        configure(&reader, options)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                pending: Mutex::new(Vec::new()),
                reader: Some(Mutex::new(reader)),
                path: Some(path.to_owned()),
            }),
        })
    }

    /// A history kept in memory, gone when the last clone is dropped (tests, one-off runs).
    ///
    /// # Errors
    /// [`Error::Storage`] if SQLite cannot allocate it.
    pub fn in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn, &SqliteOptions::default())?;
        migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(conn),
                pending: Mutex::new(Vec::new()),
                reader: None,
                path: None,
            }),
        })
    }

    /// The file, or `None` in memory.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Moves every committed write from the write-ahead log (`history.db-wal`) into the database
    /// file and empties the log (`PRAGMA wal_checkpoint(TRUNCATE)`), so the `.db` file alone holds
    /// every session: call it before copying or uploading the file. It also happens when the last
    /// clone of the store is dropped. Does nothing in memory.
    ///
    /// # Errors
    /// [`Error::Storage`] when SQLite fails or another connection (another process) is reading
    /// the log at that moment.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.inner.path.is_none() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || checkpoint(&lock(&inner.writer))).await
    }

    /// The schema version of the open database.
    ///
    /// # Errors
    /// [`Error::Storage`] when it cannot be read.
    pub async fn schema_version(&self) -> Result<u32> {
        self.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .await
    }

    /// Runs `f` in a write transaction shared with the other writes waiting (see the module
    /// doc); its result once that transaction committed.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn: std::result::Result<&Connection, String>| {
            let conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    let _ = answer.send(Err(Error::Storage(e)));
                    return None;
                }
            };
            let out = in_savepoint(conn, f);
            Some(Box::new(move |committed| {
                let _ = answer.send(match committed {
                    Ok(()) => out,
                    Err(e) => Err(Error::Storage(e)),
                });
            }))
        });
        lock(&self.inner.pending).push(job);
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            inner.flush();
            Ok(())
        })
        .await?;
        answered
            .await
            .map_err(|_| Error::Storage("the history write did not finish".into()))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let conn = lock(inner.reader.as_ref().unwrap_or(&inner.writer));
            f(&conn)
        })
        .await
    }
}

impl Inner {
    /// Runs every queued write in one transaction and answers each; nothing to do when an
    /// earlier flush took this caller's write.
    fn flush(&self) {
        let mut conn = lock(&self.writer);
        let jobs = std::mem::take(&mut *lock(&self.pending));
        if jobs.is_empty() {
            return;
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let e = format!("history: {e}");
                for job in jobs {
                    job(Err(e.clone()));
                }
                return;
            }
        };
        let done: Vec<Done> = jobs.into_iter().filter_map(|job| job(Ok(&tx))).collect();
        let committed = tx.commit().map_err(|e| format!("history: {e}"));
        for d in done {
            d(committed.clone());
        }
    }
}

/// Runs `f` in a savepoint: a failing write undoes its own changes, not the group's.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.prepare_cached("SAVEPOINT write")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE write")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO write; RELEASE write");
            Err(e)
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("the history task did not finish: {e}")))?
}

/// A panic while holding the lock dropped its transaction (rolled back): the connection (or the
/// queue) is fine.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(
        None,
        "synchronous",
        if options.full_sync { "FULL" } else { "NORMAL" },
    )?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "the history database has schema version {version}, newer than this cased understands \
             ({SCHEMA_VERSION}); upgrade cased"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= version as usize)
    {
        tx.execute_batch(sql)
            .map_err(|e| Error::Storage(format!("migration to version {}: {e}", i + 1)))?;
        tracing::info!(version = i + 1, "history schema migrated");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

// ---- conversions -------------------------------------------------------------------------

/// The wire name of a unit enum (`"healthy"`, `"cooldown"`...).
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("a unit enum serializes to a string, got {other:?}"),
    }
}

fn parse<T: DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// JSON the writer stored, at any nesting depth.
fn parse_json<T: DeserializeOwned + Send>(s: &str) -> rusqlite::Result<T> {
    crate::deep_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Storage(format!("cannot serialize: {e}")))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn from_ms(v: f64) -> rusqlite::Result<Duration> {
    crate::duration::millis_to_duration(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Real, e.into())
    })
}

fn unix(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
        Severity::Emergency => 3,
    }
}

// ---- writes ------------------------------------------------------------------------------

fn insert_deployment(
    tx: &Connection,
    session_id: &str,
    info: &DeploymentInfo,
    git_ref: Option<&str>,
    started_at_ms: u64,
    event_json: Option<&str>,
) -> Result<()> {
    // Every write of a session says that its process is alive: it is the session's heartbeat
    // (and clears a mistaken `interrupted`).
    let owner = super::owner::current();
    tx.prepare_cached(
        "INSERT INTO deployments (session_id, correlation_id, deployment_request, repository, environment,
                                  commit_sha, git_ref, started_at_ms, event_json,
                                  owner_host, owner_pid, owner_started, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (session_id) DO UPDATE SET event_json = coalesce(event_json, excluded.event_json),
             owner_host = excluded.owner_host, owner_pid = excluded.owner_pid,
             owner_started = excluded.owner_started, last_seen_ms = excluded.last_seen_ms,
             interrupted_at_ms = NULL",
    )?
    .execute(params![
        session_id,
        info.correlation_id,
        info.deployment_request,
        info.repository,
        info.environment,
        info.commit_sha,
        git_ref,
        unix(started_at_ms),
        event_json,
        owner.host,
        owner.pid,
        owner.started,
        unix(now_unix_ms()),
    ])?;
    Ok(())
}

/// Inserts a tick; `overwrite` replaces what an earlier write said (the report is authoritative).
fn upsert_tick(
    tx: &Connection,
    session_id: &str,
    tick: &TickRecord,
    late: Option<Duration>,
    overwrite: bool,
) -> Result<()> {
    let conflict = if overwrite {
        "DO UPDATE SET phase = excluded.phase, elapsed_ms = excluded.elapsed_ms, late_ms = excluded.late_ms,
                       verdict = excluded.verdict"
    } else {
        "DO NOTHING"
    };
    tx.prepare_cached(&format!(
        "INSERT INTO ticks (session_id, tick, phase, elapsed_ms, late_ms, verdict) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (session_id, tick) {conflict}"
    ))?
    .execute(params![session_id, tick.tick, name(&tick.phase), ms(tick.elapsed), late.map(ms), tick.verdict.as_str()])?;
    let conflict = if overwrite {
        "DO UPDATE SET name = excluded.name, category = excluded.category, status = excluded.status,
                       latency_ms = excluded.latency_ms, message = excluded.message, evidence = excluded.evidence"
    } else {
        "DO NOTHING"
    };
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO check_results (session_id, tick, position, name, category, status, latency_ms, message, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (session_id, tick, position) {conflict}"
    ))?;
    for (i, c) in tick.checks.iter().enumerate() {
        stmt.execute(params![
            session_id,
            tick.tick,
            i as i64,
            &*c.name,
            name(&c.category),
            c.status.as_str(),
            ms(c.latency),
            c.message,
            (!c.evidence.is_null()).then(|| c.evidence.to_string())
        ])?;
    }
    Ok(())
}

fn insert_finding(
    tx: &Connection,
    session_id: &str,
    seq: u32,
    tick: Option<u32>,
    f: &Finding,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO findings (id, session_id, seq, tick, metric, detector, severity, severity_rank, message, finding_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        format!("{session_id}:{seq}"),
        session_id,
        seq,
        tick,
        f.metric,
        f.detector,
        f.severity.as_str(),
        severity_rank(f.severity),
        f.message,
        to_json(f)?,
    ])?;
    Ok(())
}

fn write_update(tx: &Connection, u: &StatusUpdate) -> Result<()> {
    let started = now_unix_ms().saturating_sub(u.elapsed.as_millis() as u64);
    insert_deployment(tx, &u.session_id, &u.deployment, None, started, None)?;
    let is_tick = u.phase != crate::update::Phase::Finished && u.tick > 0;
    if is_tick {
        let record = TickRecord {
            tick: u.tick,
            phase: u.phase,
            elapsed: u.elapsed,
            late: Duration::ZERO,
            checks: u.checks.clone(),
            verdict: u.verdict,
        };
        upsert_tick(tx, &u.session_id, &record, None, false)?;
    }
    if !u.findings.is_empty() {
        let known: u32 = tx.query_row(
            "SELECT count(*) FROM findings WHERE session_id = ?1",
            [&*u.session_id],
            |r| r.get(0),
        )?;
        let tick = is_tick.then_some(u.tick);
        for (i, f) in u.findings.iter().enumerate() {
            insert_finding(tx, &u.session_id, known + 1 + i as u32, tick, f)?;
        }
    }
    Ok(())
}

fn write_report(tx: &Connection, r: &Report) -> Result<()> {
    let id: &str = &r.session_id;
    let info = DeploymentInfo::of(&r.event, id);
    let event_json = r.event.to_json();
    insert_deployment(
        tx,
        id,
        &info,
        r.event.git_ref(),
        r.started_at_unix_ms,
        Some(&event_json),
    )?;
    tx.prepare_cached(
        "UPDATE deployments SET started_at_ms = ?2, git_ref = ?3, duration_ms = ?4, verdict = ?5, reason = ?6,
                ended_by = ?7, event_json = ?8, report_json = ?9
         WHERE session_id = ?1",
    )?
    .execute(params![
        id,
        unix(r.started_at_unix_ms),
        r.event.git_ref(),
        ms(r.duration),
        r.verdict.as_str(),
        r.reason,
        name(&r.ended_by),
        event_json,
        r.to_json(),
    ])?;
    for t in &r.ticks {
        upsert_tick(tx, id, t, Some(t.late), true)?;
    }
    // Keep the tick at which each finding was raised: match the report's findings, in order,
    // with those the updates recorded.
    let mut known: Vec<(Option<u32>, Finding)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT tick, finding_json FROM findings WHERE session_id = ?1 ORDER BY seq",
        )?;
        stmt.query_map([id], |row| {
            Ok((
                row.get(0)?,
                parse_json::<Finding>(&row.get::<_, String>(1)?)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    tx.execute("DELETE FROM findings WHERE session_id = ?1", [id])?;
    for (i, f) in r.findings.iter().enumerate() {
        let tick = known
            .iter()
            .position(|(_, k)| k == f)
            .and_then(|p| known.remove(p).0);
        insert_finding(tx, id, i as u32 + 1, tick, f)?;
    }
    Ok(())
}

fn write_alert(tx: &Connection, session_id: &str, a: &AlertRecord) -> Result<()> {
    let exists: bool = tx
        .query_row(
            "SELECT 1 FROM deployments WHERE session_id = ?1",
            [session_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Err(Error::Storage(format!(
            "no session {session_id:?} in history; begin it before its alerts"
        )));
    }
    tx.prepare_cached(
        "INSERT INTO alerts (id, session_id, dedup_key, severity, state, title, created_at_ms, updated_at_ms, alert_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET dedup_key = excluded.dedup_key, severity = excluded.severity,
             state = excluded.state, title = excluded.title, updated_at_ms = excluded.updated_at_ms,
             alert_json = excluded.alert_json
         WHERE alerts.session_id = excluded.session_id",
    )?
    .execute(params![
        a.id,
        session_id,
        a.dedup_key,
        a.severity.as_str(),
        a.state,
        a.title,
        unix(a.created_at_unix_ms),
        unix(a.updated_at_unix_ms),
        to_json(a)?,
    ])?;
    Ok(())
}

// ---- reads -------------------------------------------------------------------------------

const DEPLOYMENT_COLUMNS: &str =
    "d.session_id, d.correlation_id, d.deployment_request, d.repository, d.environment,
    d.commit_sha, d.git_ref, d.started_at_ms, d.duration_ms, d.verdict, d.reason, d.ended_by,
    (SELECT t.verdict FROM ticks t WHERE t.session_id = d.session_id ORDER BY t.tick DESC LIMIT 1),
    (SELECT count(*) FROM ticks t WHERE t.session_id = d.session_id),
    (SELECT count(*) FROM findings f WHERE f.session_id = d.session_id),
    (SELECT count(*) FROM alerts a WHERE a.session_id = d.session_id),
    d.last_seen_ms, d.interrupted_at_ms";

fn deployment_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeploymentRecord> {
    let opt = |i: usize| row.get::<_, Option<String>>(i);
    Ok(DeploymentRecord {
        session_id: row.get(0)?,
        correlation_id: row.get(1)?,
        deployment_request: row.get(2)?,
        repository: opt(3)?,
        environment: opt(4)?,
        commit_sha: opt(5)?,
        git_ref: opt(6)?,
        started_at_unix_ms: row.get::<_, i64>(7)?.max(0) as u64,
        duration: row.get::<_, Option<f64>>(8)?.map(from_ms).transpose()?,
        verdict: opt(9)?.as_deref().map(parse).transpose()?,
        reason: opt(10)?,
        ended_by: opt(11)?.as_deref().map(parse).transpose()?,
        last_tick_verdict: opt(12)?.as_deref().map(parse).transpose()?,
        ticks: row.get(13)?,
        findings: row.get(14)?,
        alerts: row.get(15)?,
        last_seen_unix_ms: row.get::<_, Option<i64>>(16)?.map(|v| v.max(0) as u64),
        interrupted_at_unix_ms: row.get::<_, Option<i64>>(17)?.map(|v| v.max(0) as u64),
    })
}

/// Marks as interrupted every session without a verdict whose process, on this host, is gone
/// (killed, crashed): it will never write its verdict. Its reason says when it was last seen.
fn mark_interrupted(conn: &Connection) -> Result<()> {
    use super::owner::{Liveness, liveness};
    // (session, host, pid, process start, last seen)
    type Candidate = (String, String, u32, Option<String>, Option<i64>);
    let candidates: Vec<Candidate> = conn
        .prepare(
            "SELECT session_id, owner_host, owner_pid, owner_started, last_seen_ms FROM deployments
             WHERE verdict IS NULL AND interrupted_at_ms IS NULL
               AND owner_host IS NOT NULL AND owner_pid IS NOT NULL",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let now = now_unix_ms();
    for (id, host, pid, started, last_seen) in candidates {
        if liveness(&host, pid, started.as_deref()) != Liveness::Gone {
            continue;
        }
        let seen = last_seen.map_or_else(
            || "never".to_owned(),
            |ms| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
                )
                .to_string()
            },
        );
        let reason = format!(
            "interrupted: its process (pid {pid}) ended without a verdict; last seen {seen}"
        );
        tracing::info!(session = %id, pid, last_seen = %seen, "history: a session's process is gone; marked interrupted");
        conn.execute(
            "UPDATE deployments SET interrupted_at_ms = ?2, reason = ?3
             WHERE session_id = ?1 AND verdict IS NULL",
            params![id, unix(now), reason],
        )?;
    }
    Ok(())
}

/// `WHERE ...` for a filter, with its parameters.
fn where_clause(f: &DeploymentFilter) -> (String, Vec<SqlValue>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    let mut eq = |col: &str, v: Option<SqlValue>| {
        if let Some(v) = v {
            args.push(v);
            conds.push(format!("{col} ?{}", args.len()));
        }
    };
    eq("d.repository =", f.repository.clone().map(SqlValue::Text));
    eq("d.environment =", f.environment.clone().map(SqlValue::Text));
    eq(
        "d.correlation_id =",
        f.correlation_id.clone().map(SqlValue::Text),
    );
    eq(
        "d.verdict =",
        f.verdict.map(|v| SqlValue::Text(v.as_str().to_owned())),
    );
    eq(
        "d.started_at_ms >=",
        f.since_unix_ms.map(|v| SqlValue::Integer(unix(v))),
    );
    eq(
        "d.started_at_ms <",
        f.until_unix_ms.map(|v| SqlValue::Integer(unix(v))),
    );
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (clause, args)
}

fn query_deployments(
    c: &Connection,
    sql_tail: &str,
    args: Vec<SqlValue>,
) -> Result<Vec<DeploymentRecord>> {
    let sql = format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments d {sql_tail}");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), deployment_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn read_ticks(c: &Connection, session_id: &str) -> Result<Vec<TickRecord>> {
    let mut ticks: Vec<TickRecord> = {
        let mut stmt = c.prepare_cached(
            "SELECT tick, phase, elapsed_ms, late_ms, verdict FROM ticks WHERE session_id = ?1 ORDER BY tick",
        )?;
        stmt.query_map([session_id], |r| {
            Ok(TickRecord {
                tick: r.get(0)?,
                phase: parse(&r.get::<_, String>(1)?)?,
                elapsed: from_ms(r.get(2)?)?,
                late: from_ms(r.get::<_, Option<f64>>(3)?.unwrap_or(0.0))?,
                checks: Vec::new(),
                verdict: parse(&r.get::<_, String>(4)?)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut stmt = c.prepare_cached(
        "SELECT tick, name, category, status, latency_ms, message, evidence FROM check_results WHERE session_id = ?1
         ORDER BY tick, position",
    )?;
    let rows = stmt.query_map([session_id], |r| {
        Ok((
            r.get::<_, u32>(0)?,
            CheckResult {
                name: r.get::<_, String>(1)?.into(),
                category: parse(&r.get::<_, String>(2)?)?,
                status: parse(&r.get::<_, String>(3)?)?,
                latency: from_ms(r.get(4)?)?,
                message: r.get(5)?,
                evidence: r
                    .get::<_, Option<String>>(6)?
                    .and_then(|t| crate::deep_json::from_str(&t).ok())
                    .unwrap_or_default(),
            },
        ))
    })?;
    let mut i = 0;
    for row in rows {
        let (tick, check) = row?;
        while i < ticks.len() && ticks[i].tick < tick {
            i += 1;
        }
        if let Some(t) = ticks.get_mut(i).filter(|t| t.tick == tick) {
            t.checks.push(check);
        }
    }
    Ok(ticks)
}

fn read_findings(c: &Connection, session_id: &str) -> Result<Vec<StoredFinding>> {
    let mut stmt = c.prepare_cached(
        "SELECT f.id, f.session_id, f.seq, f.tick, t.elapsed_ms, f.finding_json FROM findings f
         LEFT JOIN ticks t ON t.session_id = f.session_id AND t.tick = f.tick
         WHERE f.session_id = ?1 ORDER BY f.seq",
    )?;
    let rows = stmt.query_map([session_id], |r| {
        Ok(StoredFinding {
            id: r.get(0)?,
            session_id: r.get(1)?,
            seq: r.get(2)?,
            tick: r.get(3)?,
            elapsed: r.get::<_, Option<f64>>(4)?.map(from_ms).transpose()?,
            finding: parse_json(&r.get::<_, String>(5)?)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn read_alerts(c: &Connection, session_id: &str) -> Result<Vec<AlertRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT alert_json FROM alerts WHERE session_id = ?1 ORDER BY created_at_ms, id",
    )?;
    let rows = stmt.query_map([session_id], |r| parse_json(&r.get::<_, String>(0)?))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const DAY_MS: i64 = 86_400_000;

fn verdict_counts(
    c: &Connection,
    filter: &DeploymentFilter,
    bucket: Bucket,
) -> Result<Vec<VerdictCounts>> {
    let (clause, args) = where_clause(filter);
    let key = match bucket {
        Bucket::Day => "d.started_at_ms / 86400000",
        // 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
        Bucket::Week => "(d.started_at_ms / 86400000 + 3) / 7",
    };
    let sql = format!(
        "SELECT {key} AS b, d.verdict, count(*) FROM deployments d {clause} GROUP BY b, d.verdict ORDER BY b"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, u32>(2)?,
        ))
    })?;
    let mut out: Vec<(i64, VerdictCounts)> = Vec::new();
    for row in rows {
        let (b, verdict, n) = row?;
        if out.last().is_none_or(|(k, _)| *k != b) {
            let start_day = match bucket {
                Bucket::Day => b,
                Bucket::Week => b * 7 - 3,
            };
            let start = (start_day * DAY_MS).max(0) as u64;
            out.push((
                b,
                VerdictCounts {
                    start_unix_ms: start,
                    ..Default::default()
                },
            ));
        }
        let v = &mut out.last_mut().expect("pushed above").1;
        match verdict.as_deref().map(parse::<Verdict>).transpose()? {
            Some(Verdict::Healthy) => v.healthy += n,
            Some(Verdict::Degraded) => v.degraded += n,
            Some(Verdict::Unhealthy) => v.unhealthy += n,
            Some(Verdict::Inconclusive) => v.inconclusive += n,
            None => v.unfinished += n,
        }
        v.total += n;
    }
    Ok(out
        .into_iter()
        .map(|(_, mut v)| {
            let ok = v.healthy + v.degraded;
            let conclusive = ok + v.unhealthy;
            v.success_rate = (conclusive > 0).then(|| f64::from(ok) / f64::from(conclusive));
            v
        })
        .collect())
}

fn time_to_detect(c: &Connection, filter: &DeploymentFilter) -> Result<Vec<Detection>> {
    let (clause, args) = where_clause(filter);
    let sql = format!(
        "SELECT d.session_id, d.started_at_ms,
            (SELECT f.tick FROM findings f JOIN ticks t ON t.session_id = f.session_id AND t.tick = f.tick
              WHERE f.session_id = d.session_id AND f.severity_rank >= 2 ORDER BY f.tick, f.seq LIMIT 1) AS ft,
            (SELECT min(c.tick) FROM check_results c WHERE c.session_id = d.session_id AND c.status = 'fail') AS tt
         FROM deployments d {clause} ORDER BY d.started_at_ms, d.session_id"
    );
    let candidates: Vec<(String, i64, Option<u32>, Option<u32>)> = {
        let mut stmt = c.prepare_cached(&sql)?;
        stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut elapsed =
        c.prepare_cached("SELECT elapsed_ms FROM ticks WHERE session_id = ?1 AND tick = ?2")?;
    let mut out = Vec::new();
    for (session_id, started, finding_tick, failed_tick) in candidates {
        let (tick, by) = match (finding_tick, failed_tick) {
            (Some(t), _) => (t, DetectedBy::CriticalFinding),
            (None, Some(t)) => (t, DetectedBy::FailedTick),
            (None, None) => continue,
        };
        let ms: f64 = elapsed.query_row(params![session_id, tick], |r| r.get(0))?;
        out.push(Detection {
            session_id,
            started_at_unix_ms: started.max(0) as u64,
            time_to_detect: from_ms(ms)?,
            detected_by: by,
            tick,
        });
    }
    Ok(out)
}

#[async_trait::async_trait]
impl HistoryStore for SqliteHistory {
    async fn begin_session(
        &self,
        session_id: &str,
        event: &DeploymentEvent,
        started_at_unix_ms: u64,
    ) -> Result<()> {
        let session_id = session_id.to_owned();
        let info = DeploymentInfo::of(event, &session_id);
        let git_ref = event.git_ref().map(str::to_owned);
        let event_json = event.to_json();
        self.write(move |tx| {
            insert_deployment(
                tx,
                &session_id,
                &info,
                git_ref.as_deref(),
                started_at_unix_ms,
                Some(&event_json),
            )
        })
        .await
    }

    async fn record_update(&self, update: &StatusUpdate) -> Result<()> {
        let update = update.clone();
        self.write(move |tx| write_update(tx, &update)).await
    }

    async fn record_alert(&self, session_id: &str, alert: &AlertRecord) -> Result<()> {
        let (session_id, alert) = (session_id.to_owned(), alert.clone());
        self.write(move |tx| write_alert(tx, &session_id, &alert))
            .await
    }

    async fn record_report(&self, report: &Report) -> Result<()> {
        let report = report.clone();
        self.write(move |tx| write_report(tx, &report)).await
    }

    async fn deployments(&self, filter: &DeploymentFilter) -> Result<Vec<DeploymentRecord>> {
        let (clause, mut args) = where_clause(filter);
        let mut tail = format!("{clause} ORDER BY d.started_at_ms DESC, d.session_id DESC");
        if let Some(n) = filter.limit {
            args.push(SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
            tail.push_str(&format!(" LIMIT ?{}", args.len()));
        }
        self.read(move |c| query_deployments(c, &tail, args)).await
    }

    async fn deployment(&self, session_id: &str) -> Result<Option<DeploymentRecord>> {
        let args = vec![SqlValue::Text(session_id.to_owned())];
        let rows = self
            .read(move |c| query_deployments(c, "WHERE d.session_id = ?1", args))
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn report(&self, session_id: &str) -> Result<Option<Report>> {
        let id = session_id.to_owned();
        self.read(move |c| {
            let json: Option<Option<String>> = c
                .query_row(
                    "SELECT report_json FROM deployments WHERE session_id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?;
            json.flatten()
                .map(|j| {
                    Report::from_json(&j)
                        .map_err(|e| Error::Storage(format!("stored report of {id}: {e}")))
                })
                .transpose()
        })
        .await
    }

    async fn event(&self, session_id: &str) -> Result<Option<DeploymentEvent>> {
        let id = session_id.to_owned();
        self.read(move |c| {
            let json: Option<Option<String>> = c
                .query_row(
                    "SELECT event_json FROM deployments WHERE session_id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?;
            json.flatten()
                .map(|j| {
                    crate::deep_json::from_str::<serde_json::Value>(&j)
                        .map_err(|e| Error::Storage(format!("stored event of {id}: {e}")))
                        .and_then(|v| {
                            DeploymentEvent::from_value(v)
                                .map_err(|e| Error::Storage(format!("stored event of {id}: {e}")))
                        })
                })
                .transpose()
        })
        .await
    }

    async fn ticks(&self, session_id: &str) -> Result<Vec<TickRecord>> {
        let id = session_id.to_owned();
        self.read(move |c| read_ticks(c, &id)).await
    }

    async fn findings(&self, session_id: &str) -> Result<Vec<StoredFinding>> {
        let id = session_id.to_owned();
        self.read(move |c| read_findings(c, &id)).await
    }

    async fn alerts(&self, session_id: &str) -> Result<Vec<AlertRecord>> {
        let id = session_id.to_owned();
        self.read(move |c| read_alerts(c, &id)).await
    }

    async fn verdict_counts(
        &self,
        filter: &DeploymentFilter,
        bucket: Bucket,
    ) -> Result<Vec<VerdictCounts>> {
        let filter = filter.clone();
        self.read(move |c| verdict_counts(c, &filter, bucket)).await
    }

    async fn time_to_detect(&self, filter: &DeploymentFilter) -> Result<Vec<Detection>> {
        let filter = filter.clone();
        self.read(move |c| time_to_detect(c, &filter)).await
    }

    async fn deployment_of_finding(&self, finding_id: &str) -> Result<Option<DeploymentRecord>> {
        let args = vec![SqlValue::Text(finding_id.to_owned())];
        let tail = "WHERE d.session_id = (SELECT session_id FROM findings WHERE id = ?1)";
        Ok(self
            .read(move |c| query_deployments(c, tail, args))
            .await?
            .into_iter()
            .next())
    }

    async fn deployment_of_alert(&self, alert_id: &str) -> Result<Option<DeploymentRecord>> {
        let args = vec![SqlValue::Text(alert_id.to_owned())];
        let tail = "WHERE d.session_id = (SELECT session_id FROM alerts WHERE id = ?1)";
        Ok(self
            .read(move |c| query_deployments(c, tail, args))
            .await?
            .into_iter()
            .next())
    }

    async fn prune(&self, before_unix_ms: u64) -> Result<u64> {
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM deployments WHERE started_at_ms < ?1",
                [unix(before_unix_ms)],
            )? as u64)
        })
        .await
    }
}
