//! The session pipeline with sources under tokio's paused clock: the default schedule reaching a
//! verdict, pre-deploy baselines read from a source, error rates judged from counts, canary vs
//! control, sessions without checks, and replay giving what the live session gave.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cased_core::metrics::{CountsSample, PollContext, Polled, Sample, Source, SourcePlan};
use cased_core::{
    CheckOutcome, Counts, DeploymentEvent, DeploymentStatus, FnCheck, Monitor, MonitorConfig,
    RecordedCheck, RecordedCounts, Recording, Verdict,
};

fn event() -> DeploymentEvent {
    DeploymentEvent::builder("Deploy v2")
        .repository("acme/shop")
        .status(DeploymentStatus::Success)
        .environment("prod")
        .correlation_id("deploy-7")
        .build()
        .unwrap()
}

/// One metric every 10 s: `level(t)` plus a fixed pseudo-random wobble, where `t` is seconds
/// since the deployment started (negative before it). Everything it returned is kept in `seen`.
#[derive(Debug)]
struct Synthetic {
    metric: &'static str,
    level: fn(f64) -> f64,
    /// Also the control track, at the baseline level.
    control: bool,
    /// As counts `(errors, requests)`: `level` is the error rate.
    counts: bool,
    /// Half the width of the (uniform) wobble around the level.
    noise: f64,
    t0: Option<f64>,
    next: f64,
    seen: Arc<Mutex<Polled>>,
}

fn wobble(i: i64) -> f64 {
    // A fixed, well-spread sequence in [-1, 1] (Weyl sequence of the golden ratio).
    let x = (i as f64 * 0.618_033_988_75).fract();
    2.0 * x.abs() - 1.0
}

impl Synthetic {
    fn point(&self, t: f64, into: &mut Polled, t0: f64, control: bool) {
        let i = (t / 10.0).round() as i64;
        let level = if control {
            (self.level)(-1.0)
        } else {
            (self.level)(t)
        };
        if self.counts {
            let requests: u32 = 2000;
            let errors = (level * f64::from(requests) + 3.0 * wobble(i))
                .round()
                .max(0.0) as u64;
            let c = CountsSample {
                labels: Default::default(),
                metric: self.metric.into(),
                timestamp: t0 + t,
                counts: Counts::new(errors, u64::from(requests)).unwrap(),
            };
            if control {
                into.control_counts.push(c)
            } else {
                into.counts.push(c)
            }
        } else {
            let s = Sample::at(self.metric, t0 + t, level + self.noise * wobble(i));
            if control {
                into.control_samples.push(s)
            } else {
                into.samples.push(s)
            }
        }
    }
}

#[async_trait::async_trait]
impl Source for Synthetic {
    async fn poll(&mut self, ctx: &PollContext) -> cased_core::Result<Polled> {
        let t0 = *self.t0.get_or_insert(ctx.now);
        let mut out = Polled::default();
        while self.next <= ctx.now - t0 + 1e-9 {
            self.point(self.next, &mut out, t0, false);
            if self.control {
                self.point(self.next, &mut out, t0, true);
            }
            self.next += 10.0;
        }
        self.seen.lock().unwrap().extend(out.clone());
        Ok(out)
    }

    async fn lookback(
        &mut self,
        ctx: &PollContext,
        window: Duration,
    ) -> cased_core::Result<Option<Polled>> {
        let t0 = *self.t0.get_or_insert(ctx.now);
        let mut out = Polled::default();
        let mut t = -window.as_secs_f64();
        while t < 0.0 {
            self.point(t, &mut out, t0, false);
            t += 10.0;
        }
        self.seen.lock().unwrap().extend(out.clone());
        Ok(Some(out))
    }
}

fn plan(
    metric: &'static str,
    level: fn(f64) -> f64,
    control: bool,
    counts: bool,
) -> (SourcePlan, Arc<Mutex<Polled>>) {
    noisy_plan(metric, level, control, counts, 2.0)
}

fn noisy_plan(
    metric: &'static str,
    level: fn(f64) -> f64,
    control: bool,
    counts: bool,
    noise: f64,
) -> (SourcePlan, Arc<Mutex<Polled>>) {
    let seen = Arc::new(Mutex::new(Polled::default()));
    let s = Arc::clone(&seen);
    let plan = SourcePlan::new("app", None, move || {
        Box::new(Synthetic {
            metric,
            level,
            control,
            counts,
            noise,
            t0: None,
            next: 0.0,
            seen: Arc::clone(&s),
        }) as Box<dyn Source>
    });
    (plan, seen)
}

fn latency_config() -> MonitorConfig {
    MonitorConfig::from_value(serde_json::json!({
        "detectors": [{"type": "baseline", "metric": "app.latency_ms", "allowed_change": 0.1}]
    }))
    .unwrap()
}

fn steady(_: f64) -> f64 {
    100.0
}

/// 3σ of the wobble (σ ≈ 1.15 ms) above 100 ms from 100 s on: a small, real regression.
fn step_at_100s(t: f64) -> f64 {
    if t >= 100.0 { 115.0 } else { 100.0 }
}

#[tokio::test(start_paused = true)]
async fn the_default_schedule_catches_a_step_and_passes_a_good_deploy() {
    let (source, _) = plan("app.latency_ms", step_at_100s, false, false);
    let monitor = Monitor::builder(latency_config())
        .source(source)
        .build()
        .unwrap();
    let bad = monitor.run(event()).await.unwrap();
    assert_eq!(bad.verdict, Verdict::Unhealthy, "{}", bad.reason);
    assert_eq!(
        bad.baselines["app.latency_ms"],
        "the window before the deployment (360 values)"
    );
    let f = bad
        .findings
        .iter()
        .find(|f| f.metric == "app.latency_ms")
        .expect("a finding");
    assert!(
        f.index.is_some_and(|i| i >= 10),
        "not before the step: {f:?}"
    );
    assert!(f.tick.is_some());
    let (source, _) = plan("app.latency_ms", steady, false, false);
    let monitor = Monitor::builder(latency_config())
        .source(source)
        .build()
        .unwrap();
    let good = monitor.run(event()).await.unwrap();
    assert_eq!(
        good.verdict,
        Verdict::Healthy,
        "{} {:?}",
        good.reason,
        good.findings
    );
    assert!(
        good.ticks.len() >= 9,
        "the default schedule: {} ticks",
        good.ticks.len()
    );
    assert!(
        good.ticks.iter().all(|t| t.checks.is_empty()),
        "no checks: the source measured every tick"
    );
}

#[tokio::test(start_paused = true)]
async fn the_report_says_when_the_metric_changed() {
    let (source, _) = plan("app.latency_ms", step_at_100s, false, false);
    let monitor = Monitor::builder(latency_config())
        .source(source)
        .build()
        .unwrap();
    let bad = monitor.run(event()).await.unwrap();
    assert_eq!(bad.changes.len(), 1, "{:?}", bad.changes);
    let c = &bad.changes[0];
    assert_eq!(c.metric, "app.latency_ms");
    // The step is at 100 s; samples are 10 s apart, so the interval holds 100 s.
    assert_eq!(c.after_start_ms, 100_000, "{c:?}");
    let t = |ms: u64| (ms as i64 - bad.started_at_unix_ms as i64) / 1000;
    assert!(
        t(c.earliest_unix_ms) >= 80 && t(c.latest_unix_ms) <= 120,
        "{c:?}"
    );
    assert!(
        t(c.earliest_unix_ms) < 100 && t(c.latest_unix_ms) >= 100,
        "{c:?}"
    );
    // The levels are the means either side (the wobble is ±2 around 100 and 115).
    assert!(
        (c.before - 100.0).abs() < 1.0 && (c.after - 115.0).abs() < 2.0,
        "{c:?}"
    );
    assert!(
        c.message.starts_with("app.latency_ms rose from 100 to 11")
            && c.message.ends_with(", 1m 40s after the rollout started."),
        "{}",
        c.message
    );
    let ctx = cased_core::ReportContext::default();
    let md = cased_core::report::to_markdown(&bad, &ctx);
    assert!(md.contains("### When it changed"), "{md}");
    // The chart of the metric (history gives its samples) marks the change and its interval.
    let mut charted = ctx.clone();
    charted.series.insert(
        "app.latency_ms".into(),
        (0..20)
            .map(|i| cased_core::report::SeriesPoint {
                elapsed_ms: f64::from(i) * 10_000.0,
                value: step_at_100s(f64::from(i) * 10.0),
            })
            .collect(),
    );
    let html = cased_core::report::to_html(&bad, &charted);
    assert!(html.contains("<g class=\"change\">"), "the chart marks it");

    let (source, _) = plan("app.latency_ms", steady, false, false);
    let monitor = Monitor::builder(latency_config())
        .source(source)
        .build()
        .unwrap();
    let good = monitor.run(event()).await.unwrap();
    assert!(good.changes.is_empty(), "{:?}", good.changes);
    assert!(!cased_core::report::to_markdown(&good, &ctx).contains("When it changed"));
}

fn errors_half_percent_then_five(t: f64) -> f64 {
    if t >= 0.0 { 0.05 } else { 0.005 }
}

/// 100 ms with a uniform wobble of ±35 ms (σ ≈ 20 ms), 3σ higher from 100 s on.
fn three_sigma_at_100s(t: f64) -> f64 {
    if t >= 100.0 { 160.0 } else { 100.0 }
}

#[tokio::test(start_paused = true)]
async fn the_shift_detector_on_the_default_schedule_catches_a_3_sigma_step_and_passes_a_good_deploy()
 {
    let config = MonitorConfig::from_value(serde_json::json!({
        "detectors": [{"type": "shift", "metric": "app.latency_ms", "autocorrelation": false}]
    }))
    .unwrap();
    let (source, _) = noisy_plan("app.latency_ms", three_sigma_at_100s, false, false, 35.0);
    let bad = Monitor::builder(config.clone())
        .source(source)
        .build()
        .unwrap()
        .run(event())
        .await
        .unwrap();
    assert_eq!(bad.verdict, Verdict::Unhealthy, "{}", bad.reason);
    let f = bad
        .findings
        .iter()
        .find(|f| f.detector == "shift")
        .expect("a shift finding");
    let at = f.index.expect("an index");
    assert!(
        (10..=16).contains(&at),
        "caught within 6 samples of the step at sample 10, not before: {at}"
    );
    let (source, _) = noisy_plan("app.latency_ms", steady, false, false, 35.0);
    let good = Monitor::builder(config)
        .source(source)
        .build()
        .unwrap()
        .run(event())
        .await
        .unwrap();
    assert_eq!(
        good.verdict,
        Verdict::Healthy,
        "{} {:?}",
        good.reason,
        good.findings
    );
    assert!(
        good.ticks.len() >= 9,
        "the default schedule: {} ticks",
        good.ticks.len()
    );
}

#[tokio::test(start_paused = true)]
async fn error_rates_are_judged_from_source_counts() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "detectors": [{"type": "error_rate", "metric": "app.http"}]
    }))
    .unwrap();
    let (source, _) = plan("app.http", errors_half_percent_then_five, false, true);
    let monitor = Monitor::builder(config.clone())
        .source(source)
        .build()
        .unwrap();
    let report = monitor.run(event()).await.unwrap();
    assert_eq!(report.verdict, Verdict::Unhealthy, "{}", report.reason);
    assert!(
        report.baselines["app.http"].starts_with("the window before the deployment"),
        "{:?}",
        report.baselines
    );
    let (source, _) = plan("app.http", |_| 0.005, false, true);
    let report = Monitor::builder(config)
        .source(source)
        .build()
        .unwrap()
        .run(event())
        .await
        .unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Healthy,
        "{} {:?}",
        report.reason,
        report.findings
    );
}

#[tokio::test(start_paused = true)]
async fn canary_is_compared_with_control_live() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "baseline": {"pre_deploy": "0s"},
        "detectors": [{"type": "baseline", "metric": "app.latency_ms", "allowed_change": 0.1}]
    }))
    .unwrap();
    // `level(-1)` is the control's level: 100 ms; the canary runs at 150 ms.
    let (source, _) = plan(
        "app.latency_ms",
        |t| if t >= 0.0 { 150.0 } else { 100.0 },
        true,
        false,
    );
    let monitor = Monitor::builder(config.clone())
        .source(source)
        .build()
        .unwrap();
    let slow = monitor.run(event()).await.unwrap();
    assert_eq!(slow.verdict, Verdict::Unhealthy, "{}", slow.reason);
    assert!(
        slow.baselines["app.latency_ms"].starts_with("the control track"),
        "{:?}",
        slow.baselines
    );
    let (source, _) = plan("app.latency_ms", steady, true, false);
    let equal = Monitor::builder(config)
        .source(source)
        .build()
        .unwrap()
        .run(event())
        .await
        .unwrap();
    assert_eq!(
        equal.verdict,
        Verdict::Healthy,
        "{} {:?}",
        equal.reason,
        equal.findings
    );
}

#[tokio::test(start_paused = true)]
async fn a_replay_of_a_live_session_gives_the_same_verdict() {
    let (source, seen) = plan("app.latency_ms", step_at_100s, false, false);
    let monitor = Monitor::builder(latency_config())
        .source(source)
        .check(FnCheck::new("web", || async {
            CheckOutcome::pass("HTTP 200").with_latency(Duration::from_millis(12))
        }))
        .build()
        .unwrap();
    let live = monitor.run(event()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let recording = Recording {
        started_at: live.started_at_unix_ms as f64 / 1000.0,
        samples: seen.samples,
        checks: RecordedCheck::of_ticks(&live.ticks),
        ..Recording::default()
    };
    let replayed = monitor.replay(event(), recording).await.unwrap();
    assert_eq!(replayed.verdict, live.verdict);
    assert_eq!(replayed.reason, live.reason);
    assert_eq!(replayed.ended_by, live.ended_by);
    let indices = |r: &cased_core::Report| {
        r.findings
            .iter()
            .map(|f| (f.metric.clone(), f.index, f.tick))
            .collect::<Vec<_>>()
    };
    assert_eq!(indices(&replayed), indices(&live));
    assert_eq!(replayed.ticks.len(), live.ticks.len());
    assert_eq!(replayed.ticks[0].checks, live.ticks[0].checks);
}

#[test]
fn a_replay_needs_no_runtime_and_reports_bad_fields() {
    let monitor = Monitor::new(latency_config()).unwrap();
    let e = Recording::from_value(serde_json::json!({
        "started_at": 1000.0,
        "samples": [{"metric": "m", "timestamp": 1.0, "value": 1.0}, {"metric": "", "timestamp": 2.0, "value": 1.0}],
        "counts": [{"metric": "h", "timestamp": 1.0, "errors": 5, "requests": 2}]
    }))
    .unwrap_err();
    let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["samples[1].metric", "counts[0].errors"]);
    let e =
        Recording::from_value(serde_json::json!({"started_at": 1.0, "samplez": []})).unwrap_err();
    assert!(e.to_string().contains("samplez"), "{e}");
    let counts = (0..200)
        .map(|i| RecordedCounts {
            metric: "x".into(),
            timestamp: 1000.0 + 10.0 * f64::from(i),
            errors: 0,
            requests: 10,
        })
        .collect();
    let report = monitor
        .replay_blocking(
            event(),
            &Recording {
                started_at: 1000.0,
                counts,
                ..Recording::default()
            },
        )
        .unwrap();
    assert_eq!(report.verdict, Verdict::Healthy, "{}", report.reason);
    assert_eq!(
        report.started_at_unix_ms, 1_000_000,
        "the recording's clock, not the wall clock"
    );
}

/// A check whose latency is ~100 ms (a fixed wobble) until `after`, then `slow` ms.
fn web(after: Duration, slow: u64) -> FnCheck {
    let start = tokio::time::Instant::now();
    let n = Arc::new(Mutex::new(0u64));
    FnCheck::new("web", move || {
        let mut k = n.lock().unwrap();
        *k += 1;
        let base = 100 + (*k * 7) % 5;
        let ms = if start.elapsed() >= after {
            slow + (*k * 7) % 5
        } else {
            base
        };
        async move { CheckOutcome::pass("HTTP 200").with_latency(Duration::from_millis(ms)) }
    })
}

#[tokio::test(start_paused = true)]
async fn probes_alone_on_the_default_schedule_reach_a_verdict() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "detectors": [{"type": "baseline", "metric": "web.latency_ms"}]
    }))
    .unwrap();
    let baseline: Vec<f64> = (0..50).map(|i| 100.0 + f64::from(i % 5)).collect();
    let slow = Monitor::builder(config.clone())
        .check(web(Duration::ZERO, 300))
        .baseline("web.latency_ms", baseline.clone())
        .build()
        .unwrap();
    let report = slow.run(event()).await.unwrap();
    assert_eq!(report.verdict, Verdict::Unhealthy, "{}", report.reason);
    let same = Monitor::builder(config)
        .check(web(Duration::ZERO, 100))
        .baseline("web.latency_ms", baseline)
        .build()
        .unwrap();
    let report = same.run(event()).await.unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Healthy,
        "{} {:?}",
        report.reason,
        report.no_data
    );
    assert!(
        report.no_data.is_empty(),
        "the default schedule gives the detector enough values: {:?}",
        report.no_data
    );
}

#[tokio::test(start_paused = true)]
async fn check_evidence_reaches_updates_reports_and_a_replay() {
    let config = MonitorConfig::from_value(
        serde_json::json!({"schedule": {"intervals": ["1s"], "cooldown": "3s"}}),
    )
    .unwrap();
    let check = FnCheck::new("web", || async {
        CheckOutcome::fail("HTTP 503").with_evidence(serde_json::json!({"status": 503}))
    });
    let monitor = Monitor::builder(config).check(check).build().unwrap();
    let session = monitor.start(event()).unwrap();
    let mut updates = session.updates();
    let first = loop {
        if let Some(cased_core::UpdateEvent::Update(u)) = updates.next().await
            && !u.checks.is_empty()
        {
            break u;
        }
    };
    assert_eq!(first.checks[0].evidence, serde_json::json!({"status": 503}));
    let report = session.wait().await;
    assert_eq!(report.ticks[0].checks[0].evidence["status"], 503);
    let replayed = monitor
        .replay(
            event(),
            Recording {
                started_at: 1000.0,
                checks: RecordedCheck::of_ticks(&report.ticks),
                ..Recording::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        replayed.ticks[0].checks[0].evidence["status"], 503,
        "a replay keeps the recorded evidence"
    );
}

#[tokio::test(start_paused = true)]
async fn parts_given_at_start_join_the_plan_for_that_session_only() {
    use cased_core::{RollbackHook, StartOptions};
    let config = MonitorConfig::from_value(
        serde_json::json!({"schedule": {"intervals": ["1s"], "cooldown": "5s"}}),
    )
    .unwrap();
    let monitor = Monitor::builder(config)
        .check(FnCheck::new("web", || async { CheckOutcome::pass("ok") }))
        .build()
        .unwrap();
    let fired = Arc::new(Mutex::new(Vec::new()));
    let f = Arc::clone(&fired);
    let options = StartOptions::default()
        .check(Arc::new(FnCheck::new("queue", || async {
            CheckOutcome::fail("12,000 messages")
        })))
        .on_rollback(RollbackHook::new(move |ctx| {
            f.lock().unwrap().push(ctx.reason);
            async { Ok(()) }
        }));
    let report = monitor.start_with(event(), options).unwrap().wait().await;
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(
        report.ticks[0]
            .checks
            .iter()
            .map(|c| &*c.name)
            .collect::<Vec<_>>(),
        ["web", "queue"]
    );
    assert_eq!(
        fired.lock().unwrap().len(),
        1,
        "the hook given at start fired once"
    );
    let plain = monitor.run(event()).await.unwrap();
    assert_eq!(
        plain.verdict,
        Verdict::Healthy,
        "the next session has only the plan's check"
    );
    let clash = StartOptions::default().check(Arc::new(FnCheck::new("web", || async {
        CheckOutcome::pass("")
    })));
    let e = monitor.start_with(event(), clash).unwrap_err();
    assert_eq!(e.field_errors()[0].field, "checks");
}

/// A source that never answers in time, then fails.
#[derive(Debug)]
struct Broken;

#[async_trait::async_trait]
impl Source for Broken {
    async fn poll(&mut self, _: &PollContext) -> cased_core::Result<Polled> {
        Err(cased_core::Error::Transport("connection refused".into()))
    }

    async fn lookback(
        &mut self,
        _: &PollContext,
        _: Duration,
    ) -> cased_core::Result<Option<Polled>> {
        futures::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_that_fails_is_reported_and_never_stops_the_session() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "5s"},
        "verdict": {"min_samples": 2}
    }))
    .unwrap();
    let monitor = Monitor::builder(config)
        .source(SourcePlan::new("broken", None, || {
            Box::new(Broken) as Box<dyn Source>
        }))
        .check(FnCheck::new("web", || async { CheckOutcome::pass("ok") }))
        .build()
        .unwrap();
    let session = monitor.start(event()).unwrap();
    let mut updates = session.updates();
    let first = loop {
        if let Some(cased_core::UpdateEvent::Update(u)) = updates.next().await
            && u.tick > 0
        {
            break u;
        }
    };
    assert_eq!(first.source_errors[0].source, "broken");
    let report = session.wait().await;
    assert_eq!(
        report.verdict,
        Verdict::Healthy,
        "the checks measured: {}",
        report.reason
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("source broken could not be read")
                && n.contains("connection refused")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().any(|n| n.contains("pre-deploy window")),
        "the hanging look back is bounded: {:?}",
        report.notes
    );
}

/// A source that panics in every call.
#[derive(Debug)]
struct Panicking;

#[async_trait::async_trait]
impl Source for Panicking {
    async fn poll(&mut self, _: &PollContext) -> cased_core::Result<Polled> {
        panic!("boom in poll")
    }

    async fn lookback(
        &mut self,
        _: &PollContext,
        _: Duration,
    ) -> cased_core::Result<Option<Polled>> {
        panic!("boom in lookback")
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_that_panics_is_reported_and_never_stops_the_session() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "schedule": {"intervals": ["1s"], "cooldown": "5s"},
        "verdict": {"min_samples": 2}
    }))
    .unwrap();
    let monitor = Monitor::builder(config)
        .source(SourcePlan::new("bad", None, || {
            Box::new(Panicking) as Box<dyn Source>
        }))
        .check(FnCheck::new("web", || async { CheckOutcome::pass("ok") }))
        .build()
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(3600), monitor.run(event()))
        .await
        .expect("the session reached a verdict")
        .unwrap();
    assert_eq!(report.verdict, Verdict::Healthy, "{}", report.reason);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("the poll panicked: boom in poll")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().any(|n| n.contains("boom in lookback")),
        "{:?}",
        report.notes
    );
}
