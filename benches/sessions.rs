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
//!
//! `CASED_BENCH_HEAP=1` also counts the heap (a counting global allocator, off by default so
//! the timing runs pay nothing but one relaxed load per allocation): the live bytes per session
//! at the same moment, and the allocation sizes holding them, largest share first.

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use cased_core::{
    CheckOutcome, DeploymentEvent, FnCheck, Monitor, MonitorConfig, ScheduleConfig, VerdictConfig,
};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Live allocations by size: exact below `EXACT` bytes, by power of two from there.
const EXACT: usize = 4096;
const BUCKETS: usize = EXACT + 64;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BY_SIZE: [AtomicI64; BUCKETS] = [const { AtomicI64::new(0) }; BUCKETS];
/// Live bytes of the power-of-two buckets.
static BIG_BYTES: [AtomicI64; 64] = [const { AtomicI64::new(0) }; 64];

fn bucket(size: usize) -> usize {
    if size < EXACT {
        size
    } else {
        EXACT + size.ilog2() as usize
    }
}

/// The system allocator, counting live allocations when `COUNTING` is set. An allocation made
/// while counting and freed after (or the reverse) skews the totals by its size only.
struct Counting;

impl Counting {
    fn note(size: usize, sign: i64) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
            LIVE_BY_SIZE[bucket(size)].fetch_add(sign, Ordering::Relaxed);
            if size >= EXACT {
                BIG_BYTES[size.ilog2() as usize].fetch_add(sign * size as i64, Ordering::Relaxed);
            }
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size(), 1);
        // SAFETY: the caller's contract is passed on.
        unsafe { SystemAlloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::note(layout.size(), -1);
        // SAFETY: the caller's contract is passed on.
        unsafe { SystemAlloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(layout.size(), -1);
        Self::note(new_size, 1);
        // SAFETY: the caller's contract is passed on.
        unsafe { SystemAlloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A snapshot of the live allocations by size.
fn heap_snapshot() -> (i64, Vec<i64>, Vec<i64>) {
    let load = |c: &AtomicI64| c.load(Ordering::Relaxed);
    (
        load(&LIVE_BYTES),
        LIVE_BY_SIZE.iter().map(load).collect(),
        BIG_BYTES.iter().map(load).collect(),
    )
}

/// Prints the heap grown between two snapshots, per session, by allocation size.
fn print_heap(before: &(i64, Vec<i64>, Vec<i64>), during: &(i64, Vec<i64>, Vec<i64>), n: usize) {
    let per = |b: i64| b as f64 / n as f64;
    println!("live heap bytes/session  {:.0}", per(during.0 - before.0));
    let mut rows: Vec<(usize, i64)> = (0..EXACT)
        .map(|size| (size, during.1[size] - before.1[size]))
        .filter(|&(_, c)| c > 0)
        .collect();
    rows.sort_by_key(|&(size, c)| std::cmp::Reverse(size as i64 * c));
    println!("  size (B)  allocs/session  bytes/session");
    for (size, c) in rows.iter().take(25) {
        println!(
            "  {size:>8}  {:>14.2}  {:>13.0}",
            *c as f64 / n as f64,
            per(*size as i64 * c)
        );
    }
    for k in EXACT.ilog2() as usize..64 {
        let count = during.1[EXACT + k] - before.1[EXACT + k];
        let bytes = during.2[k] - before.2[k];
        if count != 0 || bytes != 0 {
            println!(
                "  2^{k:<2} ..    {:>14.4}  {:>13.0}",
                count as f64 / n as f64,
                per(bytes)
            );
        }
    }
}

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
    let counting = std::env::var_os("CASED_BENCH_HEAP").is_some_and(|v| v == "1");
    COUNTING.store(counting, Ordering::Relaxed);
    let heap_before = heap_snapshot();
    let before = rss_bytes(&mut sys, pid);

    let (reports, during, heap_during) = runtime.block_on(async {
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
        let heap_during = heap_snapshot();
        let mut reports = Vec::with_capacity(n);
        for s in &sessions {
            reports.push(s.wait().await);
        }
        (reports, during, heap_during)
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
    if counting {
        print_heap(&heap_before, &heap_during, n);
    }
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
