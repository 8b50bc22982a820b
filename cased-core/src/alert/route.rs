//! Routing: which routes take an alert, deduplication by key, grouping per deployment, the
//! group wait / group interval / repeat interval timers (Alertmanager's semantics) and
//! escalation. A clock-driven state machine without I/O: the manager's task calls
//! [`Router::tick`] at [`Router::next_deadline`] and hands what it returns to the channels.
//!
//! Per route and deployment (correlation id) there is one group:
//! - a new group waits `group_wait` before its first notification, collecting alerts;
//! - after a notification, changes (a new key, a raised severity, a resolution) are told at most
//!   every `group_interval`;
//! - an alert fired again with the same key and no higher severity is a duplicate: it updates the
//!   stored alert (latest findings) but causes no message; firing alerts that did not change are
//!   told again after `repeat_interval`;
//! - an alert resolved before it was ever told is dropped (there is nothing to clear);
//! - an alert at least as severe as the route's escalation severity that stays firing for
//!   `escalation.after` is copied (escalated, optionally raised to emergency) into the
//!   escalation route's group for the same deployment, once per firing episode.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::config::RouteConfig;
use super::{Alert, AlertState, Notification};
use crate::severity::Severity;

type GroupId = (usize, Arc<str>);

#[derive(Debug)]
struct RouteRt {
    name: Arc<str>,
    min_severity: Severity,
    environments: Vec<String>,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    escalation: Option<Escalation>,
    escalation_only: bool,
}

#[derive(Debug, Clone, Copy)]
struct Escalation {
    after: Duration,
    target: usize,
    min_severity: Severity,
    raise: bool,
}

#[derive(Debug)]
struct Entry {
    alert: Arc<Alert>,
    /// Changed since the last notification.
    dirty: bool,
    /// Told at least once in this firing episode.
    notified: bool,
    firing_since: Instant,
    escalate_at: Option<Instant>,
    escalation_done: bool,
}

#[derive(Debug, Default)]
struct Group {
    alerts: BTreeMap<String, Entry>,
    next_flush: Option<Instant>,
    last_sent: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Flush(GroupId),
    Escalate(GroupId, String),
}

/// A notification made by a route, for each of its channels.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) route: usize,
    pub(crate) notification: Notification,
}

/// Counters of the routing stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouterStats {
    pub(crate) fired: u64,
    pub(crate) deduplicated: u64,
    pub(crate) unrouted: u64,
    pub(crate) resolved: u64,
    pub(crate) escalated: u64,
    pub(crate) notifications: u64,
}

/// The routing state machine.
#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<RouteRt>,
    groups: HashMap<GroupId, Group>,
    /// Which groups hold a key.
    index: HashMap<String, Vec<GroupId>>,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    timer_seq: u64,
    id_prefix: u64,
    next_id: u64,
    pub(crate) stats: RouterStats,
}

impl Router {
    /// A router over validated routes (escalation targets must exist).
    pub(crate) fn new(routes: &[RouteConfig]) -> Self {
        let by_name: HashMap<&str, usize> = routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let routes = routes
            .iter()
            .map(|r| RouteRt {
                name: r.name.as_str().into(),
                min_severity: r.min_severity,
                environments: r.environments.clone(),
                group_wait: r.group_wait,
                group_interval: r.group_interval,
                repeat_interval: r.repeat_interval,
                escalation: r.escalation.as_ref().and_then(|e| {
                    by_name.get(e.route.as_str()).map(|&target| Escalation {
                        after: e.after,
                        target,
                        min_severity: e.min_severity,
                        raise: e.raise_to_emergency,
                    })
                }),
                escalation_only: r.escalation_only,
            })
            .collect();
        Self {
            routes,
            groups: HashMap::new(),
            index: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            id_prefix: fastrand::u64(..),
            next_id: 0,
            stats: RouterStats::default(),
        }
    }

    /// The route's name.
    #[cfg(test)]
    pub(crate) fn route_name(&self, route: usize) -> &str {
        &self.routes[route].name
    }

    /// When [`Router::tick`] has something to do next (possibly early, never late).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Takes an alert (firing). Returns whether the next deadline moved earlier.
    pub(crate) fn fire(&mut self, mut alert: Alert, now: Instant) -> bool {
        let before = self.next_deadline();
        self.stats.fired += 1;
        alert.state = AlertState::Firing;
        alert.resolved_at = None;
        alert.escalated = false;
        let alert = Arc::new(alert);
        let env = alert.deployment.environment.as_deref();
        let mut routed = false;
        let mut changed = false;
        for r in 0..self.routes.len() {
            let route = &self.routes[r];
            let env_ok = route.environments.is_empty()
                || env.is_some_and(|e| route.environments.iter().any(|x| x == e));
            if route.escalation_only || alert.severity < route.min_severity || !env_ok {
                continue;
            }
            routed = true;
            changed |= self.upsert(r, Arc::clone(&alert), now);
        }
        if !routed {
            self.stats.unrouted += 1;
        } else if !changed {
            self.stats.deduplicated += 1;
        }
        moved_earlier(before, self.next_deadline())
    }

    /// Puts an alert in its group on route `r`; returns whether that is news (not a duplicate).
    fn upsert(&mut self, r: usize, alert: Arc<Alert>, now: Instant) -> bool {
        let gid: GroupId = (r, alert.correlation_id.as_str().into());
        let route = &self.routes[r];
        let (group_wait, group_interval) = (route.group_wait, route.group_interval);
        let escalation = route.escalation;
        let group = self.groups.entry(gid.clone()).or_default();
        let key = alert.key.clone();
        let mut changed = true;
        let entry = match group.alerts.get_mut(&key) {
            Some(e) if e.alert.is_firing() => {
                let old = &e.alert;
                let raised = alert.severity > old.severity || (alert.escalated && !old.escalated);
                let mut merged = (*alert).clone();
                merged.started_at = old.started_at;
                merged.severity = merged.severity.max(old.severity);
                merged.escalated |= old.escalated;
                merged.updated_at = SystemTime::now();
                e.alert = Arc::new(merged);
                if raised {
                    e.dirty = true;
                } else {
                    changed = false;
                }
                e
            }
            Some(e) => {
                // Resolved, its resolution not told yet: a new firing episode.
                *e = Entry {
                    alert,
                    dirty: true,
                    notified: false,
                    firing_since: now,
                    escalate_at: None,
                    escalation_done: false,
                };
                e
            }
            None => {
                self.index.entry(key.clone()).or_default().push(gid.clone());
                group.alerts.entry(key.clone()).or_insert(Entry {
                    alert,
                    dirty: true,
                    notified: false,
                    firing_since: now,
                    escalate_at: None,
                    escalation_done: false,
                })
            }
        };
        let mut escalate_at = None;
        if let Some(esc) = escalation
            && entry.alert.severity >= esc.min_severity
            && entry.escalate_at.is_none()
            && !entry.escalation_done
        {
            let at = entry.firing_since + esc.after;
            entry.escalate_at = Some(at);
            escalate_at = Some(at);
        }
        let flush = if changed {
            schedule_change(group, now, group_wait, group_interval)
        } else {
            None
        };
        if let Some(at) = escalate_at {
            self.push_timer(at, Timer::Escalate(gid.clone(), key));
        }
        if let Some(at) = flush {
            self.push_timer(at, Timer::Flush(gid));
        }
        changed
    }

    /// Resolves `key` on every route where it fires; returns on how many.
    pub(crate) fn resolve(&mut self, key: &str, now: Instant) -> usize {
        let Some(gids) = self.index.get(key).cloned() else {
            return 0;
        };
        let mut n = 0;
        for gid in gids {
            n += usize::from(self.resolve_in(&gid, key, now));
        }
        if n > 0 {
            self.stats.resolved += 1;
        }
        n
    }

    /// Resolves every alert of a deployment; returns how many alerts (per route) were resolved.
    pub(crate) fn resolve_group(&mut self, correlation_id: &str, now: Instant) -> usize {
        let mut targets: Vec<(GroupId, String)> = Vec::new();
        for (gid, g) in &self.groups {
            if &*gid.1 == correlation_id {
                targets.extend(
                    g.alerts
                        .iter()
                        .filter(|(_, e)| e.alert.is_firing())
                        .map(|(k, _)| (gid.clone(), k.clone())),
                );
            }
        }
        let mut n = 0;
        let mut keys = std::collections::HashSet::new();
        for (gid, key) in targets {
            if self.resolve_in(&gid, &key, now) {
                n += 1;
                keys.insert(key);
            }
        }
        self.stats.resolved += keys.len() as u64;
        n
    }

    fn resolve_in(&mut self, gid: &GroupId, key: &str, now: Instant) -> bool {
        let route = &self.routes[gid.0];
        let (group_wait, group_interval) = (route.group_wait, route.group_interval);
        let Some(group) = self.groups.get_mut(gid) else {
            return false;
        };
        let Some(e) = group.alerts.get_mut(key) else {
            return false;
        };
        if !e.alert.is_firing() {
            return false;
        }
        if !e.notified {
            // Never told: nothing to clear.
            group.alerts.remove(key);
            self.unindex(key, gid);
            if self.groups.get(gid).is_some_and(|g| g.alerts.is_empty()) {
                self.groups.remove(gid);
            }
            return true;
        }
        let mut resolved = (*e.alert).clone();
        resolved.state = AlertState::Resolved;
        let t = SystemTime::now();
        resolved.resolved_at = Some(t);
        resolved.updated_at = t;
        e.alert = Arc::new(resolved);
        e.dirty = true;
        e.escalate_at = None;
        if let Some(at) = schedule_change(group, now, group_wait, group_interval) {
            self.push_timer(at, Timer::Flush(gid.clone()));
        }
        true
    }

    fn unindex(&mut self, key: &str, gid: &GroupId) {
        if let Some(v) = self.index.get_mut(key) {
            v.retain(|g| g != gid);
            if v.is_empty() {
                self.index.remove(key);
            }
        }
    }

    /// The firing alerts, one per key (the most severe copy).
    pub(crate) fn firing(&self) -> Vec<Arc<Alert>> {
        let mut by_key: BTreeMap<&str, &Arc<Alert>> = BTreeMap::new();
        for g in self.groups.values() {
            for (k, e) in &g.alerts {
                if e.alert.is_firing() {
                    let slot = by_key.entry(k).or_insert(&e.alert);
                    if e.alert.severity > slot.severity {
                        *slot = &e.alert;
                    }
                }
            }
        }
        by_key.into_values().cloned().collect()
    }

    /// Runs every timer due at `now`.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, _, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Flush(gid) => {
                    if self
                        .groups
                        .get(&gid)
                        .is_some_and(|g| g.next_flush == Some(at))
                        && let Some(o) = self.flush(&gid, now)
                    {
                        out.push(o);
                    }
                }
                Timer::Escalate(gid, key) => self.escalate(&gid, &key, at, now),
            }
        }
        out
    }

    /// Flushes every group with something untold, ignoring the timers (at shutdown).
    /// Like [`Self::flush_all`], for the groups of one group key (one deployment) only.
    pub(crate) fn flush_group(&mut self, group_key: &str, now: Instant) -> Vec<Outgoing> {
        let mut gids: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(k, g)| &*k.1 == group_key && g.alerts.values().any(|e| e.dirty))
            .map(|(k, _)| k.clone())
            .collect();
        gids.sort();
        gids.iter().filter_map(|gid| self.flush(gid, now)).collect()
    }

    pub(crate) fn flush_all(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut gids: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.alerts.values().any(|e| e.dirty))
            .map(|(k, _)| k.clone())
            .collect();
        gids.sort();
        gids.iter().filter_map(|gid| self.flush(gid, now)).collect()
    }

    fn flush(&mut self, gid: &GroupId, now: Instant) -> Option<Outgoing> {
        let repeat = self.routes[gid.0].repeat_interval;
        let group = self.groups.get_mut(gid)?;
        group.next_flush = None;
        let changed = group.alerts.values().any(|e| e.dirty);
        let repeat_due = group.last_sent.is_none_or(|t| now >= t + repeat);
        let any_firing = group.alerts.values().any(|e| e.alert.is_firing());
        let mut next = None;
        let mut made = None;
        if changed || (repeat_due && any_firing) {
            let alerts: Vec<Arc<Alert>> = group
                .alerts
                .values()
                .filter(|e| e.alert.is_firing() || e.dirty)
                .map(|e| Arc::clone(&e.alert))
                .collect();
            let mut resolved_keys = Vec::new();
            for (k, e) in &mut group.alerts {
                e.dirty = false;
                e.notified = true;
                if !e.alert.is_firing() {
                    resolved_keys.push(k.clone());
                }
            }
            for k in &resolved_keys {
                group.alerts.remove(k);
            }
            group.last_sent = Some(now);
            if any_firing {
                next = Some(now + repeat);
            }
            self.next_id += 1;
            let id = format!("{:016x}-{}", self.id_prefix, self.next_id);
            let route = &self.routes[gid.0];
            made = Some(Outgoing {
                route: gid.0,
                notification: Notification::new(id, &route.name, &gid.1, alerts, usize::MAX),
            });
            self.stats.notifications += 1;
            for k in &resolved_keys {
                self.unindex(k, gid);
            }
        } else if any_firing {
            next = Some(group.last_sent.map_or(now, |t| t + repeat));
        }
        let group = self.groups.get_mut(gid)?;
        if group.alerts.is_empty() {
            self.groups.remove(gid);
        } else if let Some(at) = next {
            group.next_flush = Some(at);
            self.push_timer(at, Timer::Flush(gid.clone()));
        }
        made
    }

    fn escalate(&mut self, gid: &GroupId, key: &str, at: Instant, now: Instant) {
        let Some(esc) = self.routes[gid.0].escalation else {
            return;
        };
        let Some(e) = self.groups.get_mut(gid).and_then(|g| g.alerts.get_mut(key)) else {
            return;
        };
        if e.escalate_at != Some(at)
            || !e.alert.is_firing()
            || e.escalation_done
            || e.alert.severity < esc.min_severity
        {
            return;
        }
        e.escalation_done = true;
        e.escalate_at = None;
        let mut copy = (*e.alert).clone();
        copy.escalated = true;
        if esc.raise {
            copy.severity = Severity::Emergency;
        }
        copy.updated_at = SystemTime::now();
        self.stats.escalated += 1;
        tracing::info!(route = %self.routes[gid.0].name, to = %self.routes[esc.target].name, key, "escalating an alert that stayed firing");
        self.upsert(esc.target, Arc::new(copy), now);
    }

    fn push_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, timer)));
    }
}

/// Schedules a group's flush after a change; returns the new flush time if it moved.
fn schedule_change(
    group: &mut Group,
    now: Instant,
    group_wait: Duration,
    group_interval: Duration,
) -> Option<Instant> {
    let due = match group.last_sent {
        None => group.next_flush.unwrap_or(now + group_wait),
        Some(t) => (t + group_interval).max(now),
    };
    if group.next_flush.is_none_or(|t| due < t) {
        group.next_flush = Some(due);
        Some(due)
    } else {
        None
    }
}

fn moved_earlier(before: Option<Instant>, after: Option<Instant>) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(b), Some(a)) => a < b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertDeployment;
    use crate::alert::config::EscalationConfig;

    fn route(name: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            channels: vec!["c".into()],
            group_wait: Duration::from_secs(10),
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(3600),
            ..RouteConfig::default()
        }
    }

    fn alert(sev: Severity, title: &str, cid: &str, env: Option<&str>) -> Alert {
        Alert::builder(sev, title)
            .correlation_id(cid)
            .deployment(AlertDeployment {
                deployment_request: "Deploy".into(),
                environment: env.map(str::to_owned),
                ..AlertDeployment::default()
            })
            .build()
            .unwrap()
    }

    fn titles(o: &Outgoing) -> Vec<(String, AlertState)> {
        o.notification
            .alerts
            .iter()
            .map(|a| (a.title.clone(), a.state))
            .collect()
    }

    #[test]
    fn a_group_waits_then_sends_one_message_for_all_its_alerts() {
        let t0 = Instant::now();
        let mut r = Router::new(&[route("r")]);
        assert!(r.fire(alert(Severity::Warning, "a", "d1", None), t0));
        assert!(!r.fire(
            alert(Severity::Critical, "b", "d1", None),
            t0 + Duration::from_secs(3)
        ));
        assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(r.tick(t0 + Duration::from_secs(9)).is_empty());
        let out = r.tick(t0 + Duration::from_secs(10));
        assert_eq!(out.len(), 1);
        assert_eq!(
            titles(&out[0]),
            [
                ("b".into(), AlertState::Firing),
                ("a".into(), AlertState::Firing)
            ]
        );
        assert_eq!(out[0].notification.group_key, "d1");
    }

    #[test]
    fn changes_wait_for_the_group_interval_and_duplicates_for_the_repeat_interval() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = Router::new(&[route("r")]);
        r.fire(alert(Severity::Warning, "a", "d1", None), t0);
        assert_eq!(r.tick(t0 + s(10)).len(), 1);
        // A duplicate: no message.
        r.fire(alert(Severity::Warning, "a", "d1", None), t0 + s(20));
        assert_eq!(r.stats.deduplicated, 1);
        assert!(r.tick(t0 + s(3000)).is_empty());
        // A new alert in the group: told at once, the last message being a group interval ago.
        r.fire(alert(Severity::Warning, "b", "d1", None), t0 + s(3001));
        assert_eq!(r.next_deadline(), Some(t0 + s(3001)));
        let out = r.tick(t0 + s(3001));
        assert_eq!(titles(&out[0]).len(), 2);
        r.fire(alert(Severity::Critical, "a", "d1", None), t0 + s(3002));
        assert!(r.tick(t0 + s(3060)).is_empty());
        let out = r.tick(t0 + s(3061));
        assert_eq!(
            out[0].notification.severity,
            Severity::Critical,
            "a raised severity is a change"
        );
        // Nothing changes: repeated after the repeat interval.
        assert!(r.tick(t0 + s(3061 + 3599)).is_empty());
        assert_eq!(r.tick(t0 + s(3061 + 3600)).len(), 1);
    }

    #[test]
    fn resolution_is_told_once_and_unnotified_alerts_vanish() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = Router::new(&[route("r")]);
        r.fire(alert(Severity::Warning, "a", "d1", None), t0);
        r.fire(alert(Severity::Warning, "quick", "d2", None), t0);
        assert_eq!(r.resolve("d2/quick", t0 + s(1)), 1);
        let out = r.tick(t0 + s(10));
        assert_eq!(out.len(), 1, "the resolved group had never been told");
        assert_eq!(r.resolve("d1/a", t0 + s(20)), 1);
        assert_eq!(r.resolve("d1/a", t0 + s(21)), 0, "already resolved");
        assert!(r.tick(t0 + s(69)).is_empty());
        let out = r.tick(t0 + s(70));
        assert_eq!(titles(&out[0]), [("a".into(), AlertState::Resolved)]);
        assert_eq!(out[0].notification.status, AlertState::Resolved);
        assert!(r.groups.is_empty() && r.index.is_empty() && r.firing().is_empty());
        assert_eq!(r.tick(t0 + s(100_000)).len(), 0);
    }

    #[test]
    fn filters_by_severity_and_environment() {
        let t0 = Instant::now();
        let mut prod = route("prod");
        prod.environments = vec!["production".into()];
        let mut crit = route("crit");
        crit.min_severity = Severity::Critical;
        let mut r = Router::new(&[prod, crit]);
        r.fire(
            alert(Severity::Warning, "w-prod", "d", Some("production")),
            t0,
        );
        r.fire(
            alert(Severity::Critical, "c-stag", "d", Some("staging")),
            t0,
        );
        r.fire(alert(Severity::Info, "i-none", "d", None), t0);
        let out = r.tick(t0 + Duration::from_secs(10));
        let by_route: Vec<(&str, Vec<(String, AlertState)>)> = out
            .iter()
            .map(|o| (r.route_name(o.route), titles(o)))
            .collect();
        assert_eq!(by_route.len(), 2);
        assert!(by_route.contains(&("prod", vec![("w-prod".into(), AlertState::Firing)])));
        assert!(by_route.contains(&("crit", vec![("c-stag".into(), AlertState::Firing)])));
        assert_eq!(r.stats.unrouted, 1);
    }

    #[test]
    fn a_critical_alert_that_stays_firing_escalates_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut main = route("main");
        main.escalation = Some(EscalationConfig {
            after: s(900),
            route: "page".into(),
            min_severity: Severity::Critical,
            raise_to_emergency: true,
        });
        let mut page = route("page");
        page.escalation_only = true;
        page.group_wait = Duration::ZERO;
        let mut r = Router::new(&[main, page]);
        r.fire(alert(Severity::Critical, "down", "d", None), t0);
        r.fire(alert(Severity::Warning, "slow", "d", None), t0);
        assert_eq!(r.tick(t0 + s(10)).len(), 1);
        r.fire(alert(Severity::Critical, "down", "d", None), t0 + s(800));
        assert!(r.tick(t0 + s(899)).is_empty());
        let out = r.tick(t0 + s(900));
        assert_eq!(out.len(), 1);
        assert_eq!(r.route_name(out[0].route), "page");
        let n = &out[0].notification;
        assert!(n.escalated);
        assert_eq!(
            (n.severity, titles(&out[0])),
            (
                Severity::Emergency,
                vec![("down".into(), AlertState::Firing)]
            )
        );
        assert!(
            r.tick(t0 + s(3000)).is_empty(),
            "escalates once per firing episode"
        );
        // Both routes told the alert, so both tell its resolution.
        r.resolve("d/down", t0 + s(3001));
        let out = r.tick(t0 + s(3001 + 60));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn an_alert_resolved_before_the_delay_does_not_escalate() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut main = route("main");
        main.escalation = Some(EscalationConfig {
            after: s(900),
            route: "page".into(),
            min_severity: Severity::Critical,
            raise_to_emergency: false,
        });
        let mut page = route("page");
        page.escalation_only = true;
        let mut r = Router::new(&[main, page]);
        r.fire(alert(Severity::Critical, "down", "d", None), t0);
        r.tick(t0 + s(10));
        r.resolve("d/down", t0 + s(100));
        let out = r.tick(t0 + s(5000));
        assert_eq!(out.len(), 1);
        assert_eq!(r.route_name(out[0].route), "main");
        assert_eq!(r.stats.escalated, 0);
    }
}
