//! Shared inputs of the cased benchmarks: a fixed, fully populated deployment event (so every
//! run measures the same work) and a minimal deployments API on loopback.
//!
//! | bench | input | what is timed |
//! |---|---|---|
//! | `event` `build_validate_serialize` | the 8-field event below | builder → `build()` (validation) → `to_json()` |
//! | `event` `parse_validate` | [`FULL_EVENT_JSON`] (469 bytes) | `DeploymentEvent::from_json` |
//! | `client` `in_flight/1`, `in_flight/64` | the same event | `Client::create_deployment` against [`LoopbackApi`] |
//!
//! The `event_thread_cpu` group repeats the `event` benches timed by [`thread_cpu_time`]
//! instead of the wall clock, for numbers that hold on a busy shared machine.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use cased_core::{DeploymentEvent, DeploymentEventBuilder, DeploymentStatus};

/// The event every benchmark uses, as a builder (all eight wire fields set).
pub fn full_event_builder() -> DeploymentEventBuilder {
    DeploymentEvent::builder("Deploy v1.4.2 to production")
        .repository("acme/checkout")
        .status(DeploymentStatus::Running)
        .external_url("https://github.com/acme/checkout/actions/runs/4242424242")
        .commit_sha("4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39")
        .commit_message("Fix the basket total\n\nRound half to even when splitting discounts.")
        .git_ref("refs/heads/main")
        .environment("production")
        .correlation_id("github:acme/checkout:4242424242:1")
        .metadata_entry("version", "1.4.2")
}

/// The JSON text of [`full_event_builder`]'s event, exactly as sent.
pub const FULL_EVENT_JSON: &str = concat!(
    r#"{"deployment_request":"Deploy v1.4.2 to production","repository_full_name":"acme/checkout","#,
    r#""status":"running","external_url":"https://github.com/acme/checkout/actions/runs/4242424242","#,
    r#""commit_sha":"4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39","#,
    r#""commit_message":"Fix the basket total\n\nRound half to even when splitting discounts.","#,
    r#""ref":"refs/heads/main","event_metadata":{"correlation_id":"github:acme/checkout:4242424242:1","#,
    r#""environment":"production","version":"1.4.2"}}"#
);

/// A deployments API on `127.0.0.1` that reads each request body and answers `201 {"id":1}`.
/// It runs on its own thread with a single-threaded tokio runtime, so on a 2-core machine the
/// server and the client each have a core.
#[derive(Debug)]
pub struct LoopbackApi {
    addr: SocketAddr,
    _thread: JoinHandle<()>,
}

impl LoopbackApi {
    /// Starts the server and waits until it listens.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    #[must_use]
    pub fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback");
                tx.send(listener.local_addr().expect("local addr"))
                    .expect("report address");
                let path = format!("/{}", cased_core::DEPLOYMENTS_PATH);
                let app = axum::Router::new().route(&path, axum::routing::post(created));
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("the server thread reports its address");
        Self {
            addr,
            _thread: thread,
        }
    }

    /// The base URL to give the client.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn created(body: axum::body::Bytes) -> impl axum::response::IntoResponse {
    debug_assert!(!body.is_empty());
    (
        axum::http::StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"id":1}"#,
    )
}

/// CPU time consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
///
/// On a shared machine wall time also counts the time a thread waits for a core; this clock
/// counts only the time it ran, so CPU-bound benches measured with it say what the work costs.
///
/// # Panics
/// If the clock cannot be read (it can on Linux and the BSDs).
#[must_use]
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call, and
    // CLOCK_THREAD_CPUTIME_ID is a clock every supported kernel provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    let secs = u64::try_from(ts.tv_sec).expect("non-negative seconds");
    let nanos = u32::try_from(ts.tv_nsec).expect("nanoseconds below 10^9");
    Duration::new(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_json_is_the_fixed_event() {
        let event = full_event_builder().build().unwrap();
        assert_eq!(event.to_json(), FULL_EVENT_JSON);
        assert_eq!(
            FULL_EVENT_JSON.len(),
            469,
            "update the table in the module docs"
        );
        assert_eq!(DeploymentEvent::from_json(FULL_EVENT_JSON).unwrap(), event);
    }

    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let worked = thread_cpu_time() - before;
        assert!(worked > Duration::ZERO, "{x}");
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - before;
        assert!(
            slept < Duration::from_millis(25),
            "sleeping used {slept:?} of CPU"
        );
    }
}
