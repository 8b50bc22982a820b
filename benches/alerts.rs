//! Alerts: the routing + queueing path (dedup, grouping, per-channel queue) to an in-process
//! sink, the caller's cost of `fire`, and end-to-end signed webhook delivery to a loopback
//! receiver. Inputs are deterministic (no randomness in what is fired).
//!
//! | bench | size |
//! |---|---|
//! | `alerts/fire` | one `fire` into a manager holding 2,000 firing keys (dedup hits) |
//! | `alerts/route_and_queue/{1000,10000}` | alerts over 100 deployments x 20 keys, fired, flushed and delivered to an in-process sink |
//! | `alerts/webhook_e2e` | one notification: route, sign, POST to axum on 127.0.0.1, 200, report |

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cased_core::Severity;
use cased_core::alert::{
    Alert, AlertManager, AlertsConfig, DeliveryEvent, DeliveryOutcome, FnNotifier,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const DEPLOYMENTS: usize = 100;
const KEYS: usize = 20;

/// Alert number `i`: deployment `i % 100`, key `(i / 100) % 20` (so 2,000 distinct keys, and
/// every alert after the first 2,000 is a duplicate).
fn alert(i: usize) -> Alert {
    let d = i % DEPLOYMENTS;
    let k = (i / DEPLOYMENTS) % KEYS;
    Alert::builder(
        if k.is_multiple_of(5) {
            Severity::Critical
        } else {
            Severity::Warning
        },
        format!("finding {k}"),
    )
    .correlation_id(format!("deploy-{d}"))
    .key(format!("deploy-{d}/finding-{k}"))
    .build()
    .unwrap()
}

fn sink_manager(group_wait: &str) -> (AlertManager, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    let config = AlertsConfig::from_value(json!({
        "channels": [{"name": "sink", "type": "custom"}],
        "routes": [{"channels": ["sink"], "group_wait": group_wait, "group_interval": "1h", "repeat_interval": "4h"}]
    }))
    .unwrap();
    let sink = FnNotifier::new("sink", move |n| {
        c.fetch_add(n.alert_count() as u64, Ordering::Relaxed);
        async { Ok(()) }
    });
    (
        AlertManager::builder(config)
            .notifier("sink", Arc::new(sink))
            .build()
            .unwrap(),
        count,
    )
}

fn bench_fire(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (manager, _) = rt.block_on(async { sink_manager("1h") });
    let alerts: Vec<Alert> = (0..DEPLOYMENTS * KEYS).map(alert).collect();
    for a in &alerts {
        manager.fire(a.clone()).unwrap();
    }
    let mut g = c.benchmark_group("alerts");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("fire", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % alerts.len();
                alerts[i].clone()
            },
            |a| manager.fire(a).unwrap(),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();
    rt.block_on(manager.shutdown(Duration::from_secs(5)));
}

fn bench_route_and_queue(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("alerts/route_and_queue");
    g.sample_size(20);
    for n in [1_000usize, 10_000] {
        let alerts: Vec<Alert> = (0..n).map(alert).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &alerts, |b, alerts| {
            b.to_async(&rt).iter_custom(|iters| {
                let alerts = alerts.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (manager, delivered) = sink_manager("10s");
                        let batch = alerts.clone();
                        let start = Instant::now();
                        for a in batch {
                            manager.fire(a).unwrap();
                        }
                        // Flushes every group at once and waits for the sink to take them.
                        let stats = manager.shutdown(Duration::from_secs(60)).await;
                        total += start.elapsed();
                        assert_eq!(stats.failed, 0);
                        assert_eq!(
                            delivered.load(Ordering::Relaxed) as usize,
                            alerts.len().min(DEPLOYMENTS * KEYS)
                        );
                    }
                    total
                }
            });
        });
    }
    g.finish();
}

async fn ok() -> &'static str {
    "ok"
}

fn bench_webhook_e2e(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (manager, mut deliveries) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(ok)).await.unwrap() });
        let config = AlertsConfig::from_value(json!({
            "channels": [{"name": "hooks", "type": "webhook", "url": format!("http://{addr}/in"), "secret": "bench-secret"}],
            "routes": [{"channels": ["hooks"], "group_wait": "0s"}]
        }))
        .unwrap();
        let m = AlertManager::new(config).unwrap();
        let d = m.deliveries();
        (m, d)
    });
    let mut g = c.benchmark_group("alerts");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("webhook_e2e", |b| {
        b.iter(|| {
            i += 1;
            // A new deployment each time: a new group, flushed at once.
            let a = Alert::builder(Severity::Critical, "p99 latency doubled")
                .summary("p99 went from 180 ms to 410 ms")
                .correlation_id(format!("bench-{i}"))
                .build()
                .unwrap();
            manager.fire(a).unwrap();
            rt.block_on(async {
                match deliveries.next().await {
                    Some(DeliveryEvent::Report(r)) => {
                        assert_eq!(r.outcome, DeliveryOutcome::Delivered)
                    }
                    other => panic!("{other:?}"),
                }
            });
        });
    });
    g.finish();
    rt.block_on(manager.shutdown(Duration::from_secs(5)));
}

criterion_group!(
    benches,
    bench_fire,
    bench_route_and_queue,
    bench_webhook_e2e
);
criterion_main!(benches);
