//! The SQLite history store: round trips, every query on fixture data with known answers,
//! concurrent writers, and what survives an interrupted write or a killed process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cased_core::history::{
    AlertRecord, Bucket, DeploymentFilter, DetectedBy, DetectionSummary, HistoryStore,
    SCHEMA_VERSION, SqliteHistory, VerdictCounts,
};
use cased_core::record_session;
use cased_core::{
    CheckCategory, CheckOutcome, CheckResult, CheckStatus, Counters, DeploymentEvent,
    DeploymentInfo, DeploymentStatus, EndReason, ErrorKind, Finding, FnCheck, Monitor,
    MonitorConfig, Phase, Report, ScheduleConfig, Severity, StatusUpdate, TickRecord, Verdict,
};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cased-history-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            fastrand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("history.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// 2024-01-01T00:00:00Z, a Monday.
const JAN1: u64 = 1_704_067_200_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn event(repo: &str, env: &str, correlation: &str) -> DeploymentEvent {
    DeploymentEvent::builder(format!("Deploy {correlation}"))
        .repository(repo)
        .environment(env)
        .correlation_id(correlation)
        .commit_sha("abc1234")
        .git_ref("refs/heads/main")
        .status(DeploymentStatus::Running)
        .build()
        .unwrap()
}

fn check(name: &str, status: CheckStatus, latency_ms: u64) -> CheckResult {
    CheckResult {
        name: name.into(),
        category: CheckCategory::Endpoint,
        status,
        latency: Duration::from_millis(latency_ms),
        message: format!("{name} said {status}"),
        evidence: if status == CheckStatus::Fail {
            serde_json::json!({"status": 503, "expected": ["2xx"]})
        } else {
            serde_json::Value::Null
        },
    }
}

fn finding(metric: &str, severity: Severity) -> Finding {
    Finding::new(
        metric,
        "baseline",
        severity,
        format!("{metric} is worse than before ({severity})"),
    )
}

/// One fixture deployment: its ticks (elapsed seconds, check status) and findings per tick.
struct Fixture {
    id: &'static str,
    repo: &'static str,
    env: &'static str,
    started: u64,
    ticks: Vec<(u64, CheckStatus)>,
    findings: Vec<(u32, Finding)>,
    verdict: Option<Verdict>,
}

impl Fixture {
    fn new(
        id: &'static str,
        repo: &'static str,
        env: &'static str,
        started: u64,
        verdict: Option<Verdict>,
    ) -> Self {
        let ticks = vec![
            (0, CheckStatus::Pass),
            (10, CheckStatus::Pass),
            (40, CheckStatus::Pass),
        ];
        Self {
            id,
            repo,
            env,
            started,
            ticks,
            findings: Vec::new(),
            verdict,
        }
    }

    fn event(&self) -> DeploymentEvent {
        event(self.repo, self.env, self.id)
    }

    fn tick_records(&self) -> Vec<TickRecord> {
        self.ticks
            .iter()
            .enumerate()
            .map(|(i, (s, status))| TickRecord {
                tick: i as u32 + 1,
                phase: Phase::Active,
                elapsed: Duration::from_secs(*s),
                late: Duration::from_millis(i as u64),
                checks: vec![
                    check("web", *status, 100 + i as u64),
                    check("db", CheckStatus::Pass, 5),
                ],
                verdict: if *status == CheckStatus::Fail {
                    Verdict::Unhealthy
                } else {
                    Verdict::Healthy
                },
            })
            .collect()
    }

    fn updates(&self) -> Vec<StatusUpdate> {
        let info = Arc::new(DeploymentInfo {
            deployment_request: format!("Deploy {}", self.id),
            repository: Some(self.repo.into()),
            commit_sha: Some("abc1234".into()),
            environment: Some(self.env.into()),
            correlation_id: self.id.into(),
        });
        self.tick_records()
            .into_iter()
            .map(|t| StatusUpdate {
                session_id: self.id.into(),
                deployment: Arc::clone(&info),
                phase: t.phase,
                tick: t.tick,
                elapsed: t.elapsed + Duration::from_millis(3),
                checks: t.checks,
                findings: self
                    .findings
                    .iter()
                    .filter(|(k, _)| *k == t.tick)
                    .map(|(_, f)| f.clone())
                    .collect(),
                verdict: t.verdict,
                reason: "so far".into(),
                next_tick_in: Some(Duration::from_secs(10)),
                source_errors: Vec::new(),
            })
            .collect()
    }

    fn report(&self, verdict: Verdict) -> Report {
        let ticks = self.tick_records();
        Report {
            session_id: self.id.into(),
            event: self.event(),
            verdict,
            reason: format!("fixture {}", self.id),
            ended_by: if verdict == Verdict::Unhealthy {
                EndReason::Unhealthy
            } else {
                EndReason::CooldownElapsed
            },
            started_at_unix_ms: self.started,
            duration: Duration::from_secs(60),
            cooldown_started: None,
            extended: false,
            counters: Counters {
                measured_ticks: ticks.len() as u32,
                ..Default::default()
            },
            ticks,
            findings: self.findings.iter().map(|(_, f)| f.clone()).collect(),
            metrics: BTreeMap::new(),
            rollback: None,
            alerts: Vec::new(),
            alert_failures: Vec::new(),
            alert_retries: Vec::new(),
            no_data: Vec::new(),
            baselines: BTreeMap::new(),
            notes: Vec::new(),
            changes: vec![cased_core::ChangePoint {
                metric: "api.latency_ms".into(),
                at_unix_ms: self.started + 40_000,
                earliest_unix_ms: self.started + 30_000,
                latest_unix_ms: self.started + 50_000,
                after_start_ms: 40_000,
                before: 120.0,
                after: 180.0,
                n: 12,
                message: "api.latency_ms rose from 120 to 180 at ... ± 10s, 40s after the rollout started."
                    .into(),
            }],
        }
    }

    async fn write(&self, store: &dyn HistoryStore) {
        store
            .begin_session(self.id, &self.event(), self.started)
            .await
            .unwrap();
        for u in self.updates() {
            store.record_update(&u).await.unwrap();
        }
        if let Some(v) = self.verdict {
            store.record_report(&self.report(v)).await.unwrap();
        }
    }
}

fn fixtures() -> Vec<Fixture> {
    use CheckStatus::{Fail, Pass};
    let mut b = Fixture::new(
        "B",
        "acme/shop",
        "prod",
        JAN1 + DAY + 9 * HOUR,
        Some(Verdict::Unhealthy),
    );
    b.ticks = vec![(0, Pass), (10, Pass), (40, Fail)];
    b.findings = vec![
        (2, finding("latency_ms", Severity::Warning)),
        (3, finding("error_rate", Severity::Critical)),
    ];
    let mut c = Fixture::new(
        "C",
        "acme/shop",
        "staging",
        JAN1 + DAY + 12 * HOUR,
        Some(Verdict::Unhealthy),
    );
    c.ticks = vec![(0, Pass), (10, Fail)];
    vec![
        Fixture::new(
            "A",
            "acme/shop",
            "prod",
            JAN1 + 10 * HOUR,
            Some(Verdict::Healthy),
        ),
        b,
        c,
        Fixture::new(
            "E",
            "acme/api",
            "prod",
            JAN1 + 2 * DAY,
            Some(Verdict::Healthy),
        ),
        // Sunday 2024-01-07, still the first week.
        Fixture::new(
            "H",
            "acme/shop",
            "prod",
            JAN1 + 6 * DAY + 23 * HOUR,
            Some(Verdict::Healthy),
        ),
        Fixture::new(
            "D",
            "acme/shop",
            "prod",
            JAN1 + 7 * DAY + 8 * HOUR,
            Some(Verdict::Degraded),
        ),
        Fixture::new(
            "F",
            "acme/shop",
            "prod",
            JAN1 + 8 * DAY,
            Some(Verdict::Inconclusive),
        ),
        // Never finished: begun and one tick written, then nothing.
        Fixture::new("G", "acme/shop", "prod", JAN1 + 9 * DAY, None),
    ]
}

async fn fixture_store() -> SqliteHistory {
    let store = SqliteHistory::in_memory().unwrap();
    for f in fixtures() {
        f.write(&store).await;
    }
    store
}

fn ids(records: &[cased_core::history::DeploymentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.session_id.as_str()).collect()
}

#[tokio::test]
async fn deployments_by_repository_environment_time_and_correlation() {
    let store = fixture_store().await;
    let shop_prod = DeploymentFilter::all()
        .repository("acme/shop")
        .environment("prod");
    assert_eq!(
        ids(&store.deployments(&shop_prod).await.unwrap()),
        ["G", "F", "D", "H", "B", "A"]
    );
    assert_eq!(
        ids(&store
            .deployments(&shop_prod.clone().limit(2))
            .await
            .unwrap()),
        ["G", "F"]
    );
    let week1 = DeploymentFilter::all().between(JAN1 + DAY, JAN1 + 7 * DAY);
    assert_eq!(
        ids(&store.deployments(&week1).await.unwrap()),
        ["H", "E", "C", "B"]
    );
    let unhealthy = DeploymentFilter::all().verdict(Verdict::Unhealthy);
    assert_eq!(
        ids(&store.deployments(&unhealthy).await.unwrap()),
        ["C", "B"]
    );
    let by_correlation = DeploymentFilter::all().correlation_id("E");
    assert_eq!(
        ids(&store.deployments(&by_correlation).await.unwrap()),
        ["E"]
    );
    assert!(
        store
            .deployments(&DeploymentFilter::all().repository("nope/nope"))
            .await
            .unwrap()
            .is_empty()
    );

    let b = store.deployment("B").await.unwrap().unwrap();
    assert_eq!(b.repository.as_deref(), Some("acme/shop"));
    assert_eq!(b.environment.as_deref(), Some("prod"));
    assert_eq!(b.git_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(b.started_at_unix_ms, JAN1 + DAY + 9 * HOUR);
    assert_eq!(
        (b.verdict, b.ended_by),
        (Some(Verdict::Unhealthy), Some(EndReason::Unhealthy))
    );
    assert_eq!((b.ticks, b.findings, b.alerts), (3, 2, 0));
    assert_eq!(b.duration, Some(Duration::from_secs(60)));
    let g = store.deployment("G").await.unwrap().unwrap();
    assert!(!g.is_finished());
    assert_eq!(
        (g.verdict, g.last_tick_verdict, g.ticks),
        (None, Some(Verdict::Healthy), 3)
    );
    assert_eq!(
        g.started_at_unix_ms,
        JAN1 + 9 * DAY,
        "begin_session's start is kept"
    );
    assert!(store.deployment("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn verdict_counts_and_success_rate_per_day_and_week() {
    let store = fixture_store().await;
    let shop = DeploymentFilter::all().repository("acme/shop");
    let weeks = store.verdict_counts(&shop, Bucket::Week).await.unwrap();
    assert_eq!(
        weeks,
        [
            VerdictCounts {
                start_unix_ms: JAN1,
                healthy: 2,
                unhealthy: 2,
                total: 4,
                success_rate: Some(0.5),
                ..Default::default()
            },
            VerdictCounts {
                start_unix_ms: JAN1 + 7 * DAY,
                degraded: 1,
                inconclusive: 1,
                unfinished: 1,
                total: 3,
                success_rate: Some(1.0),
                ..Default::default()
            },
        ]
    );
    let days = store
        .verdict_counts(&DeploymentFilter::all(), Bucket::Day)
        .await
        .unwrap();
    let summary: Vec<(u64, u32, Option<f64>)> = days
        .iter()
        .map(|d| ((d.start_unix_ms - JAN1) / DAY, d.total, d.success_rate))
        .collect();
    assert_eq!(
        summary,
        [
            (0, 1, Some(1.0)),
            (1, 2, Some(0.0)),
            (2, 1, Some(1.0)),
            (6, 1, Some(1.0)),
            (7, 1, Some(1.0)),
            (8, 1, None),
            (9, 1, None)
        ]
    );
    let prod_week1 = DeploymentFilter::all()
        .environment("prod")
        .between(JAN1, JAN1 + 7 * DAY);
    let w = store
        .verdict_counts(&prod_week1, Bucket::Week)
        .await
        .unwrap();
    assert_eq!((w.len(), w[0].healthy, w[0].unhealthy), (1, 3, 1));
    assert_eq!(w[0].success_rate, Some(0.75));
}

#[tokio::test]
async fn time_to_detect_prefers_critical_findings_then_failed_ticks() {
    let store = fixture_store().await;
    let d = store
        .time_to_detect(&DeploymentFilter::all())
        .await
        .unwrap();
    let got: Vec<(&str, Duration, DetectedBy, u32)> = d
        .iter()
        .map(|d| {
            (
                d.session_id.as_str(),
                d.time_to_detect,
                d.detected_by,
                d.tick,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("B", Duration::from_secs(40), DetectedBy::CriticalFinding, 3),
            ("C", Duration::from_secs(10), DetectedBy::FailedTick, 2),
        ]
    );
    let s = DetectionSummary::of(&d).unwrap();
    assert_eq!(
        (s.count, s.mean, s.median, s.max),
        (
            2,
            Duration::from_secs(25),
            Duration::from_secs(10),
            Duration::from_secs(40)
        )
    );
    let staging = store
        .time_to_detect(&DeploymentFilter::all().environment("staging"))
        .await
        .unwrap();
    assert_eq!(staging.len(), 1);
    assert!(DetectionSummary::of(&[]).is_none());
}

#[tokio::test]
async fn findings_and_alerts_lead_back_to_their_deployment() {
    let store = fixture_store().await;
    let findings = store.findings("B").await.unwrap();
    let got: Vec<(&str, Option<u32>, Option<Duration>, Severity)> = findings
        .iter()
        .map(|f| (f.id.as_str(), f.tick, f.elapsed, f.finding.severity))
        .collect();
    assert_eq!(
        got,
        [
            (
                "B:1",
                Some(2),
                Some(Duration::from_secs(10)),
                Severity::Warning
            ),
            (
                "B:2",
                Some(3),
                Some(Duration::from_secs(40)),
                Severity::Critical
            ),
        ]
    );
    assert_eq!(
        store
            .deployment_of_finding("B:2")
            .await
            .unwrap()
            .unwrap()
            .session_id,
        "B"
    );
    assert!(store.deployment_of_finding("B:3").await.unwrap().is_none());

    let firing = AlertRecord::new(
        "alert-1",
        "acme/shop:prod:error_rate",
        Severity::Critical,
        "Errors up",
        JAN1 + DAY,
    )
    .with_payload(&serde_json::json!({"channel": "slack", "findings": ["B:2"]}))
    .unwrap();
    store.record_alert("B", &firing).await.unwrap();
    let mut resolved = firing.clone().with_state("resolved");
    resolved.updated_at_unix_ms += 60_000;
    store.record_alert("B", &resolved).await.unwrap();
    assert_eq!(store.alerts("B").await.unwrap(), [resolved]);
    assert_eq!(
        store
            .deployment_of_alert("alert-1")
            .await
            .unwrap()
            .unwrap()
            .session_id,
        "B"
    );
    assert_eq!(store.deployment("B").await.unwrap().unwrap().alerts, 1);
    assert!(
        store
            .deployment_of_alert("alert-2")
            .await
            .unwrap()
            .is_none()
    );
    let orphan = AlertRecord::new("alert-3", "k", Severity::Info, "t", JAN1);
    let err = store.record_alert("nope", &orphan).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(
        store
            .deployment_of_alert("alert-3")
            .await
            .unwrap()
            .is_none(),
        "a failed write leaves nothing"
    );
}

#[tokio::test]
async fn last_healthy_deployments_feed_baselines() {
    let store = fixture_store().await;
    let shop_prod = DeploymentFilter::all()
        .repository("acme/shop")
        .environment("prod");
    assert_eq!(
        ids(&store.last_healthy(&shop_prod, 5).await.unwrap()),
        ["H", "A"]
    );
    assert_eq!(
        ids(&store.last_healthy(&shop_prod, 1).await.unwrap()),
        ["H"]
    );
    assert_eq!(
        ids(&store
            .last_healthy(&DeploymentFilter::all(), 10)
            .await
            .unwrap()),
        ["H", "E", "A"]
    );
    // Their check latencies are what a baseline reads.
    let ticks = store.ticks("H").await.unwrap();
    let web: Vec<u128> = ticks
        .iter()
        .map(|t| t.checks[0].latency.as_millis())
        .collect();
    assert_eq!(web, [100, 101, 102]);
}

#[tokio::test]
async fn a_report_alone_is_enough_and_updates_are_reconciled_with_it() {
    let store = SqliteHistory::in_memory().unwrap();
    let mut f = Fixture::new("R", "acme/shop", "prod", JAN1, Some(Verdict::Unhealthy));
    f.ticks = vec![(0, CheckStatus::Pass), (10, CheckStatus::Fail)];
    f.findings = vec![(2, finding("latency_ms", Severity::Critical))];
    let report = f.report(Verdict::Unhealthy);
    // No begin, no updates: the report carries everything but the finding's tick.
    store.record_report(&report).await.unwrap();
    assert_eq!(store.report("R").await.unwrap().unwrap(), report);
    assert_eq!(store.ticks("R").await.unwrap(), report.ticks);
    assert_eq!(store.event("R").await.unwrap().unwrap(), report.event);
    assert_eq!(store.findings("R").await.unwrap()[0].tick, None);
    let d = store
        .time_to_detect(&DeploymentFilter::all())
        .await
        .unwrap();
    assert_eq!(
        (d[0].detected_by, d[0].time_to_detect),
        (DetectedBy::FailedTick, Duration::from_secs(10))
    );
    // Writing it again changes nothing.
    store.record_report(&report).await.unwrap();
    assert_eq!(store.findings("R").await.unwrap().len(), 1);
    assert_eq!(store.ticks("R").await.unwrap(), report.ticks);

    // With updates first, the report keeps the finding's tick and replaces the updates' timing.
    let store = SqliteHistory::in_memory().unwrap();
    for u in f.updates() {
        store.record_update(&u).await.unwrap();
    }
    let before = store.ticks("R").await.unwrap();
    assert_eq!(
        before[1].elapsed,
        Duration::from_millis(10_003),
        "the update's own time until the report comes"
    );
    assert!(
        store
            .deployment("R")
            .await
            .unwrap()
            .unwrap()
            .started_at_unix_ms
            > JAN1,
        "begun from the update"
    );
    store.record_report(&report).await.unwrap();
    assert_eq!(store.ticks("R").await.unwrap(), report.ticks);
    assert_eq!(store.findings("R").await.unwrap()[0].tick, Some(2));
    assert_eq!(
        store
            .deployment("R")
            .await
            .unwrap()
            .unwrap()
            .started_at_unix_ms,
        JAN1
    );
    let d = store
        .time_to_detect(&DeploymentFilter::all())
        .await
        .unwrap();
    assert_eq!(d[0].detected_by, DetectedBy::CriticalFinding);
}

#[tokio::test]
async fn prune_deletes_old_deployments_and_everything_they_own() {
    let store = fixture_store().await;
    let n = store.prune(JAN1 + 2 * DAY).await.unwrap();
    assert_eq!(n, 3, "A, B and C started before Jan 3");
    assert!(store.ticks("B").await.unwrap().is_empty());
    assert!(store.findings("B").await.unwrap().is_empty());
    assert!(store.deployment_of_finding("B:1").await.unwrap().is_none());
    assert_eq!(
        store
            .deployments(&DeploymentFilter::all())
            .await
            .unwrap()
            .len(),
        5
    );
}

fn quick_config() -> MonitorConfig {
    MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(1)],
            cooldown: Duration::from_secs(5),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_real_session_round_trips_through_a_file() {
    let dir = TempDir::new();
    let store = SqliteHistory::open(dir.db()).unwrap();
    let n = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&n);
    let flaky = FnCheck::new("flaky", move || {
        let k = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            if k == 2 {
                CheckOutcome::warn("slow")
            } else {
                CheckOutcome::pass("ok")
            }
            .with_latency(Duration::from_millis(12))
        }
    });
    let monitor = Monitor::builder(quick_config())
        .check(flaky)
        .build()
        .unwrap();
    let ev = event("acme/shop", "prod", "deploy-77");
    let session = monitor.start(ev.clone()).unwrap();
    session.push("p99_ms", 210.5).unwrap();
    session.complete();
    let recorded = record_session(&store, &session, &ev).await;
    assert!(recorded.errors.is_empty(), "{:?}", recorded.errors);
    let report = recorded.report;
    assert_eq!(report.ticks.len(), 6);
    assert_eq!(
        report.verdict,
        Verdict::Degraded,
        "one warning: {}",
        report.reason
    );

    drop(store);
    let store = SqliteHistory::open(dir.db()).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.report(session.id()).await.unwrap().unwrap(), report);
    assert_eq!(store.ticks(session.id()).await.unwrap(), report.ticks);
    assert_eq!(store.event(session.id()).await.unwrap().unwrap(), ev);
    let d = store.deployment(session.id()).await.unwrap().unwrap();
    assert_eq!(d.correlation_id, "deploy-77");
    assert_eq!(
        (d.verdict, d.ended_by, d.ticks),
        (Some(Verdict::Degraded), Some(EndReason::CooldownElapsed), 6)
    );
    assert_eq!(d.started_at_unix_ms, report.started_at_unix_ms);
    let by_correlation = store
        .deployments(&DeploymentFilter::all().correlation_id("deploy-77"))
        .await
        .unwrap();
    assert_eq!(ids(&by_correlation), [session.id()]);
}

/// `[[[...1...]]]`, `depth` levels.
fn nested(depth: usize) -> serde_json::Value {
    let mut v = serde_json::json!(1);
    for _ in 0..depth {
        v = serde_json::Value::Array(vec![v]);
    }
    v
}

/// What the writer accepts the reader reads back, however deep: serde_json's own parser stops
/// at 128 levels ("recursion limit exceeded"). Event metadata is refused past
/// `MAX_JSON_DEPTH`; check evidence is not limited.
#[tokio::test(start_paused = true)]
async fn deeply_nested_metadata_and_evidence_are_read_back() {
    const DEPTH: usize = 500;
    const META_DEPTH: usize = cased_core::limits::MAX_JSON_DEPTH - 2;
    let dir = TempDir::new();
    let store = SqliteHistory::open(dir.db()).unwrap();
    let deep = FnCheck::new("deep", || async {
        CheckOutcome::pass("ok")
            .with_latency(Duration::from_millis(3))
            .with_evidence(nested(DEPTH))
    });
    let monitor = Monitor::builder(quick_config())
        .check(deep)
        .build()
        .unwrap();
    let ev = DeploymentEvent::builder("Deploy deep")
        .repository("acme/shop")
        .metadata_entry("nested", nested(META_DEPTH))
        .build()
        .unwrap();
    assert!(ev.to_json().len() < 64 * 1024);
    let session = monitor.start(ev.clone()).unwrap();
    session.complete();
    let recorded = record_session(&store, &session, &ev).await;
    assert!(recorded.errors.is_empty(), "{:?}", recorded.errors);
    drop(store);

    let store = SqliteHistory::open(dir.db()).unwrap();
    let report = store.report(session.id()).await.unwrap().unwrap();
    assert_eq!(report, recorded.report);
    assert_eq!(
        report.event.event_metadata().unwrap()["nested"],
        nested(META_DEPTH)
    );
    assert_eq!(store.event(session.id()).await.unwrap().unwrap(), ev);
    let ticks = store.ticks(session.id()).await.unwrap();
    assert_eq!(ticks[0].checks[0].evidence, nested(DEPTH));
    let (loaded, context) = cased_core::report::load(&store, session.id())
        .await
        .unwrap()
        .unwrap();
    let md = cased_core::report::to_markdown(&loaded, &context);
    assert!(md.contains("Deploy deep"), "{md}");
    assert_eq!(Report::from_json(&report.to_json()).unwrap(), report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_and_two_handles_on_one_file_lose_nothing() {
    let dir = TempDir::new();
    let first = SqliteHistory::open(dir.db()).unwrap();
    // A second, independent handle on the same file, as another process would have.
    let second = SqliteHistory::open(dir.db()).unwrap();
    let mut tasks = Vec::new();
    for k in 0..12u32 {
        let store = if k % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let id: &'static str = Box::leak(format!("s{k:02}").into_boxed_str());
            let mut f = Fixture::new(
                id,
                "acme/shop",
                "prod",
                JAN1 + u64::from(k) * HOUR,
                Some(Verdict::Healthy),
            );
            f.ticks = (0..40).map(|i| (i * 10, CheckStatus::Pass)).collect();
            f.findings = vec![
                (7, finding("latency_ms", Severity::Info)),
                (30, finding("cpu", Severity::Warning)),
            ];
            f.write(&store).await;
            store
                .record_alert(
                    id,
                    &AlertRecord::new(format!("{id}-alert"), id, Severity::Info, "started", JAN1),
                )
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = first.deployments(&DeploymentFilter::all()).await.unwrap();
    assert_eq!(all.len(), 12);
    for d in &all {
        assert_eq!(
            (d.ticks, d.findings, d.alerts, d.verdict),
            (40, 2, 1, Some(Verdict::Healthy)),
            "{}",
            d.session_id
        );
        let ticks = second.ticks(&d.session_id).await.unwrap();
        assert!(ticks.iter().all(|t| t.checks.len() == 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_committed_together_fail_one_by_one() {
    let dir = TempDir::new();
    let store = SqliteHistory::open(dir.db()).unwrap();
    // 200 sessions start at once (their writes share commits), among them writes that fail:
    // an alert of a session that does not exist.
    let mut tasks = Vec::new();
    for k in 0..200u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if k % 50 == 7 {
                let bad = AlertRecord::new(
                    format!("a{k}"),
                    "no-such-session",
                    Severity::Info,
                    "x",
                    JAN1,
                );
                return store.record_alert("no-such-session", &bad).await.is_err();
            }
            store
                .begin_session(
                    &format!("s{k:03}"),
                    &event("acme/shop", "prod", &format!("c{k}")),
                    JAN1 + k,
                )
                .await
                .is_ok()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap(), "each write answers its own outcome");
    }
    let all = store.deployments(&DeploymentFilter::all()).await.unwrap();
    assert_eq!(
        all.len(),
        196,
        "every session but the 4 failing writes' slots"
    );
    assert!(store.alerts("no-such-session").await.unwrap().is_empty());
}

/// Rows written by a transaction that never committed.
fn uncommitted_writes(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "PRAGMA cache_size = 1;
         INSERT INTO deployments (session_id, correlation_id, deployment_request, started_at_ms)
              VALUES ('ghost', 'ghost', 'never committed', 0);
         UPDATE deployments SET verdict = 'unhealthy' WHERE session_id = 'A';
         DELETE FROM ticks WHERE session_id = 'B';",
    )
    .unwrap();
    for i in 0..2000 {
        conn.execute(
            "INSERT INTO ticks (session_id, tick, phase, elapsed_ms, verdict) VALUES ('ghost', ?1, 'active', 0, 'healthy')",
            [i],
        )
        .unwrap();
    }
}

async fn assert_only_committed_rows(path: &Path) {
    let store = SqliteHistory::open(path).unwrap();
    assert!(store.deployment("ghost").await.unwrap().is_none());
    assert_eq!(
        store.deployment("A").await.unwrap().unwrap().verdict,
        Some(Verdict::Healthy)
    );
    assert_eq!(store.ticks("B").await.unwrap().len(), 3);
    assert_eq!(
        store
            .deployments(&DeploymentFilter::all())
            .await
            .unwrap()
            .len(),
        8
    );
    assert_eq!(store.findings("B").await.unwrap().len(), 2);
    // And it takes writes again.
    let f = Fixture::new("after", "acme/shop", "prod", JAN1, Some(Verdict::Healthy));
    f.write(&store).await;
    assert_eq!(store.deployment("after").await.unwrap().unwrap().ticks, 3);
}

#[tokio::test]
async fn a_transaction_dropped_without_commit_leaves_the_committed_rows() {
    let dir = TempDir::new();
    let store = SqliteHistory::open(dir.db()).unwrap();
    for f in fixtures() {
        f.write(&store).await;
    }
    let mut conn = rusqlite::Connection::open(dir.db()).unwrap();
    let tx = conn.transaction().unwrap();
    uncommitted_writes(&tx);
    drop(tx);
    drop(conn);
    // Seen from the open handle, and after reopening.
    assert!(store.deployment("ghost").await.unwrap().is_none());
    drop(store);
    assert_only_committed_rows(&dir.db()).await;
}

const CHILD_DB: &str = "CASED_HISTORY_CRASH_CHILD_DB";

/// Runs as the parent (kills a child process in the middle of a write transaction, then
/// reopens the file) or, when started by that parent, as the child.
#[test]
fn a_process_killed_mid_transaction_loses_nothing_committed() {
    if let Ok(path) = std::env::var(CHILD_DB) {
        // The child: commit the fixtures through the store, then die inside a transaction.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = SqliteHistory::open(&path).unwrap();
            for f in fixtures() {
                f.write(&store).await;
            }
        });
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        uncommitted_writes(&conn);
        println!("MID-TRANSACTION");
        loop {
            std::thread::park();
        }
    }
    let dir = TempDir::new();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_process_killed_mid_transaction_loses_nothing_committed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, dir.db())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let reached = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("MID-TRANSACTION"));
    assert!(
        reached,
        "the child never reached the middle of its transaction"
    );
    let wal = std::fs::metadata(dir.0.join("history.db-wal"))
        .unwrap()
        .len();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wal > 0,
        "the uncommitted pages reached the WAL before the kill"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(assert_only_committed_rows(&dir.db()));
}

#[tokio::test]
async fn a_database_from_a_newer_cased_is_refused_untouched() {
    let dir = TempDir::new();
    drop(SqliteHistory::open(dir.db()).unwrap());
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteHistory::open(dir.db()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(
        err.to_string()
            .contains("newer than this cased understands"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let v: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
    // Not a database at all.
    let junk = dir.0.join("junk.db");
    std::fs::write(
        &junk,
        b"this is not sqlite, just text long enough to look like a header.....",
    )
    .unwrap();
    assert_eq!(
        SqliteHistory::open(&junk).unwrap_err().kind(),
        ErrorKind::Storage
    );
}

#[tokio::test]
async fn an_event_nested_to_the_depth_limit_reads_back_from_history() {
    // Everything cased accepts must read back: the report wraps the event's metadata in a few
    // more levels, and the JSON reader stops at 128.
    let store = SqliteHistory::in_memory().unwrap();
    let f = Fixture::new("D", "acme/shop", "prod", JAN1, Some(Verdict::Healthy));
    let mut report = f.report(Verdict::Healthy);
    let mut deep = serde_json::json!({});
    for _ in 1..cased_core::limits::MAX_JSON_DEPTH {
        deep = serde_json::json!({ "a": deep });
    }
    report.event = DeploymentEvent::from_value(
        serde_json::json!({"deployment_request": "d", "event_metadata": deep}),
    )
    .unwrap();
    store.record_report(&report).await.unwrap();
    assert_eq!(store.report("D").await.unwrap().unwrap(), report);
    assert_eq!(store.event("D").await.unwrap().unwrap(), report.event);
}
