//! 10,000 concurrent monitoring sessions on one runtime: resident memory per session and tick
//! lateness (issue 3). Not a criterion benchmark: one measured run, printed as a table.
//!
//! `cargo bench -p cased-benches --bench sessions` (env `CASED_BENCH_SESSIONS`, default 10000;
//! `CASED_BENCH_UPDATE_BUFFER`, the per-session update buffer, default 16 as in the library).
//!
//! Each session has one cheap check, ticks every second (the progressive schedule compressed),
//! holds a window of 100 pushed samples and runs a 10 s cool-down: 10 ticks each, 100,000 ticks
//! in all. Memory is the process's resident set (sysinfo) once every session has ticked and
//! pushed its samples, minus the resident set before the first session started.

use std::time::Duration;

use cased_core::{
    CheckOutcome, DeploymentEvent, FnCheck, Monitor, MonitorConfig, ScheduleConfig, VerdictConfig,
};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

fn rss_bytes(sys: &mut System, pid: Pid) -> u64 {
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing().with_memory(),
    );
    sys.process(pid).map_or(0, |p| p.memory())
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx]
}

fn main() {
    let n: usize = std::env::var("CASED_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let buffer: usize = std::env::var("CASED_BENCH_UPDATE_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pid = sysinfo::get_current_pid().expect("pid");
    let mut sys = System::new();

    let config = MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(1)],
            cooldown: Duration::from_secs(10),
            ..Default::default()
        },
        verdict: VerdictConfig {
            min_samples: 5,
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(FnCheck::new("cheap", || async { CheckOutcome::pass("ok") }))
        .sample_window(100)
        .update_buffer(buffer)
        .build()
        .expect("monitor");
    let event = DeploymentEvent::builder("Deploy v2")
        .repository("acme/shop")
        .environment("bench")
        .build()
        .unwrap();

    // Warm the runtime and allocator with one session so its one-off costs are not counted.
    runtime.block_on(async {
        let s = monitor.start(event.clone()).unwrap();
        s.cancel();
        s.wait().await;
    });
    let before = rss_bytes(&mut sys, pid);

    let (reports, during) = runtime.block_on(async {
        let mut sessions = Vec::with_capacity(n);
        for i in 0..n {
            let s = monitor.start(event.clone()).unwrap();
            for j in 0..100 {
                s.push("latency_ms", (i + j) as f64).unwrap();
            }
            sessions.push(s);
        }
        // Mid-run: every session exists, has its window full and has ticked a few times.
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let during = rss_bytes(&mut System::new(), pid);
        let mut reports = Vec::with_capacity(n);
        for s in &sessions {
            reports.push(s.wait().await);
        }
        (reports, during)
    });

    let mut late: Vec<Duration> = reports
        .iter()
        .flat_map(|r| r.ticks.iter().map(|t| t.late))
        .collect();
    late.sort();
    let ticks = late.len();
    let healthy = reports
        .iter()
        .filter(|r| r.verdict == cased_core::Verdict::Healthy)
        .count();
    let per_session = during.saturating_sub(before) as f64 / n as f64;
    println!("sessions                 {n}");
    println!("update buffer            {buffer}");
    println!("ticks run                {ticks}");
    println!("healthy verdicts         {healthy}");
    println!(
        "RSS before / during      {:.1} MiB / {:.1} MiB",
        before as f64 / 1048576.0,
        during as f64 / 1048576.0
    );
    println!("resident bytes/session   {per_session:.0}");
    println!(
        "tick lateness p50        {:.3} ms",
        percentile(&late, 0.50).as_secs_f64() * 1000.0
    );
    println!(
        "tick lateness p99        {:.3} ms",
        percentile(&late, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "tick lateness max        {:.3} ms",
        late.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    assert_eq!(healthy, n, "every session should end healthy");
}
