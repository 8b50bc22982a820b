//! The [`AlertManager`]: takes alerts, routes them, and delivers notifications through the
//! channels' queues. One routing task plus one task per channel; `fire` and `resolve` never wait
//! for a channel.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Alert;
use super::config::{AlertsConfig, ChannelConfig, DeliveryConfig, resolve_secret};
use super::delivery::{ChannelQueue, Deliveries, DeliveryReport, Reporter};
use super::inapp::{InAppNotifier, InAppStream};
use super::notifier::Notifier;
use super::route::{Outgoing, Router};
use super::slack::SlackNotifier;
use super::webhook::WebhookNotifier;
use crate::error::{Error, Problems, Result};

/// Counters of an [`AlertManager`], from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertStats {
    /// Alerts fired.
    pub fired: u64,
    /// Fires that repeated a firing alert on every route that took it, without raising it
    /// (no message).
    pub deduplicated: u64,
    /// Fires no route took.
    pub unrouted: u64,
    /// Alerts resolved.
    pub resolved: u64,
    /// Alerts escalated.
    pub escalated: u64,
    /// Notifications made by the routes (before fan-out to channels).
    pub notifications: u64,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Of `delivered`, those that succeeded only after a retry (e.g. the first attempt timed
    /// out): not failures, but the receiver may have seen the notification more than once.
    pub delivered_after_retry: u64,
    /// Deliveries that finally failed.
    pub failed: u64,
    /// Notifications merged into another while queued.
    pub coalesced: u64,
    /// Retries made.
    pub retries: u64,
    /// Notifications queued now, over all channels.
    pub queued: usize,
    /// The most notifications one channel ever held queued.
    pub max_queue_depth: usize,
}

/// Configures an [`AlertManager`]: the configuration plus notifiers given in code.
#[derive(Debug)]
#[must_use]
pub struct AlertManagerBuilder {
    config: AlertsConfig,
    custom: HashMap<String, Arc<dyn Notifier>>,
    report_buffer: usize,
    inapp_buffer: usize,
}

impl AlertManagerBuilder {
    /// The notifier of the channel named `name`: a `"type": "custom"` channel of the
    /// configuration, or a new channel (with the section's delivery settings, `send_resolved`
    /// on) when the configuration has none of that name. Routes refer to it by name.
    pub fn notifier(mut self, name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        self.custom.insert(name.into(), notifier);
        self
    }

    /// Reports kept for slow [`AlertManager::deliveries`] listeners (default 1024).
    pub fn report_buffer(mut self, n: usize) -> Self {
        self.report_buffer = n.max(1);
        self
    }

    /// Notifications kept for slow in-app listeners (default 256).
    pub fn inapp_buffer(mut self, n: usize) -> Self {
        self.inapp_buffer = n.max(1);
        self
    }

    /// Validates everything, reads secrets from the environment, builds the notifiers and starts
    /// the tasks on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every problem: the configuration's (see
    /// [`AlertsConfig::validate`]), unset `*_env` variables, a custom channel without a notifier,
    /// or no tokio runtime.
    pub fn build(self) -> Result<AlertManager> {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(Error::invalid(
                "runtime",
                "an alert manager must be built inside a tokio runtime",
            ));
        };
        let mut config = self.config;
        config.validate()?;
        let mut p = Problems::default();
        // Code-given notifiers without a configured channel become channels.
        let mut extra: Vec<&String> = self
            .custom
            .keys()
            .filter(|n| !config.channels.iter().any(|c| c.name() == *n))
            .collect();
        extra.sort();
        for name in extra {
            config
                .channels
                .push(ChannelConfig::Custom(super::config::CommonChannelConfig {
                    name: name.clone(),
                    send_resolved: true,
                    delivery: None,
                }));
        }
        let routes = config.effective_routes();
        let reporter = Arc::new(Reporter::new(self.report_buffer));
        // One HTTP client for every HTTP channel, built only when there is one (it loads the
        // platform's TLS roots).
        let needs_http = config.channels.iter().any(|c| {
            matches!(
                c,
                ChannelConfig::Slack(_)
                    | ChannelConfig::Webhook(_)
                    | ChannelConfig::Pagerduty(_)
                    | ChannelConfig::Alertmanager(_)
            )
        });
        let http = needs_http
            .then(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("cased/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))
            })
            .transpose()?;
        let mut channels = Vec::new();
        let mut inapp = HashMap::new();
        for (i, c) in config.channels.iter().enumerate() {
            let at = format!("channels[{i}]");
            let delivery: DeliveryConfig = c.delivery().copied().unwrap_or(config.delivery);
            let notifier: Option<Arc<dyn Notifier>> = match c {
                ChannelConfig::Slack(s) => {
                    match resolve_secret(
                        s.webhook_url.as_ref(),
                        s.webhook_url_env.as_deref(),
                        &format!("{at}.webhook_url"),
                    ) {
                        Ok(url) => match SlackNotifier::with_client(
                            http.clone().expect("built for HTTP channels"),
                            url,
                        ) {
                            Ok(n) => Some(Arc::new(n.max_findings(s.max_findings))),
                            Err(e) => {
                                p.add(format!("{at}.webhook_url"), e.to_string());
                                None
                            }
                        },
                        Err(e) => {
                            p.extend_from(&e);
                            None
                        }
                    }
                }
                ChannelConfig::Webhook(w) => {
                    match resolve_secret(
                        w.secret.as_ref(),
                        w.secret_env.as_deref(),
                        &format!("{at}.secret"),
                    ) {
                        Ok(secret) => match WebhookNotifier::with_client(
                            http.clone().expect("built for HTTP channels"),
                            &w.url,
                            secret,
                        ) {
                            Ok(n) => Some(Arc::new(n.headers(w.headers.clone()))),
                            Err(e) => {
                                p.extend_from(&e);
                                None
                            }
                        },
                        Err(e) => {
                            p.extend_from(&e);
                            None
                        }
                    }
                }
                ChannelConfig::Alertmanager(a) => {
                    let token = match (&a.bearer_token, &a.bearer_token_env) {
                        (None, None) => Ok(None),
                        (inline, env) => resolve_secret(
                            inline.as_ref(),
                            env.as_deref(),
                            &format!("{at}.bearer_token"),
                        )
                        .map(Some),
                    };
                    match token.and_then(|t| {
                        super::alertmanager::AlertmanagerNotifier::with_client(
                            http.clone().expect("built for HTTP channels"),
                            &a.url,
                            t,
                            a.labels.clone(),
                        )
                    }) {
                        Ok(n) => Some(Arc::new(n)),
                        Err(e) => {
                            for f in e.field_errors() {
                                let field = if f.field.starts_with(&at) {
                                    f.field.clone()
                                } else {
                                    format!("{at}.{}", f.field)
                                };
                                p.add(field, f.message.clone());
                            }
                            None
                        }
                    }
                }
                ChannelConfig::Pagerduty(d) => {
                    match resolve_secret(
                        d.routing_key.as_ref(),
                        d.routing_key_env.as_deref(),
                        &format!("{at}.routing_key"),
                    ) {
                        Ok(key) => match super::pagerduty::PagerDutyNotifier::with_client(
                            http.clone().expect("built for HTTP channels"),
                            &d.url,
                            key,
                        ) {
                            Ok(n) => Some(Arc::new(n)),
                            Err(e) => {
                                for f in e.field_errors() {
                                    p.add(format!("{at}.{}", f.field), f.message.clone());
                                }
                                None
                            }
                        },
                        Err(e) => {
                            p.extend_from(&e);
                            None
                        }
                    }
                }
                #[cfg(feature = "email")]
                ChannelConfig::Email(e) => {
                    match super::email::EmailNotifier::from_config(e, delivery.timeout) {
                        Ok(n) => Some(Arc::new(n)),
                        Err(err) => {
                            for f in err.field_errors() {
                                p.add(format!("{at}.{}", f.field), f.message.clone());
                            }
                            None
                        }
                    }
                }
                #[cfg(not(feature = "email"))]
                ChannelConfig::Email(_) => None,
                ChannelConfig::Inapp(_) => {
                    let n = InAppNotifier::new(self.inapp_buffer);
                    inapp.insert(c.name().to_owned(), n.clone());
                    Some(Arc::new(n))
                }
                ChannelConfig::Custom(_) => match self.custom.get(c.name()) {
                    Some(n) => Some(Arc::clone(n)),
                    None => {
                        p.add(
                            format!("{at}.name"),
                            format!(
                                "custom channel {:?} has no notifier: give one to the builder",
                                c.name()
                            ),
                        );
                        None
                    }
                },
            };
            if let Some(n) = notifier {
                channels.push(Arc::new(ChannelQueue::new(
                    c.name(),
                    n,
                    delivery,
                    c.send_resolved(),
                    Arc::clone(&reporter),
                )));
            }
        }
        p.finish("alerts configuration")?;
        let route_channels: Vec<Vec<usize>> = routes
            .iter()
            .map(|r| {
                r.channels
                    .iter()
                    .filter_map(|name| channels.iter().position(|c| &*c.name == name))
                    .collect()
            })
            .collect();
        let inner = Arc::new(Inner {
            router: Mutex::new(Router::new(&routes)),
            wake: Notify::new(),
            channels,
            route_channels,
            reporter,
            inapp: Mutex::new(inapp),
            tasks: Mutex::new(Vec::new()),
            stop: watch::channel(false).0,
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let mut tasks = Vec::new();
        for c in &inner.channels {
            tasks.push(handle.spawn(Arc::clone(c).run()));
        }
        // Subscribed before the task starts, so that a shutdown sent before it first runs is seen.
        let stop = inner.stop.subscribe();
        let router_task = handle.spawn(route_loop(Arc::clone(&inner), stop));
        *inner.tasks.lock().expect("tasks lock") = tasks;
        inner.tasks.lock().expect("tasks lock").push(router_task);
        Ok(AlertManager { inner })
    }
}

struct Inner {
    router: Mutex<Router>,
    wake: Notify,
    channels: Vec<Arc<ChannelQueue>>,
    route_channels: Vec<Vec<usize>>,
    reporter: Arc<Reporter>,
    inapp: Mutex<HashMap<String, InAppNotifier>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    closed: std::sync::atomic::AtomicBool,
}

impl Inner {
    fn dispatch(&self, out: Vec<Outgoing>) {
        for o in out {
            let targets = &self.route_channels[o.route];
            if let Some((last, rest)) = targets.split_last() {
                for &c in rest {
                    self.channels[c].enqueue(o.notification.clone());
                }
                self.channels[*last].enqueue(o.notification);
            }
        }
    }
}

async fn route_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        let deadline = inner.router.lock().expect("router lock").next_deadline();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = inner.wake.notified() => {}
            () = sleep => {}
            _ = stop.changed() => {
                let out = inner.router.lock().expect("router lock").flush_all(Instant::now());
                inner.dispatch(out);
                for c in &inner.channels {
                    c.close();
                }
                return;
            }
        }
        let out = inner
            .router
            .lock()
            .expect("router lock")
            .tick(Instant::now());
        inner.dispatch(out);
    }
}

/// Routes alerts and delivers notifications. Cheap to clone (an `Arc` inside); built with
/// [`AlertManager::new`] or [`AlertManager::builder`] inside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cased_core::Result<()> {
/// use cased_core::alert::{Alert, AlertManager, AlertsConfig, InAppEvent};
/// use cased_core::Severity;
/// let config = AlertsConfig::from_value(serde_json::json!({
///     "channels": [{"name": "dashboard", "type": "inapp"}],
///     "routes": [{"channels": ["dashboard"], "group_wait": "0s"}]
/// }))?;
/// let alerts = AlertManager::new(config)?;
/// let mut stream = alerts.subscribe("dashboard")?;
/// alerts.fire(Alert::builder(Severity::Critical, "p99 latency doubled").correlation_id("deploy-42").build()?)?;
/// let Some(InAppEvent::Notification(n)) = stream.next().await else { unreachable!() };
/// assert_eq!(n.alerts[0].title, "p99 latency doubled");
/// alerts.shutdown(std::time::Duration::from_secs(1)).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AlertManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for AlertManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertManager")
            .field("channels", &self.inner.channels)
            .finish_non_exhaustive()
    }
}

impl AlertManager {
    /// Builds a manager from its configuration (notifiers given in code: [`Self::builder`]).
    ///
    /// # Errors
    /// As [`AlertManagerBuilder::build`].
    pub fn new(config: AlertsConfig) -> Result<Self> {
        Self::builder(config).build()
    }

    /// Starts a builder, to add notifiers given in code.
    pub fn builder(config: AlertsConfig) -> AlertManagerBuilder {
        AlertManagerBuilder {
            config,
            custom: HashMap::new(),
            report_buffer: 1024,
            inapp_buffer: 256,
        }
    }

    /// Fires an alert: routed, deduplicated and grouped now; delivered later by the channels.
    /// Never waits for a channel.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Self::shutdown`].
    pub fn fire(&self, alert: Alert) -> Result<()> {
        self.ensure_open()?;
        if self
            .inner
            .router
            .lock()
            .expect("router lock")
            .fire(alert, Instant::now())
        {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Resolves the alert with dedup key `key` on every route where it fires. Channels with
    /// `send_resolved` are told. Returns on how many routes it was firing (0: unknown key).
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Self::shutdown`].
    pub fn resolve(&self, key: &str) -> Result<usize> {
        self.ensure_open()?;
        let n = self
            .inner
            .router
            .lock()
            .expect("router lock")
            .resolve(key, Instant::now());
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// Resolves every alert of a deployment (its correlation id), e.g. when its session ends
    /// healthy. Returns how many (alert, route) pairs were resolved.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Self::shutdown`].
    pub fn resolve_group(&self, correlation_id: &str) -> Result<usize> {
        self.ensure_open()?;
        let n = self
            .inner
            .router
            .lock()
            .expect("router lock")
            .resolve_group(correlation_id, Instant::now());
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// Resolves every alert of a deployment as its session ends (healthy or degraded). What
    /// fired and was never told (still within its group wait) is told first, as firing, and
    /// its resolution follows: an alert a session raised always reaches its channels (or is
    /// reported failed), never dropped because the session ended quickly. An explicit
    /// [`Self::resolve_group`] drops such alerts instead (there is nothing to clear).
    pub(crate) fn end_group(&self, correlation_id: &str) -> Result<usize> {
        self.ensure_open()?;
        let now = Instant::now();
        let (out, n) = {
            let mut router = self.inner.router.lock().expect("router lock");
            let out = router.flush_group(correlation_id, now);
            (out, router.resolve_group(correlation_id, now))
        };
        self.inner.dispatch(out);
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// The alerts firing now, one per dedup key.
    #[must_use]
    pub fn firing(&self) -> Vec<Arc<Alert>> {
        self.inner.router.lock().expect("router lock").firing()
    }

    /// Follows delivery outcomes from now on (any number of listeners).
    #[must_use]
    pub fn deliveries(&self) -> Deliveries {
        self.inner.reporter.subscribe()
    }

    /// The most recent final failures (up to 1000; the count of all is in [`Self::stats`]).
    #[must_use]
    pub fn failures(&self) -> Vec<Arc<DeliveryReport>> {
        self.inner.reporter.failures()
    }

    /// The most recent deliveries (up to 1,000) that succeeded only after a retry, each with
    /// its [`DeliveryReport::retried`] note (`timed out, retried …`).
    #[must_use]
    pub fn retried(&self) -> Vec<Arc<DeliveryReport>> {
        self.inner.reporter.retried()
    }

    /// Follows the notifications of the in-app channel named `channel`.
    ///
    /// # Errors
    /// [`Error::Validation`] on field `channel` when no in-app channel has that name (or the
    /// manager was shut down).
    pub fn subscribe(&self, channel: &str) -> Result<InAppStream> {
        self.inner
            .inapp
            .lock()
            .expect("inapp lock")
            .get(channel)
            .map(InAppNotifier::subscribe)
            .ok_or_else(|| {
                Error::invalid("channel", format!("{channel:?} is not an in-app channel"))
            })
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> AlertStats {
        let r = self.inner.router.lock().expect("router lock").stats;
        let d = *self.inner.reporter.counters.lock().expect("counters lock");
        let (queued, max_queue_depth) = self
            .inner
            .channels
            .iter()
            .map(|c| c.depth())
            .fold((0, 0), |(q, m), (cq, cm)| (q + cq, m.max(cm)));
        AlertStats {
            fired: r.fired,
            deduplicated: r.deduplicated,
            unrouted: r.unrouted,
            resolved: r.resolved,
            escalated: r.escalated,
            notifications: r.notifications,
            delivered: d.delivered,
            delivered_after_retry: d.delivered_after_retry,
            failed: d.failed,
            coalesced: d.coalesced,
            retries: d.retries,
            queued,
            max_queue_depth,
        }
    }

    /// Sends the untold changes of one deployment's groups (`group_key`, its correlation id) at
    /// once, ignoring group waits, and waits up to `grace` for every channel to finish their
    /// notifications (delivered, or failed after their retries). What is still queued or in
    /// flight then is reported as failed — never dropped silently. Sessions call it as they end,
    /// so their report holds the outcome of every alert they fired.
    pub async fn flush_group(&self, group_key: &str, grace: Duration) {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // Subscribed first: no outcome between the check and the wait is missed.
        let mut deliveries = self.deliveries();
        let out = self
            .inner
            .router
            .lock()
            .expect("router lock")
            .flush_group(group_key, Instant::now());
        self.inner.dispatch(out);
        let grace = grace.min(crate::limits::MAX_TIMEOUT);
        let deadline = Instant::now() + grace;
        loop {
            if !self.inner.channels.iter().any(|c| c.has_pending(group_key)) {
                return;
            }
            match tokio::time::timeout_at(deadline, deliveries.next()).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let why = format!(
            "not delivered within the {} grace given to a deployment's alerts as its session ends",
            crate::duration::format(grace)
        );
        for c in &self.inner.channels {
            c.abandon_group(group_key, &why);
        }
    }

    /// Stops taking alerts, sends every group with untold changes at once (ignoring group
    /// waits), and lets the channels deliver for up to `grace`; what is still undelivered then is
    /// reported as failed. Ends the delivery and in-app streams. Idempotent.
    pub async fn shutdown(&self, grace: Duration) -> AlertStats {
        if self
            .inner
            .closed
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return self.stats();
        }
        let _ = self.inner.stop.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock"));
        let deadline = Instant::now() + grace.min(crate::limits::MAX_TIMEOUT);
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
        for c in &self.inner.channels {
            c.abandon();
        }
        for (_, n) in self.inner.inapp.lock().expect("inapp lock").drain() {
            n.close();
        }
        self.inner.reporter.close();
        self.stats()
    }

    /// Whether [`Self::shutdown`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Error::Closed("the alert manager was shut down".into()))
        } else {
            Ok(())
        }
    }
}
