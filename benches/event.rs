//! Deployment event validation and serialization (issue 2 target: < 2 µs per event).
//!
//! `cargo bench -p cased-benches --bench event`
//!
//! Two groups with the same three benches: `event` timed by the wall clock (criterion's
//! default) and `event_thread_cpu` timed by the bench thread's CPU time, which leaves out the
//! time spent waiting for a core when other work shares the machine.

use std::hint::black_box;

use cased_benches::{FULL_EVENT_JSON, full_event_builder, thread_cpu_time};
use cased_core::DeploymentEvent;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn event(c: &mut Criterion) {
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Elements(1));

    // The builder's strings are created inside the timed loop too: that is what a caller pays.
    group.bench_function("build_validate_serialize", |b| {
        b.iter(|| {
            let event = full_event_builder().build().expect("valid");
            black_box(event.to_json())
        });
    });

    group.bench_function("parse_validate", |b| {
        b.iter(|| DeploymentEvent::from_json(black_box(FULL_EVENT_JSON)).expect("valid"));
    });

    let event = full_event_builder().build().expect("valid");
    group.bench_function("serialize", |b| b.iter(|| black_box(&event).to_json()));

    group.finish();
}

/// Runs `f` `iters` times and returns the CPU time the bench thread spent on it.
fn cpu_timed<T>(iters: u64, mut f: impl FnMut() -> T) -> std::time::Duration {
    let started = thread_cpu_time();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu_time() - started
}

fn event_thread_cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_thread_cpu");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_validate_serialize", |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                full_event_builder().build().expect("valid").to_json()
            })
        });
    });
    group.bench_function("parse_validate", |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                DeploymentEvent::from_json(black_box(FULL_EVENT_JSON)).expect("valid")
            })
        });
    });
    let event = full_event_builder().build().expect("valid");
    group.bench_function("serialize", |b| {
        b.iter_custom(|iters| cpu_timed(iters, || black_box(&event).to_json()))
    });
    group.finish();
}

criterion_group!(benches, event, event_thread_cpu);
criterion_main!(benches);
