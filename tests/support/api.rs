//! Helpers shared by the cross-crate integration tests: canonical events, a client tuned for
//! fast retries, and a buffer that captures `tracing` output.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cased_core::{Client, ClientBuilder, DeploymentEvent, DeploymentStatus, RetryPolicy};
use tracing_subscriber::fmt::MakeWriter;

/// The API key every test client uses. Distinctive, so a leak is easy to search for.
pub const TEST_KEY: &str = "ck_test_9f8e7d6c5b4a3210_DO_NOT_LEAK";

/// The path events are posted to, as the server sees it.
pub const DEPLOYMENTS: &str = "/api/v1/deployments/";

/// An event with every field set.
#[must_use]
pub fn full_event() -> DeploymentEvent {
    DeploymentEvent::builder("Deploy v1.4.2 to production")
        .repository("acme/checkout")
        .status(DeploymentStatus::Running)
        .external_url("https://github.com/acme/checkout/actions/runs/42")
        .commit_sha("4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39")
        .commit_message("Fix the basket total\n\nRounds half to even.")
        .git_ref("refs/heads/main")
        .environment("production")
        .correlation_id("github:acme/checkout:42:1")
        .metadata_entry("version", "1.4.2")
        .build()
        .expect("the full event is valid")
}

/// The exact JSON text of [`full_event`], key order included (metadata keys sort by name).
pub const FULL_EVENT_JSON: &str = concat!(
    r#"{"deployment_request":"Deploy v1.4.2 to production","#,
    r#""repository_full_name":"acme/checkout","#,
    r#""status":"running","#,
    r#""external_url":"https://github.com/acme/checkout/actions/runs/42","#,
    r#""commit_sha":"4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39","#,
    r#""commit_message":"Fix the basket total\n\nRounds half to even.","#,
    r#""ref":"refs/heads/main","#,
    r#""event_metadata":{"correlation_id":"github:acme/checkout:42:1","environment":"production","version":"1.4.2"}}"#,
);

/// An event with only the required field.
#[must_use]
pub fn minimal_event() -> DeploymentEvent {
    DeploymentEvent::builder("Deploy v1")
        .build()
        .expect("the minimal event is valid")
}

/// A retry policy with millisecond backoffs, so retry tests take milliseconds.
#[must_use]
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(30),
    }
}

/// A builder pointed at `base_url` with [`TEST_KEY`] and [`fast_retry`]`(3)`.
pub fn builder_for(base_url: &str) -> ClientBuilder {
    Client::builder()
        .api_key(TEST_KEY)
        .base_url(base_url)
        .retry_policy(fast_retry(3))
}

/// A client pointed at `base_url` with [`TEST_KEY`] and [`fast_retry`]`(max_retries)`.
///
/// # Panics
/// If the configuration does not build (it always should).
#[must_use]
pub fn client_for(base_url: &str, max_retries: u32) -> Client {
    builder_for(base_url)
        .retry_policy(fast_retry(max_retries))
        .build()
        .expect("test client builds")
}

/// Installs, once per test process, a global default subscriber that is interested in every
/// callsite (a bare `Registry`: it records nothing). Call it before a test installs its own
/// capturing subscriber with `set_default`.
///
/// Why: `tracing` caches each callsite's interest process-wide, computed on the first thread
/// that reaches it. When a sibling test with no subscriber gets there first, the interest is
/// `never` for every thread, and the capturing test misses that event (seen in CI:
/// `connection_refused_is_a_transport_error_after_retries` lost its "not delivered" line). With
/// a global default, a thread without its own subscriber still answers "interested".
pub fn every_callsite_stays_enabled() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another global default exists, which then serves the same purpose.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
}

/// A `tracing` writer that appends everything to a shared buffer the test can read back.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// An empty buffer; also makes sure no callsite was cached as disabled by a test without
    /// a subscriber ([`every_callsite_stays_enabled`]).
    #[must_use]
    pub fn new() -> Self {
        every_callsite_stays_enabled();
        Self::default()
    }

    /// Everything written so far, as text.
    #[must_use]
    pub fn contents(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A subscriber that records every event and span at TRACE level, without colours, into
    /// this buffer. Install it with `tracing::subscriber::set_default`.
    #[must_use]
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish()
    }
}

/// The handle `tracing-subscriber` writes one event through.
#[derive(Debug)]
pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(Arc::clone(&self.0))
    }
}
