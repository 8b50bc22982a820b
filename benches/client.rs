//! Client throughput against a local deployments API (issue 2 target: ≥ 5,000 events/s on
//! loopback), with 1 and 64 requests in flight.
//!
//! `cargo bench -p cased-benches --bench client`
//!
//! One criterion iteration is one event: `iter_custom` posts `iters` events through
//! `buffer_unordered(in_flight)` and returns the wall time, so criterion's throughput line reads
//! in events per second. The client runs on a current-thread tokio runtime on the bench thread,
//! the server ([`LoopbackApi`]) on its own thread: one core each on a 2-core machine. Every
//! answer is checked, so a failing request cannot pass for a fast one.

use std::time::{Duration, Instant};

use cased_benches::{LoopbackApi, full_event_builder};
use cased_core::Client;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

fn client(c: &mut Criterion) {
    let server = LoopbackApi::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::builder()
        .api_key("ck_bench_not_a_secret")
        .base_url(server.base_url())
        .max_retries(0)
        .build()
        .expect("client");
    let event = full_event_builder().build().expect("valid event");

    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for in_flight in [1_usize, 64] {
        group.bench_with_input(
            BenchmarkId::new("in_flight", in_flight),
            &in_flight,
            |b, &in_flight| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let started = Instant::now();
                        futures::stream::iter(0..iters)
                            .map(|_| client.create_deployment(&event))
                            .buffer_unordered(in_flight)
                            .for_each(|answer| {
                                let answer = answer.expect("the loopback API accepts every event");
                                assert_eq!(answer.status, 201);
                                std::future::ready(())
                            })
                            .await;
                        started.elapsed()
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, client);
criterion_main!(benches);
