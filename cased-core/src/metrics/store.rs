//! [`BaselineStore`]: per (repository, environment, metric), the window before each deployment
//! and each deployment's own samples, with whether the deployment turned out healthy.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Baseline, BaselineSource, Sample};
use crate::error::{Error, Result};

/// What a baseline is kept for: one metric of one repository in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BaselineKey {
    /// `owner/name` (or any name the caller uses).
    pub repository: String,
    /// `production`, `staging`... (empty when the event named none).
    pub environment: String,
    /// The metric.
    pub metric: String,
}

impl BaselineKey {
    /// A key.
    #[must_use]
    pub fn new(
        repository: impl Into<String>,
        environment: impl Into<String>,
        metric: impl Into<String>,
    ) -> Self {
        Self {
            repository: repository.into(),
            environment: environment.into(),
            metric: metric.into(),
        }
    }
}

/// Which window of a deployment samples belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Before the deployment started.
    PreDeploy,
    /// While the deployment was monitored.
    Deployment,
}

impl WindowKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::PreDeploy => "pre_deploy",
            Self::Deployment => "deployment",
        }
    }
}

/// Keeps baselines. Implementations must be safe to share between concurrent sessions of one
/// process (`Arc<dyn BaselineStore>`).
#[async_trait]
pub trait BaselineStore: fmt::Debug + Send + Sync {
    /// Appends samples of `key`'s metric to `deployment`'s window of `kind`.
    ///
    /// # Errors
    /// [`Error::Validation`] for values that are not finite; store errors as
    /// [`Error::Storage`].
    async fn record(
        &self,
        key: &BaselineKey,
        deployment: &str,
        kind: WindowKind,
        samples: &[Sample],
    ) -> Result<()>;

    /// Records how `deployment` of `repository` in `environment` ended.
    ///
    /// # Errors
    /// Store errors as [`Error::Storage`].
    async fn set_outcome(
        &self,
        repository: &str,
        environment: &str,
        deployment: &str,
        healthy: bool,
    ) -> Result<()>;

    /// The window recorded before `deployment`, if any.
    ///
    /// # Errors
    /// Store errors as [`Error::Storage`].
    async fn pre_deploy(&self, key: &BaselineKey, deployment: &str) -> Result<Option<Baseline>>;

    /// The deployment-window samples of the last `n` deployments marked healthy (most recent
    /// first), excluding `exclude`; `None` when there is none.
    ///
    /// # Errors
    /// Store errors as [`Error::Storage`].
    async fn last_healthy(
        &self,
        key: &BaselineKey,
        n: usize,
        exclude: Option<&str>,
    ) -> Result<Option<Baseline>>;
}

fn check_samples(samples: &[Sample]) -> Result<()> {
    match samples
        .iter()
        .position(|s| !s.value.is_finite() || !s.timestamp.is_finite())
    {
        Some(i) => Err(Error::invalid(
            format!("samples[{i}]"),
            "value and timestamp must be finite numbers",
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Default)]
struct Memory {
    seq: u64,
    /// (repository, environment, deployment) -> (sequence, healthy)
    deployments: HashMap<(String, String, String), (u64, Option<bool>)>,
    /// (key, deployment, kind) -> values
    samples: HashMap<(BaselineKey, String, WindowKind), Vec<f64>>,
}

/// A [`BaselineStore`] in memory (tests, short-lived processes).
#[derive(Debug, Default)]
pub struct MemoryBaselineStore {
    inner: Mutex<Memory>,
}

impl MemoryBaselineStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

fn touch(
    m: &mut Memory,
    repository: &str,
    environment: &str,
    deployment: &str,
) -> (u64, Option<bool>) {
    let k = (
        repository.to_owned(),
        environment.to_owned(),
        deployment.to_owned(),
    );
    if let Some(v) = m.deployments.get(&k) {
        return *v;
    }
    m.seq += 1;
    let v = (m.seq, None);
    m.deployments.insert(k, v);
    v
}

#[async_trait]
impl BaselineStore for MemoryBaselineStore {
    async fn record(
        &self,
        key: &BaselineKey,
        deployment: &str,
        kind: WindowKind,
        samples: &[Sample],
    ) -> Result<()> {
        check_samples(samples)?;
        let mut m = self.inner.lock().expect("baseline store lock");
        touch(&mut m, &key.repository, &key.environment, deployment);
        m.samples
            .entry((key.clone(), deployment.to_owned(), kind))
            .or_default()
            .extend(samples.iter().map(|s| s.value));
        Ok(())
    }

    async fn set_outcome(
        &self,
        repository: &str,
        environment: &str,
        deployment: &str,
        healthy: bool,
    ) -> Result<()> {
        let mut m = self.inner.lock().expect("baseline store lock");
        let (seq, _) = touch(&mut m, repository, environment, deployment);
        m.deployments.insert(
            (
                repository.to_owned(),
                environment.to_owned(),
                deployment.to_owned(),
            ),
            (seq, Some(healthy)),
        );
        Ok(())
    }

    async fn pre_deploy(&self, key: &BaselineKey, deployment: &str) -> Result<Option<Baseline>> {
        let m = self.inner.lock().expect("baseline store lock");
        Ok(m.samples
            .get(&(key.clone(), deployment.to_owned(), WindowKind::PreDeploy))
            .filter(|v| !v.is_empty())
            .map(|v| Baseline::new(BaselineSource::PreDeploy, v.clone())))
    }

    async fn last_healthy(
        &self,
        key: &BaselineKey,
        n: usize,
        exclude: Option<&str>,
    ) -> Result<Option<Baseline>> {
        let m = self.inner.lock().expect("baseline store lock");
        let mut healthy: Vec<(u64, &String)> = m
            .deployments
            .iter()
            .filter(|((r, e, d), (_, h))| {
                *r == key.repository
                    && *e == key.environment
                    && *h == Some(true)
                    && Some(d.as_str()) != exclude
            })
            .filter(|((_, _, d), _)| {
                m.samples
                    .contains_key(&(key.clone(), d.clone(), WindowKind::Deployment))
            })
            .map(|((_, _, d), (seq, _))| (*seq, d))
            .collect();
        healthy.sort_by_key(|h| std::cmp::Reverse(h.0));
        healthy.truncate(n);
        if healthy.is_empty() {
            return Ok(None);
        }
        let mut values = Vec::new();
        for (_, d) in &healthy {
            values.extend_from_slice(
                &m.samples[&(key.clone(), (*d).clone(), WindowKind::Deployment)],
            );
        }
        Ok(Some(Baseline::new(
            BaselineSource::LastHealthy {
                deployments: healthy.len(),
            },
            values,
        )))
    }
}

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBaselineStore;

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use rusqlite::{Connection, OptionalExtension, params};

    use super::{BaselineKey, BaselineStore, WindowKind, check_samples};
    use crate::error::{Error, Result};
    use crate::metrics::{Baseline, BaselineSource, Sample};

    /// The default [`BaselineStore`]: one SQLite file in WAL mode. One connection behind a
    /// mutex serves every session of the process; calls run on tokio's blocking pool.
    #[derive(Debug, Clone)]
    pub struct SqliteBaselineStore {
        conn: Arc<Mutex<Connection>>,
    }

    fn db_err(e: &rusqlite::Error) -> Error {
        Error::Storage(format!("baseline store: {e}"))
    }

    const SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            repository TEXT NOT NULL,
            environment TEXT NOT NULL,
            deployment TEXT NOT NULL,
            healthy INTEGER,
            UNIQUE (repository, environment, deployment)
        );
        CREATE TABLE IF NOT EXISTS samples (
            deployment_id INTEGER NOT NULL REFERENCES deployments(id),
            metric TEXT NOT NULL,
            window TEXT NOT NULL,
            ts REAL NOT NULL,
            value REAL NOT NULL,
            labels TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS samples_by_key ON samples (deployment_id, metric, window);
    ";

    impl SqliteBaselineStore {
        /// Opens (or creates) the store at `path`, in WAL mode.
        ///
        /// # Errors
        /// [`Error::Storage`] when the file cannot be opened or the schema created.
        pub fn open(path: impl AsRef<Path>) -> Result<Self> {
            let conn = Connection::open(path).map_err(|e| db_err(&e))?;
            Self::init(conn)
        }

        /// A store in memory (same SQL, nothing on disk).
        ///
        /// # Errors
        /// [`Error::Storage`] when SQLite fails.
        pub fn in_memory() -> Result<Self> {
            Self::init(Connection::open_in_memory().map_err(|e| db_err(&e))?)
        }

        fn init(conn: Connection) -> Result<Self> {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| db_err(&e))?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| db_err(&e))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(|e| db_err(&e))?;
            conn.execute_batch(SCHEMA).map_err(|e| db_err(&e))?;
            Ok(Self {
                conn: Arc::new(Mutex::new(conn)),
            })
        }

        /// The journal mode in force (`"wal"` for a file store).
        ///
        /// # Errors
        /// [`Error::Storage`] when SQLite fails.
        pub fn journal_mode(&self) -> Result<String> {
            let c = self.conn.lock().expect("sqlite lock");
            c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| db_err(&e))
        }

        async fn with<T: Send + 'static>(
            &self,
            f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        ) -> Result<T> {
            let conn = Arc::clone(&self.conn);
            tokio::task::spawn_blocking(move || {
                let mut c = conn.lock().expect("sqlite lock");
                f(&mut c)
            })
            .await
            .map_err(|e| Error::Storage(format!("baseline store task: {e}")))?
            .map_err(|e| db_err(&e))
        }
    }

    fn deployment_id(
        c: &Connection,
        repository: &str,
        environment: &str,
        deployment: &str,
    ) -> rusqlite::Result<i64> {
        c.execute(
            "INSERT OR IGNORE INTO deployments (repository, environment, deployment) VALUES (?1, ?2, ?3)",
            params![repository, environment, deployment],
        )?;
        c.query_row(
            "SELECT id FROM deployments WHERE repository = ?1 AND environment = ?2 AND deployment = ?3",
            params![repository, environment, deployment],
            |r| r.get(0),
        )
    }

    fn values(c: &Connection, id: i64, metric: &str, window: &str) -> rusqlite::Result<Vec<f64>> {
        let mut st = c.prepare_cached("SELECT value FROM samples WHERE deployment_id = ?1 AND metric = ?2 AND window = ?3 ORDER BY rowid")?;
        st.query_map(params![id, metric, window], |r| r.get(0))?
            .collect()
    }

    #[async_trait]
    impl BaselineStore for SqliteBaselineStore {
        async fn record(
            &self,
            key: &BaselineKey,
            deployment: &str,
            kind: WindowKind,
            samples: &[Sample],
        ) -> Result<()> {
            check_samples(samples)?;
            let key = key.clone();
            let deployment = deployment.to_owned();
            let rows: Vec<(f64, f64, String)> = samples
                .iter()
                .map(|s| {
                    (
                        s.timestamp,
                        s.value,
                        serde_json::to_string(&s.labels).unwrap_or_else(|_| "{}".into()),
                    )
                })
                .collect();
            self.with(move |c| {
                let tx = c.transaction()?;
                let id = deployment_id(&tx, &key.repository, &key.environment, &deployment)?;
                {
                    let mut st = tx.prepare_cached("INSERT INTO samples (deployment_id, metric, window, ts, value, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
                    for (ts, v, labels) in &rows {
                        st.execute(params![id, key.metric, kind.as_str(), ts, v, labels])?;
                    }
                }
                tx.commit()
            })
            .await
        }

        async fn set_outcome(
            &self,
            repository: &str,
            environment: &str,
            deployment: &str,
            healthy: bool,
        ) -> Result<()> {
            let (r, e, d) = (
                repository.to_owned(),
                environment.to_owned(),
                deployment.to_owned(),
            );
            self.with(move |c| {
                let id = deployment_id(c, &r, &e, &d)?;
                c.execute(
                    "UPDATE deployments SET healthy = ?1 WHERE id = ?2",
                    params![healthy, id],
                )?;
                Ok(())
            })
            .await
        }

        async fn pre_deploy(
            &self,
            key: &BaselineKey,
            deployment: &str,
        ) -> Result<Option<Baseline>> {
            let key = key.clone();
            let d = deployment.to_owned();
            self.with(move |c| {
                let id: Option<i64> = c
                    .query_row(
                        "SELECT id FROM deployments WHERE repository = ?1 AND environment = ?2 AND deployment = ?3",
                        params![key.repository, key.environment, d],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(id) = id else { return Ok(None) };
                let v = values(c, id, &key.metric, WindowKind::PreDeploy.as_str())?;
                Ok((!v.is_empty()).then(|| Baseline::new(BaselineSource::PreDeploy, v)))
            })
            .await
        }

        async fn last_healthy(
            &self,
            key: &BaselineKey,
            n: usize,
            exclude: Option<&str>,
        ) -> Result<Option<Baseline>> {
            let key = key.clone();
            let exclude = exclude.map(str::to_owned);
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.with(move |c| {
                let ids: Vec<i64> = {
                    let mut st = c.prepare_cached(
                        "SELECT d.id FROM deployments d
                         WHERE d.repository = ?1 AND d.environment = ?2 AND d.healthy = 1
                           AND (?3 IS NULL OR d.deployment <> ?3)
                           AND EXISTS (SELECT 1 FROM samples s WHERE s.deployment_id = d.id AND s.metric = ?4 AND s.window = 'deployment')
                         ORDER BY d.id DESC LIMIT ?5",
                    )?;
                    st.query_map(params![key.repository, key.environment, exclude, key.metric, n], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?
                };
                if ids.is_empty() {
                    return Ok(None);
                }
                let mut all = Vec::new();
                for id in &ids {
                    all.extend(values(c, *id, &key.metric, WindowKind::Deployment.as_str())?);
                }
                Ok(Some(Baseline::new(BaselineSource::LastHealthy { deployments: ids.len() }, all)))
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::at("latency", i as f64, *v))
            .collect()
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn an_unopenable_file_is_a_storage_error() {
        let dir = std::env::temp_dir().join(format!("cased-no-such-dir-{}", std::process::id()));
        let e = SqliteBaselineStore::open(dir.join("sub").join("baselines.db")).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Storage, "{e}");
        assert!(e.to_string().contains("baseline store"), "{e}");
    }

    async fn exercise(store: Arc<dyn BaselineStore>) {
        let key = BaselineKey::new("acme/web", "production", "latency");
        assert_eq!(store.last_healthy(&key, 3, None).await.unwrap(), None);
        store
            .record(&key, "d1", WindowKind::PreDeploy, &samples(&[1.0, 2.0]))
            .await
            .unwrap();
        store
            .record(&key, "d1", WindowKind::Deployment, &samples(&[10.0, 11.0]))
            .await
            .unwrap();
        store
            .set_outcome("acme/web", "production", "d1", true)
            .await
            .unwrap();
        store
            .record(&key, "d2", WindowKind::Deployment, &samples(&[20.0]))
            .await
            .unwrap();
        store
            .set_outcome("acme/web", "production", "d2", false)
            .await
            .unwrap();
        store
            .record(&key, "d3", WindowKind::Deployment, &samples(&[30.0, 31.0]))
            .await
            .unwrap();
        store
            .set_outcome("acme/web", "production", "d3", true)
            .await
            .unwrap();
        store
            .record(&key, "d4", WindowKind::Deployment, &samples(&[40.0]))
            .await
            .unwrap();
        store
            .set_outcome("acme/web", "production", "d4", true)
            .await
            .unwrap();
        // another environment does not leak in
        let staging = BaselineKey::new("acme/web", "staging", "latency");
        store
            .record(&staging, "s1", WindowKind::Deployment, &samples(&[99.0]))
            .await
            .unwrap();
        store
            .set_outcome("acme/web", "staging", "s1", true)
            .await
            .unwrap();

        let pre = store.pre_deploy(&key, "d1").await.unwrap().unwrap();
        assert_eq!(
            (pre.source.clone(), pre.values),
            (BaselineSource::PreDeploy, vec![1.0, 2.0])
        );
        assert_eq!(store.pre_deploy(&key, "d2").await.unwrap(), None);
        let b = store.last_healthy(&key, 2, None).await.unwrap().unwrap();
        assert_eq!(b.source, BaselineSource::LastHealthy { deployments: 2 });
        assert_eq!(b.values, [40.0, 30.0, 31.0]);
        let b = store
            .last_healthy(&key, 5, Some("d4"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            b.values,
            [30.0, 31.0, 10.0, 11.0],
            "unhealthy d2 skipped, d4 excluded"
        );
        assert_eq!(b.source.describe(), "the last 2 healthy deployments");
        let bad = [Sample::at("latency", 0.0, f64::NAN)];
        assert_eq!(
            store
                .record(&key, "d5", WindowKind::Deployment, &bad)
                .await
                .unwrap_err()
                .field_errors()[0]
                .field,
            "samples[0]"
        );
    }

    #[tokio::test]
    async fn memory_store_keeps_windows_and_healthy_deployments() {
        exercise(Arc::new(MemoryBaselineStore::new())).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_store_keeps_windows_and_healthy_deployments() {
        exercise(Arc::new(SqliteBaselineStore::in_memory().unwrap())).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_file_store_is_wal_and_safe_for_concurrent_sessions() {
        let dir = std::env::temp_dir().join(format!(
            "cased-baselines-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("baselines.sqlite");
        let store = SqliteBaselineStore::open(&path).unwrap();
        assert_eq!(store.journal_mode().unwrap(), "wal");
        let store: Arc<dyn BaselineStore> = Arc::new(store);
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let key = BaselineKey::new("acme/web", "production", format!("m{}", t % 2));
                for d in 0..10 {
                    let dep = format!("t{t}-d{d}");
                    let vals: Vec<Sample> = (0..20)
                        .map(|i| {
                            Sample::at(key.metric.clone(), f64::from(i), f64::from(t * 100 + d))
                        })
                        .collect();
                    store
                        .record(&key, &dep, WindowKind::Deployment, &vals)
                        .await
                        .unwrap();
                    store
                        .set_outcome("acme/web", "production", &dep, true)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let key = BaselineKey::new("acme/web", "production", "m0");
        let b = store.last_healthy(&key, 1000, None).await.unwrap().unwrap();
        assert_eq!(
            b.source,
            BaselineSource::LastHealthy { deployments: 40 },
            "4 tasks x 10 deployments on m0"
        );
        assert_eq!(b.values.len(), 800);
        // reopening the file sees the same data
        let again = SqliteBaselineStore::open(&path).unwrap();
        assert_eq!(
            again
                .last_healthy(&key, 3, None)
                .await
                .unwrap()
                .unwrap()
                .values
                .len(),
            60
        );
        drop(again);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
