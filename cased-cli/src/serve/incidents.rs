//! Incidents: an external issue (an alert from elsewhere, a support ticket, a page) posted to
//! `POST /api/v1/incidents`, validated here, and correlated to the deployment(s) it most likely
//! belongs to. The rules, first that finds any:
//!
//! 1. `correlation_id`: every deployment with that correlation id;
//! 2. `active`: the deployments of the same repository and environment being monitored at the
//!    incident's time (active phase or cool-down: their session's window holds that time);
//! 3. `latest_before`: the latest deployment of that repository and environment created at or
//!    before the incident's time.
//!
//! Two receivers turn other tools' webhooks into incidents (then validated the same way):
//! [`from_alertmanager`] (Prometheus Alertmanager's webhook: one incident per firing alert) and
//! [`from_mapping`] (any JSON body, each incident field read at a JSON Pointer the URL names).
//!
//! Validation and the rules are plain functions; the store feeds them candidates.

use serde::Serialize;
use serde_json::{Map, Value};

/// Longest title, in characters.
const MAX_TITLE: usize = 500;
/// Longest service, repository, environment or correlation id, in characters.
const MAX_NAME: usize = 255;
/// The fields an incident may have.
const FIELDS: [&str; 7] = [
    "title",
    "repository",
    "service",
    "environment",
    "time",
    "correlation_id",
    "external_url",
];

/// A valid incident, as posted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Incident {
    pub(crate) title: String,
    pub(crate) repository: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) environment: Option<String>,
    /// When it happened (default: when it was received), milliseconds since the Unix epoch.
    pub(crate) time_unix_ms: u64,
    pub(crate) correlation_id: Option<String>,
    pub(crate) external_url: Option<String>,
}

/// One problem of a posted incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Problem {
    pub(crate) field: String,
    pub(crate) message: String,
}

/// Validates a posted incident, reporting every problem at once; `now_ms` is its time when it
/// gives none.
pub(crate) fn parse(body: &Value, now_ms: u64) -> Result<Incident, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem {
            field: field.to_owned(),
            message,
        });
    };
    let Some(map) = body.as_object() else {
        problem("body", "must be a JSON object".to_owned());
        return Err(problems);
    };
    for key in map.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problem(key, format!("unknown field (known: {})", FIELDS.join(", ")));
        }
    }
    let text = |map: &Map<String, Value>,
                name: &str,
                max: usize,
                problem: &mut dyn FnMut(&str, String)|
     -> Option<String> {
        match map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                problem(name, "must not be empty".to_owned());
                None
            }
            Some(Value::String(s)) if s.chars().count() > max => {
                problem(name, format!("is longer than {max} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problem(name, "must be a string".to_owned());
                None
            }
        }
    };
    let title = text(map, "title", MAX_TITLE, &mut problem);
    if title.is_none() && !map.contains_key("title") {
        problem("title", "is required".to_owned());
    }
    let repository = text(map, "repository", MAX_NAME, &mut problem);
    let service = text(map, "service", MAX_NAME, &mut problem);
    let environment = text(map, "environment", MAX_NAME, &mut problem);
    let correlation_id = text(map, "correlation_id", MAX_NAME, &mut problem);
    let external_url = text(map, "external_url", 2048, &mut problem);
    if let Some(r) = &repository {
        let parts: Vec<&str> = r.split('/').collect();
        if parts.len() < 2
            || parts
                .iter()
                .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
            problem("repository", format!("{r:?} must be owner/name"));
        }
    }
    if repository.is_none() && service.is_none() && correlation_id.is_none() {
        problem(
            "repository",
            "is required (or service, or correlation_id) to correlate the incident".to_owned(),
        );
    }
    if let Some(u) = &external_url
        && !url::Url::parse(u)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
    {
        problem(
            "external_url",
            format!("{u:?} is not an absolute http(s) URL"),
        );
    }
    let time = match map.get("time") {
        None | Some(Value::Null) => Some(now_ms),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(ms) => Some(ms),
            None => {
                problem(
                    "time",
                    "must be milliseconds since the Unix epoch, or an RFC 3339 time".to_owned(),
                );
                None
            }
        },
        Some(Value::String(s)) => match humantime::parse_rfc3339_weak(s) {
            Ok(t) => t
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_millis() as u64),
            Err(e) => {
                problem(
                    "time",
                    format!("{s:?} is not an RFC 3339 time (2026-12-04T15:00:00Z): {e}"),
                );
                None
            }
        },
        Some(_) => {
            problem(
                "time",
                "must be milliseconds since the Unix epoch, or an RFC 3339 time".to_owned(),
            );
            None
        }
    };
    match (title, time) {
        (Some(title), Some(time_unix_ms)) if problems.is_empty() => Ok(Incident {
            title,
            repository,
            service,
            environment,
            time_unix_ms,
            correlation_id,
            external_url,
        }),
        _ => Err(problems),
    }
}

/// The incidents of an Alertmanager webhook body (`"version": "4"`): one per **firing** alert
/// (resolved ones are not incidents), as incident bodies for [`parse`]. `title` is the
/// `summary` annotation (else the `alertname` label); `repository`, `service` (else `job`),
/// `environment` (else `env`) and `correlation_id` are labels of those names; `time` is
/// `startsAt` and `external_url` the `generatorURL`. Also how many resolved alerts were left out.
pub(crate) fn from_alertmanager(body: &Value) -> Result<(Vec<Value>, usize), Vec<Problem>> {
    let bad = |field: &str, message: &str| {
        Err(vec![Problem {
            field: field.to_owned(),
            message: message.to_owned(),
        }])
    };
    let Some(alerts) = body.get("alerts") else {
        return bad("alerts", "is required (an Alertmanager webhook body)");
    };
    let Some(alerts) = alerts.as_array() else {
        return bad("alerts", "must be an array");
    };
    let mut incidents = Vec::new();
    let mut resolved = 0;
    for alert in alerts {
        if alert.get("status").and_then(Value::as_str) == Some("resolved") {
            resolved += 1;
            continue;
        }
        let label = |k: &str| alert.pointer(&format!("/labels/{k}")).cloned();
        let first = |a: Option<Value>, b: Option<Value>| a.or(b).unwrap_or(Value::Null);
        let mut incident = Map::new();
        let fields = [
            (
                "title",
                first(
                    alert.pointer("/annotations/summary").cloned(),
                    label("alertname"),
                ),
            ),
            ("repository", first(label("repository"), None)),
            ("service", first(label("service"), label("job"))),
            ("environment", first(label("environment"), label("env"))),
            ("correlation_id", first(label("correlation_id"), None)),
            ("time", first(alert.get("startsAt").cloned(), None)),
            (
                "external_url",
                first(alert.get("generatorURL").cloned(), None),
            ),
        ];
        for (k, v) in fields {
            // Alertmanager sends "" for an unset generator URL: absent, not empty.
            if !v.is_null() && v != "" {
                incident.insert(k.to_owned(), v);
            }
        }
        incidents.push(Value::Object(incident));
    }
    Ok((incidents, resolved))
}

/// An incident body read from any JSON `body`: `mapping` gives, for incident fields, the
/// JSON Pointer (RFC 6901, `/issue/title`) of its value in `body`. An unknown field or a
/// pointer that finds nothing is a problem naming the field and the pointer.
pub(crate) fn from_mapping<'a>(
    body: &Value,
    mapping: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut incident = Map::new();
    for (field, pointer) in mapping {
        if !FIELDS.contains(&field) {
            problems.push(Problem {
                field: field.to_owned(),
                message: format!(
                    "is not an incident field (map one of: {})",
                    FIELDS.join(", ")
                ),
            });
            continue;
        }
        match body.pointer(pointer) {
            Some(v) if !v.is_null() => {
                incident.insert(field.to_owned(), v.clone());
            }
            _ => problems.push(Problem {
                field: field.to_owned(),
                message: format!("the body has nothing at {pointer:?}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(incident))
    } else {
        Err(problems)
    }
}

/// A deployment the rules may pick, as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) id: String,
    pub(crate) repository: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) created_at_ms: u64,
    /// When its session started, if one did.
    pub(crate) monitor_started_at_ms: Option<u64>,
    /// When its session ended; `None` while it runs (or when none started).
    pub(crate) monitor_ended_at_ms: Option<u64>,
}

/// Which rule correlated an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Rule {
    CorrelationId,
    Active,
    LatestBefore,
}

impl Rule {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::CorrelationId => "correlation_id",
            Self::Active => "active",
            Self::LatestBefore => "latest_before",
        }
    }
}

/// The deployments `incident` most likely belongs to, and the rule that chose them (none when
/// no rule finds any). `candidates` may hold any deployments; the rules filter them.
pub(crate) fn correlate(
    incident: &Incident,
    candidates: &[Candidate],
) -> (Vec<String>, Option<Rule>) {
    if let Some(c) = &incident.correlation_id {
        let ids: Vec<String> = candidates
            .iter()
            .filter(|d| d.correlation_id.as_deref() == Some(c))
            .map(|d| d.id.clone())
            .collect();
        if !ids.is_empty() {
            return (ids, Some(Rule::CorrelationId));
        }
    }
    let Some(repo) = &incident.repository else {
        return (Vec::new(), None);
    };
    let same = |d: &&Candidate| {
        d.repository.as_deref() == Some(repo.as_str())
            && (incident.environment.is_none() || d.environment == incident.environment)
    };
    let t = incident.time_unix_ms;
    let active: Vec<String> = candidates
        .iter()
        .filter(same)
        .filter(|d| {
            d.monitor_started_at_ms.is_some_and(|s| s <= t)
                && d.monitor_ended_at_ms.is_none_or(|e| t <= e)
        })
        .map(|d| d.id.clone())
        .collect();
    if !active.is_empty() {
        return (active, Some(Rule::Active));
    }
    candidates
        .iter()
        .filter(same)
        .filter(|d| d.created_at_ms <= t)
        .max_by_key(|d| d.created_at_ms)
        .map_or((Vec::new(), None), |d| {
            (vec![d.id.clone()], Some(Rule::LatestBefore))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incident(body: Value) -> Incident {
        parse(&body, 5_000).unwrap()
    }

    fn deployment(
        id: &str,
        env: &str,
        created: u64,
        window: Option<(u64, Option<u64>)>,
    ) -> Candidate {
        Candidate {
            id: id.into(),
            repository: Some("acme/shop".into()),
            environment: Some(env.into()),
            correlation_id: None,
            created_at_ms: created,
            monitor_started_at_ms: window.map(|w| w.0),
            monitor_ended_at_ms: window.and_then(|w| w.1),
        }
    }

    /// acme/shop in production: `old` (monitored 100..=900), `running` (since 3000, still
    /// monitoring), `later` (created after the incidents); and `staging` in staging.
    fn history() -> Vec<Candidate> {
        let mut tagged = deployment("tagged", "production", 50, None);
        tagged.repository = Some("acme/other".into());
        tagged.correlation_id = Some("release-42".into());
        vec![
            tagged,
            deployment("old", "production", 100, Some((100, Some(900)))),
            deployment("running", "production", 3000, Some((3000, None))),
            deployment("staging", "staging", 4000, Some((4000, Some(4500)))),
            deployment("later", "production", 9000, Some((9000, Some(9500)))),
        ]
    }

    #[test]
    fn the_correlation_id_wins_over_time_and_place() {
        let i = incident(
            json!({"title": "t", "repository": "acme/shop", "environment": "production",
            "time": 4000, "correlation_id": "release-42"}),
        );
        assert_eq!(
            correlate(&i, &history()),
            (vec!["tagged".to_owned()], Some(Rule::CorrelationId))
        );
    }

    #[test]
    fn else_the_deployments_monitored_at_that_time() {
        let i = incident(
            json!({"title": "t", "repository": "acme/shop", "environment": "production",
            "time": 4000, "correlation_id": "unknown"}),
        );
        assert_eq!(
            correlate(&i, &history()),
            (vec!["running".to_owned()], Some(Rule::Active))
        );
        // The window's ends count; the environment must match.
        let at_end = incident(json!({"title": "t", "repository": "acme/shop",
            "environment": "production", "time": 900}));
        assert_eq!(correlate(&at_end, &history()).0, ["old"]);
        let staging = incident(json!({"title": "t", "repository": "acme/shop",
            "environment": "staging", "time": 4200}));
        assert_eq!(
            correlate(&staging, &history()),
            (vec!["staging".to_owned()], Some(Rule::Active))
        );
    }

    #[test]
    fn else_the_latest_deployment_before_it() {
        // After `old` finished, before `running` started.
        let i = incident(json!({"title": "t", "repository": "acme/shop",
            "environment": "production", "time": 2000}));
        assert_eq!(
            correlate(&i, &history()),
            (vec!["old".to_owned()], Some(Rule::LatestBefore))
        );
        // Staging's window is over at 4600 and nothing of staging came later.
        let s = incident(json!({"title": "t", "repository": "acme/shop",
            "environment": "staging", "time": 4600}));
        assert_eq!(correlate(&s, &history()).0, ["staging"]);
        // Before any deployment, or another repository: nothing.
        let early = incident(json!({"title": "t", "repository": "acme/shop", "time": 10}));
        assert_eq!(correlate(&early, &history()), (Vec::new(), None));
        let other = incident(json!({"title": "t", "repository": "acme/web", "time": 4000}));
        assert_eq!(correlate(&other, &history()), (Vec::new(), None));
    }

    #[test]
    fn alertmanager_firing_alerts_become_incidents_and_resolved_ones_do_not() {
        let body = json!({"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "HighErrorRate", "job": "shop",
              "env": "production", "repository": "acme/shop"},
             "annotations": {"summary": "5xx above 5 %"},
             "startsAt": "2026-12-04T15:00:00Z", "generatorURL": ""},
            {"status": "resolved", "labels": {"alertname": "Old"}},
            {"status": "firing", "labels": {"alertname": "Slow", "service": "pay",
              "correlation_id": "deploy-42"}, "startsAt": "2026-12-04T15:01:00Z",
             "generatorURL": "http://prom/graph"}
        ]});
        let (incidents, resolved) = from_alertmanager(&body).unwrap();
        assert_eq!(resolved, 1);
        assert_eq!(
            incidents,
            [
                json!({"title": "5xx above 5 %", "repository": "acme/shop", "service": "shop",
                       "environment": "production", "time": "2026-12-04T15:00:00Z"}),
                json!({"title": "Slow", "service": "pay", "correlation_id": "deploy-42",
                       "time": "2026-12-04T15:01:00Z", "external_url": "http://prom/graph"})
            ]
        );
        for i in &incidents {
            parse(i, 0).unwrap();
        }
        assert_eq!(
            from_alertmanager(&json!({})).unwrap_err()[0].field,
            "alerts"
        );
    }

    #[test]
    fn a_mapping_reads_each_field_at_its_pointer_and_names_what_it_misses() {
        let body = json!({"issue": {"title": "Checkout down", "url": "https://t.example/1"},
                          "project": {"path": "acme/shop"}, "labels": ["p1"]});
        let got = from_mapping(
            &body,
            [
                ("title", "/issue/title"),
                ("repository", "/project/path"),
                ("external_url", "/issue/url"),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"title": "Checkout down", "repository": "acme/shop",
                   "external_url": "https://t.example/1"})
        );
        parse(&got, 0).unwrap();
        let problems =
            from_mapping(&body, [("title", "/issue/name"), ("severity", "/labels/0")]).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["title", "severity"]);
        assert!(problems[0].message.contains("/issue/name"), "{problems:?}");
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let e = parse(
            &json!({"titel": "x", "repository": "shop", "time": "yesterday",
                "external_url": "javascript:alert(1)", "environment": 3}),
            0,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "titel",
                "title",
                "environment",
                "repository",
                "external_url",
                "time"
            ],
            "{e:?}"
        );
        assert!(e[3].message.contains("owner/name"), "{e:?}");
        let none = parse(&json!({"title": "x"}), 0).unwrap_err();
        assert_eq!(none[0].field, "repository");
        assert_eq!(parse(&json!([]), 0).unwrap_err()[0].field, "body");
    }

    #[test]
    fn time_is_milliseconds_or_rfc_3339_and_defaults_to_now() {
        let i =
            incident(json!({"title": "t", "repository": "a/b", "time": "2026-12-04T15:00:00Z"}));
        assert_eq!(i.time_unix_ms, 1_796_396_400_000);
        assert_eq!(
            incident(json!({"title": "t", "repository": "a/b"})).time_unix_ms,
            5_000
        );
    }
}
