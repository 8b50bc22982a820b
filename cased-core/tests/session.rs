//! Sessions under tokio's paused clock: exact tick times, phases, verdicts, the rollback hook and
//! the update stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cased_core::{
    CheckOutcome, CheckStatus, DeploymentEvent, DeploymentStatus, EndReason, FnCheck, Monitor,
    MonitorConfig, NoDataPolicy, Phase, Report, RollbackHook, ScheduleConfig, UpdateEvent, Verdict,
    VerdictConfig,
};

fn event(status: DeploymentStatus) -> DeploymentEvent {
    DeploymentEvent::builder("Deploy v2")
        .repository("acme/shop")
        .status(status)
        .environment("prod")
        .build()
        .unwrap()
}

fn secs(report: &Report) -> Vec<u64> {
    report
        .ticks
        .iter()
        .map(|t| t.elapsed.as_millis() as u64 / 1000)
        .collect()
}

fn ok_check() -> FnCheck {
    ok_check_named("web")
}

fn ok_check_named(name: &str) -> FnCheck {
    FnCheck::new(name, || async { CheckOutcome::pass("HTTP 200") })
}

fn monitor_with(config: MonitorConfig, check: FnCheck) -> Monitor {
    Monitor::builder(config).check(check).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn default_schedule_ticks_progressively_then_cools_down() {
    let monitor = monitor_with(MonitorConfig::default(), ok_check());
    let session = monitor.start(event(DeploymentStatus::Running)).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    session.complete();
    let report = session.wait().await;
    assert_eq!(
        secs(&report),
        [0, 10, 40, 100, 400, 700, 1000, 1300, 1600, 1900]
    );
    assert_eq!(report.cooldown_started, Some(Duration::from_secs(120)));
    assert_eq!(report.duration, Duration::from_secs(120 + 1800));
    assert_eq!(report.ended_by, EndReason::CooldownElapsed);
    assert_eq!(report.verdict, Verdict::Healthy);
    let phases: Vec<Phase> = report.ticks.iter().map(|t| t.phase).collect();
    assert_eq!(&phases[..4], [Phase::Active; 4]);
    assert!(phases[4..].iter().all(|p| *p == Phase::Cooldown));
    assert!(
        report.ticks.iter().all(|t| t.late.is_zero()),
        "ticks ran late under a paused clock"
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_already_successful_starts_in_cooldown() {
    let monitor = monitor_with(MonitorConfig::default(), ok_check());
    let report = monitor.run(event(DeploymentStatus::Success)).await.unwrap();
    assert_eq!(secs(&report), [0, 10, 40, 100, 400, 700, 1000, 1300, 1600]);
    assert_eq!(report.cooldown_started, Some(Duration::ZERO));
    assert_eq!(report.duration, Duration::from_secs(1800));
    assert!(report.ticks.iter().all(|t| t.phase == Phase::Cooldown));
}

#[tokio::test(start_paused = true)]
async fn max_duration_ends_a_deployment_that_never_completes() {
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            max_duration: Duration::from_secs(1000),
            ..Default::default()
        },
        ..Default::default()
    };
    let report = monitor_with(config, ok_check())
        .run(event(DeploymentStatus::Running))
        .await
        .unwrap();
    assert_eq!(secs(&report), [0, 10, 40, 100, 400, 700, 1000]);
    assert_eq!(report.ended_by, EndReason::MaxDuration);
    assert_eq!(report.duration, Duration::from_secs(1000));
    assert_eq!(report.verdict, Verdict::Healthy);
}

#[tokio::test(start_paused = true)]
async fn fail_and_cancel_end_the_session_with_that_outcome() {
    let monitor = monitor_with(MonitorConfig::default(), ok_check());
    for (end, expected) in [(0, EndReason::DeploymentFailed), (1, EndReason::Cancelled)] {
        let session = monitor.start(event(DeploymentStatus::Running)).unwrap();
        tokio::time::sleep(Duration::from_secs(15)).await;
        if end == 0 {
            session.fail()
        } else {
            session.cancel()
        }
        let report = session.wait().await;
        assert_eq!(report.ended_by, expected);
        assert_eq!(report.verdict, Verdict::Inconclusive);
        assert_eq!(secs(&report), [0, 10]);
        assert_eq!(report.duration, Duration::from_secs(15));
    }
    for (status, expected) in [
        (DeploymentStatus::Failure, EndReason::DeploymentFailed),
        (DeploymentStatus::Cancelled, EndReason::Cancelled),
    ] {
        let report = monitor.run(event(status)).await.unwrap();
        assert_eq!(report.ended_by, expected);
        assert!(report.ticks.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_check_neither_delays_others_nor_the_next_tick() {
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(1)],
            ..Default::default()
        },
        verdict: VerdictConfig {
            consecutive_error_limit: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(FnCheck::new("hangs", || {
            futures::future::pending::<CheckOutcome>()
        }))
        .check(ok_check())
        .build()
        .unwrap();
    let report = monitor.run(event(DeploymentStatus::Running)).await.unwrap();
    assert_eq!(report.ended_by, EndReason::ErrorLimit);
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert_eq!(secs(&report), [0, 1, 2]);
    for t in &report.ticks {
        assert!(t.late.is_zero());
        assert_eq!(t.checks[0].status, CheckStatus::Error);
        assert_eq!(
            t.checks[0].message,
            "the check did not finish within 1000 ms"
        );
        assert_eq!(t.checks[1].status, CheckStatus::Pass);
    }
    assert!(
        report
            .reason
            .contains("\"hangs\" could not run 3 times in a row (limit 2)"),
        "{}",
        report.reason
    );
}

/// A check that never answers, with a timeout of its own.
fn hung_check(timeout: Duration) -> FnCheck {
    FnCheck::new("hangs", futures::future::pending::<CheckOutcome>).timeout(timeout)
}

#[tokio::test(start_paused = true)]
async fn a_check_timeout_longer_than_the_interval_is_honoured_and_a_hang_fails() {
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(1)],
            ..Default::default()
        },
        verdict: VerdictConfig {
            failure_limit: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(hung_check(Duration::from_secs(3)))
        .check(ok_check())
        .build()
        .unwrap();
    let report = monitor.run(event(DeploymentStatus::Running)).await.unwrap();
    // The 3 s timeout is waited for in full; the next tick (due 1 s after) starts late.
    assert_eq!(secs(&report), [0, 3, 6]);
    let late: Vec<u64> = report.ticks.iter().map(|t| t.late.as_secs()).collect();
    assert_eq!(late, [0, 2, 2]);
    for t in &report.ticks {
        assert_eq!(t.checks[0].status, CheckStatus::Fail, "{:?}", t.checks[0]);
        assert_eq!(t.checks[0].message, "timed out after 3000 ms");
        assert_eq!(t.checks[0].evidence["error"], "timeout");
        assert_eq!(t.checks[1].status, CheckStatus::Pass);
    }
    // A hang is the target's fault: unhealthy (exit 1 for `cased monitor`), not inconclusive.
    assert_eq!(report.ended_by, EndReason::Unhealthy);
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(report.duration, Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn a_long_check_timeout_never_delays_max_duration_or_a_cancel() {
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(1)],
            max_duration: Duration::from_secs(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(hung_check(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let report = monitor.run(event(DeploymentStatus::Running)).await.unwrap();
    assert_eq!(report.ended_by, EndReason::MaxDuration);
    assert_eq!(report.duration, Duration::from_secs(5));
    assert!(report.ticks.is_empty(), "{:?}", report.ticks);

    for (end, expected) in [(0, EndReason::DeploymentFailed), (1, EndReason::Cancelled)] {
        let session = monitor.start(event(DeploymentStatus::Running)).unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        if end == 0 {
            session.fail()
        } else {
            session.cancel()
        }
        let report = session.wait().await;
        assert_eq!(report.ended_by, expected);
        assert_eq!(report.duration, Duration::from_secs(2));
    }
}

#[tokio::test(start_paused = true)]
async fn the_rollback_hook_fires_exactly_once_when_unhealthy() {
    let fired = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&fired);
    let hook = RollbackHook::new(move |ctx| {
        let seen = Arc::clone(&seen);
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(ctx.event.repository_full_name(), Some("acme/shop"));
            Err("rollback API said no".to_owned())
        }
    });
    let config = MonitorConfig {
        verdict: VerdictConfig {
            failure_limit: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(FnCheck::new("web", || async {
            CheckOutcome::fail("HTTP 503")
        }))
        .on_rollback(hook)
        .build()
        .unwrap();
    let report = monitor.run(event(DeploymentStatus::Running)).await.unwrap();
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(report.ended_by, EndReason::Unhealthy);
    assert_eq!(
        secs(&report),
        [0, 10],
        "a failure limit of 1 tolerates the first failed tick"
    );
    let rollback = report.rollback.expect("recorded");
    assert_eq!(rollback.elapsed, Duration::from_secs(10));
    assert_eq!(rollback.error.as_deref(), Some("rollback API said no"));
}

#[tokio::test(start_paused = true)]
async fn no_data_policies_decide_and_say_so() {
    let schedule = ScheduleConfig {
        intervals: vec![Duration::from_secs(60)],
        cooldown: Duration::from_secs(120),
        max_duration: Duration::from_secs(600),
        ..Default::default()
    };
    let config = |no_data| MonitorConfig {
        schedule: schedule.clone(),
        verdict: VerdictConfig {
            min_samples: 5,
            no_data,
            ..Default::default()
        },
        ..Default::default()
    };
    let fired = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&fired);
    let hook = RollbackHook::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    // Three ticks in a two-minute cool-down: fewer than min_samples.
    let fail = monitor_with(config(NoDataPolicy::Fail), ok_check());
    let r = fail.run(event(DeploymentStatus::Success)).await.unwrap();
    assert_eq!((r.verdict, r.ticks.len()), (Verdict::Unhealthy, 3));
    assert!(r.reason.contains("no_data = fail"), "{}", r.reason);
    let inconclusive = monitor_with(config(NoDataPolicy::Inconclusive), ok_check());
    let r = inconclusive
        .run(event(DeploymentStatus::Success))
        .await
        .unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.reason.contains("only 3 of 5 measured ticks"),
        "{}",
        r.reason
    );
    // Extend keeps ticking past the cool-down until five ticks were measured.
    let extend = Monitor::builder(config(NoDataPolicy::Extend))
        .check(ok_check())
        .on_rollback(hook)
        .build()
        .unwrap();
    let r = extend.run(event(DeploymentStatus::Success)).await.unwrap();
    assert!(r.extended);
    assert_eq!(secs(&r), [0, 60, 120, 180, 240]);
    assert_eq!(
        (r.verdict, r.ended_by),
        (Verdict::Healthy, EndReason::CooldownElapsed)
    );
    assert_eq!(
        fired.load(Ordering::SeqCst),
        0,
        "no rollback for a healthy deployment"
    );
}

#[tokio::test(start_paused = true)]
async fn listeners_follow_updates_in_order_and_laggards_are_told() {
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(1)],
            cooldown: Duration::from_millis(5500),
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(ok_check())
        .update_buffer(2)
        .build()
        .unwrap();
    let session = monitor.start(event(DeploymentStatus::Success)).unwrap();
    let mut fast = session.updates();
    let mut slow = session.updates();
    let mut ticks = Vec::new();
    while let Some(item) = fast.next().await {
        let UpdateEvent::Update(u) = item else {
            panic!("the fast listener lagged")
        };
        ticks.push((u.tick, u.phase));
        let json: serde_json::Value = serde_json::from_str(&u.to_json()).unwrap();
        assert_eq!(json["deployment"]["repository"], "acme/shop");
        assert_eq!(json["deployment"]["environment"], "prod");
    }
    let expected: Vec<(u32, Phase)> = (1..=6)
        .map(|t| (t, Phase::Cooldown))
        .chain([(6, Phase::Finished)])
        .collect();
    assert_eq!(ticks, expected);
    let mut slow_items = Vec::new();
    while let Some(item) = slow.next().await {
        slow_items.push(item);
    }
    assert!(
        matches!(slow_items[0], UpdateEvent::Skipped(n) if n > 0),
        "the slow listener must be told it skipped updates: {slow_items:?}"
    );
    let last = slow_items.last().unwrap();
    assert!(
        matches!(last, UpdateEvent::Update(u) if u.phase == Phase::Finished && u.verdict == Verdict::Healthy)
    );
    let late = session.updates().next().await;
    assert!(
        matches!(late, Some(UpdateEvent::Update(u)) if u.phase == Phase::Finished),
        "a late listener gets the last update"
    );
}

#[tokio::test(start_paused = true)]
async fn pushed_samples_are_windowed_and_checked() {
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            cooldown: Duration::from_secs(30),
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(ok_check())
        .sample_window(3)
        .build()
        .unwrap();
    let session = monitor.start(event(DeploymentStatus::Success)).unwrap();
    for v in [1.0, 2.0, 3.0, 4.0, 5.0] {
        session.push("latency_ms", v).unwrap();
    }
    assert_eq!(
        session
            .push("latency_ms", f64::NAN)
            .unwrap_err()
            .field_errors()[0]
            .field,
        "value"
    );
    assert_eq!(
        session.push(" ", 1.0).unwrap_err().field_errors()[0].field,
        "metric"
    );
    let report = session.wait().await;
    assert_eq!(
        session.push("latency_ms", 1.0).unwrap_err().field_errors()[0].field,
        "session"
    );
    let m = &report.metrics["latency_ms"];
    assert_eq!(
        (m.count, m.window, m.last, m.mean, m.median),
        (5, 3, 5.0, 4.0, Some(4.0))
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["ended_by"], "cooldown_elapsed");
    assert_eq!(json["ticks"][1]["elapsed_ms"], 10000.0);
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let monitor = monitor_with(MonitorConfig::default(), ok_check());
    let err = monitor.start(event(DeploymentStatus::Running)).unwrap_err();
    assert_eq!(err.field_errors()[0].field, "runtime");
}

#[tokio::test(start_paused = true)]
async fn a_monitor_with_history_keeps_every_tick_and_the_report() {
    use cased_core::history::{DeploymentFilter, HistoryStore, SqliteHistory};
    let store = Arc::new(SqliteHistory::in_memory().unwrap());
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            cooldown: Duration::from_secs(100),
            ..Default::default()
        },
        verdict: VerdictConfig {
            min_samples: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(ok_check())
        .history(Arc::clone(&store) as Arc<dyn HistoryStore>)
        .build()
        .unwrap();
    let session = monitor.start(event(DeploymentStatus::Success)).unwrap();
    let report = session.wait().await;
    assert_eq!(
        secs(&report),
        [0, 10, 40, 100],
        "a tick due exactly at the end of the cool-down runs"
    );
    let rows = store
        .deployments(&DeploymentFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].session_id, session.id());
    assert_eq!(rows[0].verdict, Some(Verdict::Healthy));
    assert_eq!(rows[0].repository.as_deref(), Some("acme/shop"));
    assert_eq!(store.ticks(session.id()).await.unwrap().len(), 4);
    assert_eq!(
        store.report(session.id()).await.unwrap().unwrap().verdict,
        Verdict::Healthy
    );
}

/// A check whose latency steps from 20 ms to 300 ms at its fourth run.
fn stepping_check() -> FnCheck {
    let runs = Arc::new(AtomicU32::new(0));
    FnCheck::new("web", move || {
        let n = runs.fetch_add(1, Ordering::SeqCst);
        async move {
            let ms = if n < 3 { 20 } else { 300 };
            CheckOutcome::pass("HTTP 200").with_latency(Duration::from_millis(ms))
        }
    })
}

/// Found by the fault soak: a warning that fired within the route's group wait of a healthy or
/// degraded end was resolved before it was ever told, so it vanished — in the report's
/// `alerts`, yet never delivered nor reported failed.
#[tokio::test(start_paused = true)]
async fn an_alert_still_in_its_group_wait_when_the_session_ends_degraded_is_told_then_resolved() {
    use cased_core::alert::{AlertState, FnNotifier};
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "3s"},
        "verdict": {"min_samples": 3},
        "detectors": [{"type": "threshold", "metric": "web.latency_ms", "upper": 100}],
        "alerts": {
            "channels": [{"name": "pager", "type": "custom", "send_resolved": true}],
            "routes": [{"name": "all", "channels": ["pager"], "group_wait": "1h"}]
        }
    }))
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pager = FnNotifier::new("pager", move |n| {
        let tx = tx.clone();
        async move {
            tx.send(n).unwrap();
            Ok(())
        }
    });
    // 120 ms against a bound of 100: a 20% breach, a warning.
    let slowish = FnCheck::new("web", || async {
        CheckOutcome::pass("HTTP 200").with_latency(Duration::from_millis(120))
    });
    let monitor = Monitor::builder(config)
        .check(slowish)
        .notifier("pager", Arc::new(pager))
        .build()
        .unwrap();
    let session = monitor.start(event(DeploymentStatus::Success)).unwrap();
    let id = session.id().to_owned();
    let report = session.wait().await;
    assert_eq!(report.verdict, Verdict::Degraded, "{}", report.reason);
    let key = format!("{id}/web.latency_ms/threshold");
    let fired: Vec<&str> = report.alerts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(fired, [key.as_str()]);
    assert!(
        report.alert_failures.is_empty(),
        "{:?}",
        report.alert_failures
    );
    // Told (the receiver learns it fired), then its resolution; a first notification still
    // queued when the resolution comes is merged into it, so the key arrives either way.
    let mut states = Vec::new();
    while let Ok(n) = rx.try_recv() {
        for a in &n.alerts {
            assert_eq!(a.key, key);
            states.push(a.state);
        }
    }
    assert!(
        states == [AlertState::Firing, AlertState::Resolved] || states == [AlertState::Resolved],
        "the alert reached the channel: {states:?}"
    );
    let stats = monitor.close(Duration::from_secs(1)).await;
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.delivered as usize, states.len());
}

#[tokio::test(start_paused = true)]
async fn a_critical_finding_ends_unhealthy_alerts_and_rolls_back() {
    use cased_core::alert::FnNotifier;
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "30s"},
        "verdict": {"min_samples": 3},
        "detectors": [{"type": "threshold", "metric": "web.latency_ms", "upper": 100}],
        "alerts": {
            "channels": [{"name": "pager", "type": "custom"}, {"name": "app", "type": "inapp"}],
            "routes": [{"name": "all", "channels": ["pager", "app"], "group_wait": "1s"}]
        }
    }))
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pager = FnNotifier::new("pager", move |n| {
        let tx = tx.clone();
        async move {
            tx.send(n).unwrap();
            Ok(())
        }
    });
    let fired = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&fired);
    let monitor = Monitor::builder(config)
        .check(stepping_check())
        .notifier("pager", Arc::new(pager))
        .on_rollback(RollbackHook::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }))
        .build()
        .unwrap();
    let session = monitor.start(event(DeploymentStatus::Success)).unwrap();
    let mut inapp = monitor.alerts("app").unwrap();
    let report = session.wait().await;
    assert_eq!(
        (report.verdict, report.ended_by),
        (Verdict::Unhealthy, EndReason::Unhealthy)
    );
    assert_eq!(
        secs(&report),
        [0, 1, 2, 3],
        "the fourth tick's 300 ms breaches the 100 ms bound"
    );
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    let finding = &report.findings[0];
    assert_eq!(
        (finding.metric.as_str(), finding.detector.as_str()),
        ("web.latency_ms", "threshold")
    );
    assert!(
        finding.severity >= cased_core::Severity::Critical,
        "{finding:?}"
    );
    assert!(
        report.reason.contains("web.latency_ms"),
        "{}",
        report.reason
    );
    let keys: Vec<&str> = report.alerts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[1].ends_with("/verdict"));
    let notification = rx.recv().await.expect("the custom channel got the alert");
    assert_eq!(notification.group_key, session.id());
    assert!(
        inapp.next().await.is_some(),
        "the in-app channel got it too"
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_deployment_without_baseline_is_judged_on_the_rest_and_says_so() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "10s"},
        "verdict": {"min_samples": 3},
        "detectors": [{"type": "baseline", "metric": "web.latency_ms"}]
    }))
    .unwrap();
    let monitor = monitor_with(config, ok_check());
    let report = monitor.run(event(DeploymentStatus::Success)).await.unwrap();
    assert_eq!(report.verdict, Verdict::Healthy, "{}", report.reason);
    assert_eq!(report.no_data, ["web.latency_ms"]);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no earlier baseline existed for web.latency_ms")),
        "{:?}",
        report.notes
    );
    assert!(report.baselines.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_provided_baseline_catches_a_latency_step() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "30s"},
        "verdict": {"min_samples": 3},
        "detectors": [{"type": "baseline", "metric": "web.latency_ms", "direction": "increase"}]
    }))
    .unwrap();
    let baseline: Vec<f64> = (0..30).map(|i| 18.0 + f64::from(i % 5)).collect();
    let monitor = Monitor::builder(config)
        .check(stepping_check())
        .baseline("web.latency_ms", baseline)
        .build()
        .unwrap();
    let report = monitor.run(event(DeploymentStatus::Success)).await.unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.detector == "baseline")
        .expect("the step is found");
    assert_eq!(f.metric, "web.latency_ms");
    assert!(f.p_value.is_some_and(|p| p < 0.05), "{f:?}");
    assert_ne!(report.verdict, Verdict::Healthy);
}

#[tokio::test(start_paused = true)]
async fn a_baseline_store_makes_one_deployment_the_baseline_of_the_next() {
    use cased_core::metrics::MemoryBaselineStore;
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "20s"},
        "verdict": {"min_samples": 3},
        "detectors": [{"type": "baseline", "metric": "web.latency_ms"}]
    }))
    .unwrap();
    let steady = || {
        let runs = Arc::new(AtomicU32::new(0));
        FnCheck::new("web", move || {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                CheckOutcome::pass("HTTP 200")
                    .with_latency(Duration::from_millis(20 + u64::from(n % 4)))
            }
        })
    };
    let store = Arc::new(MemoryBaselineStore::default());
    let monitor = Monitor::builder(config.clone())
        .check(steady())
        .baseline_store(store.clone())
        .build()
        .unwrap();
    let first = monitor
        .run(
            event(DeploymentStatus::Success)
                .to_builder()
                .correlation_id("deploy-1")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        first.no_data,
        ["web.latency_ms"],
        "nothing to compare the first deployment with"
    );
    assert_eq!(
        first.verdict,
        Verdict::Healthy,
        "a first deployment with passing checks: {}",
        first.reason
    );
    let monitor = Monitor::builder(config)
        .check(steady())
        .baseline_store(store)
        .build()
        .unwrap();
    let second = monitor
        .run(
            event(DeploymentStatus::Success)
                .to_builder()
                .correlation_id("deploy-2")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        second.no_data.is_empty(),
        "the first deployment is the baseline: {:?}",
        second.no_data
    );
    assert_eq!(
        second.baselines["web.latency_ms"],
        "the last healthy deployment (21 values)"
    );
    assert_eq!(second.verdict, Verdict::Healthy, "{}", second.reason);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_an_error_outcome_and_the_session_reaches_a_verdict() {
    let boom = FnCheck::new("web", || async {
        if true {
            panic!("boom in the check");
        }
        CheckOutcome::pass("unreachable")
    });
    let monitor = Monitor::builder(MonitorConfig::default())
        .check(boom)
        .check(FnCheck::new("db", || async { CheckOutcome::pass("ok") }))
        .build()
        .unwrap();
    // Under the paused clock a session that never ends fails here at once (virtual time).
    let report = tokio::time::timeout(
        Duration::from_secs(3 * 3600),
        monitor.run(event(DeploymentStatus::Running)),
    )
    .await
    .expect("the session reached a verdict")
    .unwrap();
    // Every run of the check panicked: each is an `error` (the monitor's fault, not the
    // service's), so the error limit ends the session inconclusive — with a report.
    assert_eq!(report.ended_by, EndReason::ErrorLimit);
    assert_eq!(report.verdict, Verdict::Inconclusive);
    for tick in &report.ticks {
        let web = tick.checks.iter().find(|c| &*c.name == "web").unwrap();
        assert_eq!(web.status, CheckStatus::Error);
        assert_eq!(web.message, "the check panicked: boom in the check");
        assert_eq!(web.evidence["panic"], "boom in the check");
        let db = tick.checks.iter().find(|c| &*c.name == "db").unwrap();
        assert_eq!(db.status, CheckStatus::Pass);
    }
}

#[tokio::test(start_paused = true)]
async fn a_context_detector_configured_like_any_other_finds_a_broken_pattern() {
    // A wave of period 50 (range 80–120) whose 41st cycle is missing: every value stays inside
    // the range seen, so only a detector that predicts the pattern can tell.
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "3s"},
        "detectors": [{"type": "context", "metric": "queue.depth", "memory": 500, "quiet": 100}],
        "pushed": ["queue.depth"]
    }))
    .unwrap();
    let monitor = monitor_with(config, ok_check());
    let session = monitor.start(event(DeploymentStatus::Success)).unwrap();
    for i in 0..2500 {
        let v = if (2000..2050).contains(&i) {
            100.0
        } else {
            100.0 + 20.0 * (std::f64::consts::TAU * f64::from(i) / 50.0).sin()
        };
        session.push("queue.depth", v).unwrap();
    }
    let report = session.wait().await;
    let found: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.detector == "context")
        .collect();
    assert_eq!(found.len(), 1, "{:?}", report.findings);
    let f = found[0];
    assert_eq!(f.metric, "queue.depth");
    assert!(f.rule.starts_with("context likelihood"), "{f:?}");
    assert!(
        f.index.is_some_and(|i| (2000..2015).contains(&i)),
        "{:?}",
        f.index
    );
    assert!(
        f.message.contains("is not what followed similar contexts"),
        "{}",
        f.message
    );
}

fn field_errors(e: &cased_core::Error) -> Vec<(String, String)> {
    e.field_errors()
        .iter()
        .map(|f| (f.field.clone(), f.message.clone()))
        .collect()
}

#[test]
fn build_refuses_a_detector_on_a_metric_no_check_source_or_pushed_list_produces() {
    let config = |extra: serde_json::Value| {
        let mut v = serde_json::json!({
            "checks": [{"name": "web", "type": "http", "url": "http://127.0.0.1:9/"}],
            "detectors": [
                {"type": "spike", "metric": "web.latency_ms"},
                {"type": "spike", "metric": "web.latency", "name": "slow-web"},
                {"type": "spike", "metric": "queue.latency_ms"},
                {"type": "spike", "metric": "queue_depth"},
            ],
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        MonitorConfig::from_value(v).unwrap()
    };
    let e = Monitor::new(config(serde_json::json!({}))).unwrap_err();
    assert!(matches!(e, cased_core::Error::Validation(_)), "{e:?}");
    let problems = field_errors(&e);
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "detectors[1].metric",
            "detectors[2].metric",
            "detectors[3].metric"
        ]
    );
    assert!(
        problems[0]
            .1
            .contains("\"slow-web\" detector watches \"web.latency\""),
        "{}",
        problems[0].1
    );
    assert!(problems[0].1.contains("web.latency_ms"), "the hint");
    assert!(
        problems[2].1.contains("\"queue_depth\""),
        "{}",
        problems[2].1
    );
    // A custom check and the declared pushed metrics produce the rest.
    Monitor::builder(config(
        serde_json::json!({"pushed": ["queue_depth", "web.latency"]}),
    ))
    .check(ok_check_named("queue"))
    .build()
    .unwrap();
    // Without the custom check, its metric is still refused.
    let e = Monitor::new(config(
        serde_json::json!({"pushed": ["queue_depth", "web.latency"]}),
    ))
    .unwrap_err();
    assert_eq!(field_errors(&e)[0].0, "detectors[2].metric");
}

#[test]
fn sources_produce_their_metrics_and_a_monitor_with_no_producer_is_not_held_to_the_rule() {
    // A configured source produces `<source>.<key>`.
    Monitor::new(
        MonitorConfig::from_value(serde_json::json!({
            "sources": [{"type": "host"}],
            "detectors": [{"type": "spike", "metric": "host.cpu_percent"}],
        }))
        .unwrap(),
    )
    .unwrap();
    // Push-only or replay-only: no check, no source, no `pushed` — any metric may come.
    Monitor::new(
        MonitorConfig::from_value(serde_json::json!({
            "detectors": [{"type": "spike", "metric": "recorded.latency_ms"}],
        }))
        .unwrap(),
    )
    .unwrap();
    // Declaring `pushed` opts in: a detector on anything else is refused.
    let e = Monitor::new(
        MonitorConfig::from_value(serde_json::json!({
            "pushed": ["latency_ms"],
            "detectors": [
                {"type": "spike", "metric": "latency_ms"},
                {"type": "spike", "metric": "latncy_ms"},
            ],
        }))
        .unwrap(),
    )
    .unwrap_err();
    let problems = field_errors(&e);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "detectors[1].metric");
    assert!(problems[0].1.contains("\"latncy_ms\""), "{}", problems[0].1);
    // `pushed` names meet the limits of names, naming the entry.
    let e = MonitorConfig::from_value(serde_json::json!({"pushed": ["ok", " ", "a\u{7}b"]}))
        .unwrap_err();
    let fields: Vec<String> = field_errors(&e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["pushed[1]", "pushed[2]"]);
}

#[tokio::test]
async fn with_checks_at_start_the_rule_is_applied_when_a_session_starts() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "0s"},
        "checks": [{"name": "web", "type": "tcp", "host": "127.0.0.1", "port": 9}],
        "detectors": [{"type": "spike", "metric": "queue.latency_ms"}],
    }))
    .unwrap();
    assert!(Monitor::new(config.clone()).is_err(), "refused at build");
    let monitor = Monitor::builder(config).checks_at_start().build().unwrap();
    let e = monitor
        .start(event(DeploymentStatus::Cancelled))
        .unwrap_err();
    assert_eq!(field_errors(&e)[0].0, "detectors[0].metric");
    assert!(field_errors(&e)[0].1.contains("\"queue.latency_ms\""));
    let session = monitor
        .start_with(
            event(DeploymentStatus::Cancelled),
            cased_core::StartOptions::default().check(Arc::new(ok_check_named("queue"))),
        )
        .unwrap();
    session.wait().await;
}
