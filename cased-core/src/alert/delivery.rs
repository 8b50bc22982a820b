//! Delivery: one bounded queue and one task per channel, retries with exponential backoff and
//! full jitter (honouring `Retry-After`), a timeout per attempt, and a [`DeliveryReport`] for
//! every notification: delivered, failed after its last attempt, or coalesced into another.
//!
//! A queue holds at most one notification per group (a newer snapshot of a queued group replaces
//! it, carrying over the alerts only the older one had) and at most `queue_capacity` groups;
//! beyond that, new groups are merged into one digest notification at the end of the queue. So
//! memory stays bounded under a storm, every alert key still reaches the channel, and each merge
//! is reported with the keys it moved.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::{FutureExt, Stream};
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use super::config::DeliveryConfig;
use super::notifier::{Notifier, NotifyError};
use super::{AlertState, Notification, NotificationKind};
use crate::severity::Severity;

/// How one notification's delivery to one channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    /// The channel accepted it.
    Delivered,
    /// Every attempt failed (or the manager shut down first); `error` says why.
    Failed,
    /// Merged into another notification (`coalesced_into`) while queued; its alerts travel there.
    Coalesced,
    /// Not final: an attempt failed (`error`) and another follows in `retry_in`.
    Retrying,
}

/// The record of one notification's delivery to one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    /// The channel's name.
    pub channel: String,
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// The notification's id.
    pub notification_id: String,
    /// The route that made it.
    pub route: String,
    /// Its group (correlation id; `"*"` for a digest).
    pub group_key: String,
    /// Firing or resolved.
    pub status: AlertState,
    /// Its severity.
    pub severity: Severity,
    /// The dedup keys of the alerts it carried.
    pub keys: Vec<String>,
    /// Attempts made (0 when coalesced or never sent).
    pub attempts: u32,
    /// Time from the first attempt to the outcome.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::duration::as_millis")]
    pub elapsed: Duration,
    /// The last error, for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a delivery that succeeded after failed attempts: what happened first, e.g.
    /// `timed out, retried (delivered on attempt 2; attempt 1: no answer within 10s …)`. The
    /// receiver may have got the earlier attempts too; every attempt carries the same
    /// notification id (`X-Cased-Notification-Id` for webhooks), so it can drop duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried: Option<String>,
    /// For a coalesced notification: the notification that now carries its alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coalesced_into: Option<String>,
    /// For a retry: the wait before the next attempt.
    #[serde(
        rename = "retry_in_ms",
        serialize_with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_in: Option<Duration>,
    /// When the outcome was reached.
    #[serde(serialize_with = "super::rfc3339")]
    pub at: SystemTime,
}

impl DeliveryReport {
    fn new(channel: &str, n: &Notification, outcome: DeliveryOutcome) -> Self {
        Self {
            channel: channel.to_owned(),
            outcome,
            notification_id: n.id.clone(),
            route: n.route.clone(),
            group_key: n.group_key.clone(),
            status: n.status,
            severity: n.severity,
            keys: n.keys(),
            attempts: 0,
            elapsed: Duration::ZERO,
            error: None,
            retried: None,
            coalesced_into: None,
            retry_in: None,
            at: SystemTime::now(),
        }
    }
}

/// One item of a [`Deliveries`] stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryEvent {
    /// A delivery's outcome.
    Report(Arc<DeliveryReport>),
    /// The listener fell behind and this many reports were dropped for it (failures are also
    /// kept by [`super::AlertManager::failures`] and counted in the stats).
    Skipped(u64),
}

/// A listener's view of delivery outcomes, from its subscription on; ends after shutdown.
#[derive(Debug)]
pub struct Deliveries {
    rx: broadcast::Receiver<Arc<DeliveryReport>>,
}

impl Deliveries {
    /// The next outcome; `None` once the manager has shut down and every report was given.
    pub async fn next(&mut self) -> Option<DeliveryEvent> {
        match self.rx.recv().await {
            Ok(r) => Some(DeliveryEvent::Report(r)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(DeliveryEvent::Skipped(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The outcomes as a `futures::Stream`.
    pub fn into_stream(self) -> impl Stream<Item = DeliveryEvent> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut d| async move {
            d.next().await.map(|e| (e, d))
        }))
    }
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => crate::duration::as_millis(d, s),
        None => s.serialize_none(),
    }
}

/// Most recent final failures kept for [`super::AlertManager::failures`].
const KEPT_FAILURES: usize = 1000;

/// Counters of the delivery stage.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DeliveryCounters {
    pub(crate) delivered: u64,
    /// Of `delivered`, those that needed more than one attempt.
    pub(crate) delivered_after_retry: u64,
    pub(crate) failed: u64,
    pub(crate) coalesced: u64,
    pub(crate) retries: u64,
}

/// Where every outcome goes: the broadcast stream, the counters and the kept failures.
#[derive(Debug)]
pub(crate) struct Reporter {
    tx: Mutex<Option<broadcast::Sender<Arc<DeliveryReport>>>>,
    pub(crate) counters: Mutex<DeliveryCounters>,
    failures: Mutex<VecDeque<Arc<DeliveryReport>>>,
    /// The most recent deliveries that succeeded after a retry.
    retried: Mutex<VecDeque<Arc<DeliveryReport>>>,
}

impl Reporter {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tx: Mutex::new(Some(broadcast::channel(capacity).0)),
            counters: Mutex::new(DeliveryCounters::default()),
            failures: Mutex::new(VecDeque::new()),
            retried: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn subscribe(&self) -> Deliveries {
        let rx = match &*self.tx.lock().expect("reporter lock") {
            Some(tx) => tx.subscribe(),
            None => {
                // Shut down: a stream that ends at once.
                let (tx, rx) = broadcast::channel(1);
                drop(tx);
                rx
            }
        };
        Deliveries { rx }
    }

    pub(crate) fn retried(&self) -> Vec<Arc<DeliveryReport>> {
        self.retried
            .lock()
            .expect("retried lock")
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn failures(&self) -> Vec<Arc<DeliveryReport>> {
        self.failures
            .lock()
            .expect("failures lock")
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn close(&self) {
        self.tx.lock().expect("reporter lock").take();
    }

    fn report(&self, r: DeliveryReport) {
        let r = Arc::new(r);
        {
            let mut c = self.counters.lock().expect("counters lock");
            match r.outcome {
                DeliveryOutcome::Delivered => {
                    c.delivered += 1;
                    if r.retried.is_some() {
                        c.delivered_after_retry += 1;
                    }
                }
                DeliveryOutcome::Failed => c.failed += 1,
                DeliveryOutcome::Coalesced => c.coalesced += 1,
                DeliveryOutcome::Retrying => c.retries += 1,
            }
        }
        match r.outcome {
            DeliveryOutcome::Delivered => {
                tracing::debug!(channel = %r.channel, id = %r.notification_id, attempts = r.attempts, "notification delivered");
                if r.retried.is_some() {
                    let mut kept = self.retried.lock().expect("retried lock");
                    if kept.len() == KEPT_FAILURES {
                        kept.pop_front();
                    }
                    kept.push_back(Arc::clone(&r));
                }
            }
            DeliveryOutcome::Failed => {
                tracing::warn!(channel = %r.channel, id = %r.notification_id, attempts = r.attempts,
                    error = r.error.as_deref().unwrap_or(""), alerts = r.keys.len(), "notification not delivered");
                let mut f = self.failures.lock().expect("failures lock");
                if f.len() == KEPT_FAILURES {
                    f.pop_front();
                }
                f.push_back(Arc::clone(&r));
            }
            DeliveryOutcome::Retrying => {
                tracing::debug!(channel = %r.channel, id = %r.notification_id, attempt = r.attempts, retry_in = ?r.retry_in,
                    error = r.error.as_deref().unwrap_or(""), "retrying notification");
            }
            DeliveryOutcome::Coalesced => {
                tracing::info!(channel = %r.channel, id = %r.notification_id, into = r.coalesced_into.as_deref().unwrap_or(""),
                    alerts = r.keys.len(), "notification coalesced");
            }
        }
        if let Some(tx) = &*self.tx.lock().expect("reporter lock") {
            let _ = tx.send(r);
        }
    }
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Notification>,
    digest: Option<Notification>,
    in_flight: Option<Notification>,
    closed: bool,
    max_depth: usize,
}

/// One channel: its notifier, its settings and its queue.
pub(crate) struct ChannelQueue {
    pub(crate) name: Arc<str>,
    notifier: Arc<dyn Notifier>,
    config: DeliveryConfig,
    send_resolved: bool,
    state: Mutex<QueueState>,
    wake: Notify,
    reporter: Arc<Reporter>,
}

impl fmt::Debug for ChannelQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelQueue")
            .field("name", &self.name)
            .field("notifier", &self.notifier)
            .finish_non_exhaustive()
    }
}

impl ChannelQueue {
    pub(crate) fn new(
        name: &str,
        notifier: Arc<dyn Notifier>,
        config: DeliveryConfig,
        send_resolved: bool,
        reporter: Arc<Reporter>,
    ) -> Self {
        Self {
            name: name.into(),
            notifier,
            config,
            send_resolved,
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            reporter,
        }
    }

    /// (queued notifications now, the most ever queued).
    pub(crate) fn depth(&self) -> (usize, usize) {
        let s = self.state.lock().expect("queue lock");
        (s.items.len() + usize::from(s.digest.is_some()), s.max_depth)
    }

    /// Queues a notification for this channel (never waits).
    pub(crate) fn enqueue(&self, mut n: Notification) {
        if !self.send_resolved {
            n.alerts.retain(|a| a.is_firing());
            if n.alerts.is_empty() {
                return;
            }
        }
        n.refresh(self.config.max_alerts);
        let mut coalesced = Vec::new();
        {
            let mut s = self.state.lock().expect("queue lock");
            if s.closed {
                drop(s);
                let mut r = DeliveryReport::new(&self.name, &n, DeliveryOutcome::Failed);
                r.error = Some("the alert manager was shut down before delivery".into());
                self.reporter.report(r);
                return;
            }
            if let Some(q) = s.items.iter_mut().find(|q| {
                q.kind == NotificationKind::Group
                    && q.route == n.route
                    && q.group_key == n.group_key
            }) {
                let older = std::mem::replace(q, n);
                coalesced.push((older, q.id.clone()));
                merge(q, &coalesced[0].0, self.config.max_alerts);
            } else if s.items.len() < self.config.queue_capacity {
                s.items.push_back(n);
            } else {
                let digest = s.digest.get_or_insert_with(|| {
                    let mut d = Notification::new(
                        format!("{}-digest", n.id),
                        "*",
                        "*",
                        Vec::new(),
                        usize::MAX,
                    );
                    d.kind = NotificationKind::Digest;
                    d.correlation_id = None;
                    d.deployment = None;
                    d
                });
                if !digest.coalesced_groups.contains(&n.group_key) {
                    digest.coalesced_groups.push(n.group_key.clone());
                }
                merge(digest, &n, self.config.max_alerts);
                coalesced.push((n, digest.id.clone()));
            }
            let depth = s.items.len() + usize::from(s.digest.is_some());
            s.max_depth = s.max_depth.max(depth);
        }
        for (older, into) in coalesced {
            let mut r = DeliveryReport::new(&self.name, &older, DeliveryOutcome::Coalesced);
            r.coalesced_into = Some(into);
            self.reporter.report(r);
        }
        self.wake.notify_one();
    }

    /// Stops taking notifications; the worker ends once the queue is empty.
    pub(crate) fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.wake.notify_one();
    }

    /// Reports everything still queued or in flight as failed (after the shutdown grace).
    pub(crate) fn abandon(&self) {
        let left: Vec<Notification> = {
            let mut s = self.state.lock().expect("queue lock");
            s.closed = true;
            let mut v: Vec<Notification> = s.in_flight.take().into_iter().collect();
            v.extend(s.items.drain(..));
            v.extend(s.digest.take());
            v
        };
        for n in left {
            let mut r = DeliveryReport::new(&self.name, &n, DeliveryOutcome::Failed);
            r.error = Some("the alert manager was shut down before delivery".into());
            self.reporter.report(r);
        }
    }

    /// Whether a notification of `group_key` is queued or in flight here.
    pub(crate) fn has_pending(&self, group_key: &str) -> bool {
        let s = self.state.lock().expect("queue lock");
        s.items.iter().any(|n| n.group_key == group_key)
            || s.in_flight
                .as_ref()
                .is_some_and(|n| n.group_key == group_key)
            || s.digest
                .as_ref()
                .is_some_and(|d| d.coalesced_groups.iter().any(|g| g == group_key))
    }

    /// Reports the notifications of `group_key` still queued or in flight as failed (after a
    /// flush's grace) and drops them; the worker does not report an abandoned one again.
    pub(crate) fn abandon_group(&self, group_key: &str, why: &str) {
        let left: Vec<Notification> = {
            let mut s = self.state.lock().expect("queue lock");
            let mut v = Vec::new();
            if s.in_flight
                .as_ref()
                .is_some_and(|n| n.group_key == group_key)
            {
                v.extend(s.in_flight.take());
            }
            let (mine, rest): (VecDeque<_>, VecDeque<_>) =
                s.items.drain(..).partition(|n| n.group_key == group_key);
            s.items = rest;
            v.extend(mine);
            v
        };
        for n in left {
            let mut r = DeliveryReport::new(&self.name, &n, DeliveryOutcome::Failed);
            r.error = Some(why.to_owned());
            self.reporter.report(r);
        }
    }

    /// The channel's task: takes notifications in order and delivers each.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let n = {
                let mut s = self.state.lock().expect("queue lock");
                match s.items.pop_front().or_else(|| s.digest.take()) {
                    Some(n) => {
                        s.in_flight = Some(n.clone());
                        Some(n)
                    }
                    None if s.closed => return,
                    None => None,
                }
            };
            match n {
                Some(n) => {
                    let report = self.deliver(&n).await;
                    let mut s = self.state.lock().expect("queue lock");
                    // `abandon` may have reported it already.
                    if s.in_flight.take().is_some() {
                        drop(s);
                        self.reporter.report(report);
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    async fn deliver(&self, n: &Notification) -> DeliveryReport {
        let policy = self.config.retry_policy();
        let started = Instant::now();
        let mut attempt: u32 = 0;
        // The failed attempts before this one: whether any timed out, and the first error.
        let mut earlier: Option<(bool, String)> = None;
        loop {
            attempt += 1;
            // A panicking notifier is a failed delivery; the channel's worker lives on.
            let notify = std::panic::AssertUnwindSafe(self.notifier.notify(n)).catch_unwind();
            let result = match tokio::time::timeout(self.config.timeout, notify).await {
                Ok(Ok(r)) => r,
                Ok(Err(panic)) => Err(NotifyError::permanent(format!(
                    "the notifier panicked: {}",
                    crate::error::panic_message(&*panic)
                ))),
                Err(_) => Err(NotifyError::retryable(format!(
                    "no answer within {} (attempt timeout)",
                    crate::duration::format(self.config.timeout)
                ))),
            };
            let error = match result {
                Ok(()) => {
                    let mut r = DeliveryReport::new(&self.name, n, DeliveryOutcome::Delivered);
                    r.attempts = attempt;
                    r.elapsed = started.elapsed();
                    r.retried = earlier.map(|(timed_out, first)| {
                        format!(
                            "{}, retried (delivered on attempt {attempt}; attempt 1: {first})",
                            if timed_out { "timed out" } else { "failed" }
                        )
                    });
                    return r;
                }
                Err(e) => e,
            };
            let timed_out = error.message().contains("(attempt timeout)");
            earlier = Some(match earlier {
                None => (timed_out, error.message().to_owned()),
                Some((t, first)) => (t || timed_out, first),
            });
            let retries_done = attempt - 1;
            let give_up = |error: &NotifyError| {
                let mut r = DeliveryReport::new(&self.name, n, DeliveryOutcome::Failed);
                r.attempts = attempt;
                r.elapsed = started.elapsed();
                r.error = Some(error.message().to_owned());
                r
            };
            if !error.is_retryable() || retries_done >= policy.max_retries {
                return give_up(&error);
            }
            let delay = error
                .retry_after()
                .unwrap_or_else(|| policy.jittered_backoff(retries_done));
            // Checked: a `Retry-After` of 2^64 - 1 seconds gives up, never panics the worker.
            if started
                .elapsed()
                .checked_add(delay)
                .is_none_or(|t| t > policy.max_elapsed)
            {
                let mut r = give_up(&error);
                r.error = Some(format!(
                    "{} (the receiver asked to retry in {}, beyond the retry budget of {})",
                    error.message(),
                    crate::duration::format(delay),
                    crate::duration::format(policy.max_elapsed)
                ));
                return r;
            }
            let mut r = give_up(&error);
            r.outcome = DeliveryOutcome::Retrying;
            r.retry_in = Some(delay);
            self.reporter.report(r);
            tokio::time::sleep(delay).await;
        }
    }
}

/// Adds to `into` the alerts of `from` it does not have (by key), then caps it again.
fn merge(into: &mut Notification, from: &Notification, max_alerts: usize) {
    let mut have: HashSet<String> = into.keys().into_iter().collect();
    for a in &from.alerts {
        if have.insert(a.key.clone()) {
            into.alerts.push(Arc::clone(a));
        }
    }
    for k in &from.omitted_keys {
        if have.insert(k.clone()) {
            into.omitted_keys.push(k.clone());
            into.omitted += 1;
        }
    }
    for g in &from.coalesced_groups {
        if !into.coalesced_groups.contains(g) {
            into.coalesced_groups.push(g.clone());
        }
    }
    into.refresh(max_alerts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, FnNotifier};

    fn alert(key: &str, group: &str, state: AlertState) -> Arc<Alert> {
        let mut a = Alert::builder(Severity::Warning, key)
            .key(key)
            .correlation_id(group)
            .build()
            .unwrap();
        a.state = state;
        Arc::new(a)
    }

    fn note(id: &str, group: &str, alerts: Vec<Arc<Alert>>) -> Notification {
        Notification::new(id.into(), "r", group, alerts, usize::MAX)
    }

    fn queue(capacity: usize, send_resolved: bool) -> (ChannelQueue, Arc<Reporter>) {
        let reporter = Arc::new(Reporter::new(64));
        let config = DeliveryConfig {
            queue_capacity: capacity,
            max_alerts: 2,
            ..DeliveryConfig::default()
        };
        let n = Arc::new(FnNotifier::new("t", |_| async { Ok(()) }));
        (
            ChannelQueue::new("c", n, config, send_resolved, Arc::clone(&reporter)),
            reporter,
        )
    }

    #[test]
    fn a_newer_snapshot_of_a_queued_group_replaces_it_and_keeps_what_only_the_older_had() {
        let (q, reporter) = queue(4, true);
        let mut reports = reporter.subscribe();
        q.enqueue(note(
            "n1",
            "g",
            vec![
                alert("a", "g", AlertState::Firing),
                alert("gone", "g", AlertState::Resolved),
            ],
        ));
        q.enqueue(note(
            "n2",
            "g",
            vec![
                alert("a", "g", AlertState::Firing),
                alert("b", "g", AlertState::Firing),
            ],
        ));
        let s = q.state.lock().unwrap();
        assert_eq!(s.items.len(), 1);
        let n = &s.items[0];
        assert_eq!(n.id, "n2");
        let mut keys = n.keys();
        keys.sort();
        assert_eq!(keys, ["a", "b", "gone"]);
        assert_eq!(
            (n.alerts.len(), n.omitted),
            (2, 1),
            "max_alerts 2: the rest listed by key"
        );
        let Ok(r) = reports.rx.try_recv() else {
            panic!("no coalescing report")
        };
        assert_eq!(
            (
                r.outcome,
                r.notification_id.as_str(),
                r.coalesced_into.as_deref()
            ),
            (DeliveryOutcome::Coalesced, "n1", Some("n2"))
        );
        assert_eq!(r.keys, ["a", "gone"]);
    }

    #[test]
    fn beyond_capacity_new_groups_go_to_one_digest() {
        let (q, reporter) = queue(2, true);
        for g in 0..5 {
            let group = format!("g{g}");
            q.enqueue(note(
                &format!("n{g}"),
                &group,
                vec![alert(&format!("{group}/k"), &group, AlertState::Firing)],
            ));
        }
        let s = q.state.lock().unwrap();
        assert_eq!(s.items.len(), 2);
        let d = s.digest.as_ref().unwrap();
        assert_eq!(
            (d.kind, d.group_key.as_str(), d.deployment.is_none()),
            (NotificationKind::Digest, "*", true)
        );
        assert_eq!(d.coalesced_groups, ["g2", "g3", "g4"]);
        assert_eq!(d.alert_count(), 3);
        assert_eq!(
            (s.max_depth, reporter.counters.lock().unwrap().coalesced),
            (3, 3)
        );
    }

    #[test]
    fn channels_without_send_resolved_never_queue_resolutions() {
        let (q, _) = queue(4, false);
        q.enqueue(note("n1", "g", vec![alert("a", "g", AlertState::Resolved)]));
        assert!(q.state.lock().unwrap().items.is_empty());
        q.enqueue(note(
            "n2",
            "g",
            vec![
                alert("a", "g", AlertState::Resolved),
                alert("b", "g", AlertState::Firing),
            ],
        ));
        assert_eq!(q.state.lock().unwrap().items[0].keys(), ["b"]);
    }

    #[tokio::test]
    async fn after_close_a_notification_is_reported_failed() {
        let (q, reporter) = queue(4, true);
        q.close();
        q.enqueue(note("late", "g", vec![alert("a", "g", AlertState::Firing)]));
        let f = reporter.failures();
        assert_eq!(
            (f.len(), f[0].outcome, f[0].notification_id.as_str()),
            (1, DeliveryOutcome::Failed, "late")
        );
    }
}
