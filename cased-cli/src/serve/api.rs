//! The HTTP API of `cased serve`.
//!
//! | route | scope | answer |
//! |---|---|---|
//! | `POST /api/v1/deployments/` | ingest | `201` new deployment, `200` a later event of a known one |
//! | `GET /api/v1/deployments/` | read | a page of deployments, newest first |
//! | `GET /api/v1/deployments/{id}` | read | the deployment, its events and its session's history |
//! | `GET /api/v1/deployments/{id}/report?format=` | read | the rendered report (json, md, html) |
//! | `GET /api/v1/deployments/{id}/verdict?wait=` | read | the verdict, waiting until final |
//! | `GET /api/v1/events` | read | Server-Sent Events: `deployment` and `status` |
//! | `GET /api/v1/trends?repository=&environment=&days=` | read | deployments over the window and the DORA metrics |
//! | `POST /api/v1/incidents` | ingest | `201` the incident and the deployments it was correlated to |
//! | `POST /api/v1/incidents/alertmanager` | ingest | `201` one incident per firing alert of an Alertmanager webhook |
//! | `POST /api/v1/incidents/webhook?title=/ptr&…` | ingest | `201` an incident read from any JSON body at the JSON Pointers given |
//!
//! Every error is JSON: `{"code", "message"}`, plus `"errors": [{"field", "message"}]` for an
//! invalid event (every problem at once, as `DeploymentEvent` reports them).

use std::collections::HashMap;
use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cased_core::history::{DeploymentFilter, Detection, DetectionSummary};
use cased_core::report::{self, Format};
use cased_core::{DeploymentEvent, DeploymentStatus, Error, Verdict};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ingest::{self, Answer};
use super::store::{self, ListFilter, Scope, State as DeploymentState};
use super::trends::{PERFORMANCE_DEPLOYMENTS, Performance, Point, medians};
use super::{App, ServerEvent};

/// The header a client names one logical request with.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer replayed for a repeated idempotency key.
const REPLAYED: &str = "idempotent-replayed";
/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Deployments per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Most deployments a trends answer lists (the latest; the metrics cover every one).
const MAX_TREND_POINTS: usize = 1000;
/// Longest `wait` of the verdict endpoint.
const MAX_WAIT: Duration = Duration::from_secs(600);

type Shared = State<Arc<App>>;

pub(super) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/api/v1/deployments/",
            get(list_deployments).post(create_deployment),
        )
        .route(
            "/api/v1/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route("/api/v1/deployments/{id}", get(get_deployment))
        .route("/api/v1/trends", get(get_trends))
        .route("/trends", get(super::ui::index))
        .route("/api/v1/incidents", axum::routing::post(create_incident))
        .route("/api/v1/incidents/", axum::routing::post(create_incident))
        .route(
            "/api/v1/incidents/alertmanager",
            axum::routing::post(create_alertmanager_incidents),
        )
        .route(
            "/api/v1/incidents/webhook",
            axum::routing::post(create_mapped_incident),
        )
        .route("/api/v1/deployments/{id}/report", get(get_report))
        .route("/api/v1/deployments/{id}/verdict", get(get_verdict))
        .route("/api/v1/events", get(events))
        .route("/", get(super::ui::index))
        .route("/deployments/{id}", get(super::ui::index))
        .route("/assets/app.js", get(super::ui::script))
        .route("/assets/app.css", get(super::ui::style))
        .fallback(not_found)
        .with_state(app)
}

/// A JSON answer.
fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(status, &json!({"code": code, "message": message.into()}))
}

fn internal(message: String) -> Response {
    ApiError::internal(message).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// A refused request: its status and JSON body `{"code", "message"}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(message: String) -> Self {
        eprintln!("cased serve: error: {message}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = error(self.status, self.code, self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cased\""),
            );
        }
        r
    }
}

/// The caller's key, checked for `scope`. The `Ok` value names the caller for idempotency
/// keys (the key's id).
async fn authorize(app: &Arc<App>, headers: &HeaderMap, scope: Scope) -> Result<String, ApiError> {
    if !app.auth {
        return Ok("no-auth".to_owned());
    }
    let unauthorized =
        |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "an API key is required: send `Authorization: Bearer <key>` (create one with `cased keys create`)",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <key>`",
        ));
    };
    let key = key.to_owned();
    match app.db(move |a| a.store.find_key(&key)).await {
        Err(e) => Err(ApiError::internal(e)),
        Ok(None) => Err(unauthorized("unknown or revoked API key")),
        Ok(Some((id, s))) if s == scope => Ok(id),
        Ok(Some((_, s))) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this API key has the {} scope; this endpoint needs a key with the {} scope",
                s.as_str(),
                scope.as_str()
            ),
        )),
    }
}

/// Where Mission Control's pages are: `--public-url`, else `http://<Host>`.
fn pages_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(base) = &app.public_url {
        return base.trim_end_matches('/').to_owned();
    }
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("http://{host}"),
        None => String::new(),
    }
}

/// The deployment's page in Mission Control.
fn page_url(app: &App, headers: &HeaderMap, id: &str) -> String {
    format!("{}/deployments/{id}", pages_url(app, headers))
}

/// The answer to an invalid event: every problem, as the library words them.
fn invalid_event(e: &Error) -> Response {
    let only_body = e.field_errors().iter().all(|p| p.field == "body");
    let status = if only_body {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    json_response(
        status,
        &json!({
            "code": e.kind().code(),
            "message": e.to_string(),
            "errors": e.field_errors(),
        }),
    )
}

async fn create_deployment(State(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match authorize(&app, &headers, Scope::Ingest).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k)
                if !k.is_empty()
                    && k.len() <= MAX_IDEMPOTENCY_KEY
                    && k.chars().all(|c| c.is_ascii_graphic()) =>
            {
                Some(k.to_owned())
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ),
                );
            }
        },
    };
    let event = match DeploymentEvent::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return invalid_event(&e),
    };
    let request = ingest::Request {
        caller,
        idempotency_key,
        request_hash: store::sha256_hex(&body),
        pages: pages_url(&app, &headers),
        event,
    };
    match app.ingest.submit(request).await {
        Answer::Stored { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Answer::Replayed(kept) => {
            let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
            let mut r = (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                kept.body,
            )
                .into_response();
            r.headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            r
        }
        Answer::KeyReused => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different body",
        ),
        Answer::Failed(e) => internal(e),
    }
}

/// `POST /api/v1/incidents`: validates the incident (every bad field at once, `422`), stores
/// it and correlates it to deployments (see `incidents.rs`); `201` with its id, the rule and
/// the deployments it was correlated to (their ids and page URLs).
async fn create_incident(State(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let value = match ingest_json(&app, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match record_incident(&app, &headers, &value).await {
        Ok(answer) => json_response(StatusCode::CREATED, &answer),
        Err(r) => *r,
    }
}

/// `POST /api/v1/incidents/alertmanager`: Prometheus Alertmanager's webhook; one incident per
/// firing alert (see `incidents::from_alertmanager`), `201` with each one's answer.
async fn create_alertmanager_incidents(
    State(app): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match ingest_json(&app, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (incidents, resolved) = match super::incidents::from_alertmanager(&value) {
        Ok(v) => v,
        Err(problems) => return invalid_incident(&problems),
    };
    // Every alert is validated before any is stored: one bad alert refuses the whole post.
    for (i, incident) in incidents.iter().enumerate() {
        if let Err(problems) = super::incidents::parse(incident, store::now_ms()) {
            let named: Vec<_> = problems
                .into_iter()
                .map(|p| super::incidents::Problem {
                    field: format!("alerts[{i}].{}", p.field),
                    message: p.message,
                })
                .collect();
            return invalid_incident(&named);
        }
    }
    let mut answers = Vec::with_capacity(incidents.len());
    for incident in &incidents {
        match record_incident(&app, &headers, incident).await {
            Ok(a) => answers.push(a),
            Err(r) => return *r,
        }
    }
    json_response(
        StatusCode::CREATED,
        &json!({"incidents": answers, "resolved_ignored": resolved}),
    )
}

/// `POST /api/v1/incidents/webhook?title=/pointer&…`: any JSON body; each query parameter
/// names an incident field and the JSON Pointer of its value in the body.
async fn create_mapped_incident(
    State(app): Shared,
    headers: HeaderMap,
    Query(mapping): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let value = match ingest_json(&app, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let pairs = mapping.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let incident = match super::incidents::from_mapping(&value, pairs) {
        Ok(i) => i,
        Err(problems) => return invalid_incident(&problems),
    };
    match record_incident(&app, &headers, &incident).await {
        Ok(answer) => json_response(StatusCode::CREATED, &answer),
        Err(r) => *r,
    }
}

/// An ingest-scope request's body as JSON, or the `401`/`403`/`400` answer.
async fn ingest_json(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Box<Response>> {
    authorize(app, headers, Scope::Ingest)
        .await
        .map_err(|r| Box::new(r.into_response()))?;
    json_body(body)
}

/// The body as JSON, or the `400` answer (boxed: a `Response` is large).
fn json_body(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON: {e}"),
        ))
    })
}

fn invalid_incident(problems: &[super::incidents::Problem]) -> Response {
    let n = problems.len();
    let list: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect();
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "code": "validation",
            "message": format!(
                "invalid incident ({n} problem{}): {}",
                if n == 1 { "" } else { "s" },
                list.join("; ")
            ),
            "errors": problems,
        }),
    )
}

/// Validates, stores and correlates one incident body; its answer (id, rule, deployments).
async fn record_incident(
    app: &Arc<App>,
    headers: &HeaderMap,
    value: &Value,
) -> Result<Value, Box<Response>> {
    let incident = super::incidents::parse(value, store::now_ms())
        .map_err(|problems| Box::new(invalid_incident(&problems)))?;
    let id = format!(
        "inc_{}",
        store::random_hex(8).map_err(|e| Box::new(internal(e)))?
    );
    let owned = id.clone();
    let (ids, rule) = app
        .db(move |a| a.store.insert_incident(&owned, &incident))
        .await
        .map_err(|e| Box::new(internal(e)))?;
    let deployments: Vec<Value> = ids
        .iter()
        .map(|d| json!({"id": d, "url": page_url(app, headers, d)}))
        .collect();
    Ok(json!({
        "id": id,
        "rule": rule.map(super::incidents::Rule::as_str),
        "deployments": deployments,
    }))
}

#[derive(Debug, Deserialize)]
struct TrendsQuery {
    repository: Option<String>,
    environment: Option<String>,
    days: Option<String>,
}

/// `GET /api/v1/trends`: one repository + environment over the last `days` (1 to 365, default
/// 30): its deployments, oldest first, and the DORA metrics.
async fn get_trends(
    State(app): Shared,
    headers: HeaderMap,
    Query(q): Query<TrendsQuery>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Scope::Read).await {
        return r.into_response();
    }
    let bad = |m: String| error(StatusCode::BAD_REQUEST, "invalid_request", m);
    let Some(repository) = q.repository.filter(|r| !r.is_empty()) else {
        return bad("repository is required (owner/name)".to_owned());
    };
    let environment = q.environment.filter(|e| !e.is_empty());
    let days = match q.days.as_deref().filter(|d| !d.is_empty()) {
        None => 30,
        Some(d) => match d.parse::<u64>() {
            Ok(n) if (1..=365).contains(&n) => n,
            _ => return bad(format!("days {d:?} must be a number from 1 to 365")),
        },
    };
    let to = store::now_ms();
    let from = to.saturating_sub(days * 86_400_000);
    let (repo, env) = (repository.clone(), environment.clone());
    let mut points = match app
        .db(move |a| a.store.trend_points(&repo, env.as_deref(), from, to))
        .await
    {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let dora = super::trends::dora(&points, from, to);
    let place = (repository.as_str(), environment.as_deref());
    let (time_to_detect, performance) =
        match detections_and_performance(&app, place, &mut points).await {
            Ok(v) => v,
            Err(e) => return internal(e.to_string()),
        };
    json_response(
        StatusCode::OK,
        &json!({
            "repository": repository,
            "environment": environment,
            "from_unix_ms": from,
            "to_unix_ms": to,
            "deployments_in_window": points.len(),
            "deployments": &points[points.len().saturating_sub(MAX_TREND_POINTS)..],
            "dora": dora,
            "time_to_detect": time_to_detect,
            "performance": performance,
        }),
    )
}

/// Fills each point's time to detect from history, and reads the key metrics' medians of the
/// last monitored deployments; the summary of the times to detect, and the medians.
async fn detections_and_performance(
    app: &App,
    (repository, environment): (&str, Option<&str>),
    points: &mut [Point],
) -> cased_core::Result<(Option<DetectionSummary>, Vec<Performance>)> {
    let h = app.history.as_ref() as &dyn cased_core::HistoryStore;
    let (Some(from), Some(to)) = (
        points.iter().map(|p| p.created_at_unix_ms).min(),
        points.iter().map(|p| p.created_at_unix_ms).max(),
    ) else {
        return Ok((None, Vec::new()));
    };
    // Sessions start at or after their deployment arrived (an hour of slack for a late start).
    let mut filter = DeploymentFilter::all()
        .repository(repository)
        .between(from, to + 3_600_000);
    filter.environment = environment.map(str::to_owned);
    let detections = h.time_to_detect(&filter).await?;
    let by_session: HashMap<&str, &Detection> = detections
        .iter()
        .map(|d| (d.session_id.as_str(), d))
        .collect();
    let mut mine = Vec::new();
    for p in points.iter_mut() {
        if let Some(d) = p.session_id.as_deref().and_then(|s| by_session.get(s)) {
            p.time_to_detect_ms = Some(d.time_to_detect.as_secs_f64() * 1000.0);
            mine.push((*d).clone());
        }
    }
    let mut performance = Vec::new();
    for p in points.iter().rev() {
        if performance.len() == PERFORMANCE_DEPLOYMENTS {
            break;
        }
        let Some(sid) = &p.session_id else { continue };
        if let Some(report) = h.report(sid).await? {
            performance.push(Performance {
                id: p.id.clone(),
                created_at_unix_ms: p.created_at_unix_ms,
                verdict: p.verdict,
                medians: medians(&report),
            });
        }
    }
    performance.reverse();
    Ok((DetectionSummary::of(&mine), performance))
}

/// Query of the deployment list.
#[derive(Debug, Deserialize)]
struct ListQuery {
    repository: Option<String>,
    environment: Option<String>,
    verdict: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_deployments(
    State(app): Shared,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Scope::Read).await {
        return r.into_response();
    }
    let bad = |m: String| error(StatusCode::BAD_REQUEST, "invalid_request", m);
    let verdict = match q.verdict.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match serde_json::from_value::<Verdict>(json!(v)) {
            Ok(v) => Some(v),
            Err(_) => {
                return bad(format!(
                    "verdict {v:?} is not one of healthy, degraded, unhealthy, inconclusive"
                ));
            }
        },
    };
    let state = match q.state.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(s) => match [
            DeploymentState::Recorded,
            DeploymentState::Monitoring,
            DeploymentState::Finished,
            DeploymentState::Interrupted,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        {
            Some(x) => Some(x),
            None => {
                return bad(format!(
                    "state {s:?} is not one of recorded, monitoring, finished, interrupted"
                ));
            }
        },
    };
    let limit = match q.limit.as_deref().filter(|v| !v.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return bad(format!(
                    "limit {l:?} must be a number from 1 to {MAX_LIMIT}"
                ));
            }
        },
    };
    let before_seq = match q.cursor.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(c) => match c.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => return bad(format!("cursor {c:?} is not a cursor this API gave")),
        },
    };
    let filter = ListFilter {
        repository: q.repository.filter(|v| !v.is_empty()),
        environment: q.environment.filter(|v| !v.is_empty()),
        verdict,
        state,
        before_seq,
        limit,
    };
    match app.db(move |a| a.store.list(&filter)).await {
        Err(e) => internal(e),
        Ok((deployments, next)) => json_response(
            StatusCode::OK,
            &json!({
                "deployments": deployments,
                "next_cursor": next.map(|n| n.to_string()),
            }),
        ),
    }
}

/// The deployment `id`, or the answer when it is unknown.
async fn deployment(app: &Arc<App>, id: &str) -> Result<store::Deployment, ApiError> {
    let owned = id.to_owned();
    match app.db(move |a| a.store.get(&owned)).await {
        Err(e) => Err(ApiError::internal(e)),
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no deployment {id:?}"),
        )),
    }
}

async fn get_deployment(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Scope::Read).await {
        return r.into_response();
    }
    let d = match deployment(&app, &id).await {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    let owned = id.clone();
    let events = match app.db(move |a| a.store.events(&owned)).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let session = match &d.session_id {
        None => Value::Null,
        Some(sid) => match session_history(&app, sid).await {
            Ok(v) => v,
            Err(e) => return internal(e.to_string()),
        },
    };
    let owned = id.clone();
    let incidents = match app.db(move |a| a.store.incidents_of(&owned)).await {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let mut value = serde_json::to_value(&d).unwrap_or_default();
    value["url"] = json!(page_url(&app, &headers, &d.id));
    value["events"] = json!(events);
    value["incidents"] = json!(incidents);
    value["session"] = session;
    json_response(StatusCode::OK, &value)
}

/// What history holds of a session: its record, ticks, findings and alerts.
async fn session_history(app: &App, session_id: &str) -> cased_core::Result<Value> {
    let h = app.history.as_ref() as &dyn cased_core::HistoryStore;
    let record = h.deployment(session_id).await?;
    let ticks = h.ticks(session_id).await?;
    let findings = h.findings(session_id).await?;
    let alerts = h.alerts(session_id).await?;
    Ok(json!({
        "record": record,
        "ticks": ticks,
        "findings": findings,
        "alerts": alerts,
    }))
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    format: Option<String>,
}

async fn get_report(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Scope::Read).await {
        return r.into_response();
    }
    // `charts`: the report's charts section alone (Mission Control's deployment page).
    let requested = q.format.as_deref().unwrap_or("json");
    let charts_only = requested == "charts";
    let format = match Format::from_str(if charts_only { "html" } else { requested }) {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{e} (or charts)"),
            );
        }
    };
    let d = match deployment(&app, &id).await {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    let Some(sid) = &d.session_id else {
        let why = if d.monitored {
            format!(
                "deployment {id} is not monitored yet (status {}): monitoring starts at `running` or `success`",
                d.status
            )
        } else {
            format!("deployment {id} matched no service, so it is not monitored and has no report")
        };
        return error(StatusCode::CONFLICT, "no_report", why);
    };
    let loaded = report::load(app.history.as_ref(), sid).await;
    let (report, context) = match loaded {
        Err(e) => return internal(e.to_string()),
        Ok(Some(r)) => r,
        Ok(None) => {
            return error(
                StatusCode::CONFLICT,
                "no_report",
                format!(
                    "deployment {id} has no report: it is {} (the report is written when its session ends)",
                    d.state.as_str()
                ),
            );
        }
    };
    if charts_only {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report::charts_html(&report, &context),
        )
            .into_response();
    }
    let content_type = match format {
        Format::Json => "application/json",
        Format::Markdown => "text/markdown; charset=utf-8",
        Format::Html => "text/html; charset=utf-8",
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        report::render(&report, &context, format),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct VerdictQuery {
    wait: Option<String>,
}

/// `pass` (healthy, degraded), `fail` (unhealthy), `inconclusive` (inconclusive, interrupted),
/// `pending` (not final yet) or `unmonitored` (no service matched: there will be no verdict).
fn verdict_answer(d: &store::Deployment) -> Value {
    let (is_final, result) = match (d.state, d.verdict) {
        (DeploymentState::Finished, Some(Verdict::Healthy | Verdict::Degraded)) => (true, "pass"),
        (DeploymentState::Finished, Some(Verdict::Unhealthy)) => (true, "fail"),
        (DeploymentState::Finished | DeploymentState::Interrupted, _) => (true, "inconclusive"),
        (DeploymentState::Recorded, _) if !d.monitored => (true, "unmonitored"),
        // Failed or cancelled before monitoring started: no session will start.
        (DeploymentState::Recorded, _) if d.status == DeploymentStatus::Failure => (true, "fail"),
        (DeploymentState::Recorded, _) if d.status == DeploymentStatus::Cancelled => {
            (true, "inconclusive")
        }
        _ => (false, "pending"),
    };
    let reason = match (result, d.state) {
        ("unmonitored", _) => d.note.clone(),
        ("pending", state) => Some(format!(
            "the deployment is {} (status {})",
            state.as_str(),
            d.status
        )),
        (_, DeploymentState::Recorded) => Some(format!(
            "the deployment reported {} before monitoring started",
            d.status
        )),
        _ => d.reason.clone(),
    };
    json!({
        "id": d.id,
        "final": is_final,
        "result": result,
        "state": d.state,
        "status": d.status,
        "verdict": d.verdict,
        "reason": reason,
    })
}

async fn get_verdict(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<VerdictQuery>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Scope::Read).await {
        return r.into_response();
    }
    let wait = match q.wait.as_deref().filter(|w| !w.is_empty()) {
        None => Duration::ZERO,
        Some(w) => match humantime::parse_duration(w) {
            Ok(d) => d.min(MAX_WAIT),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("wait {w:?} is not a duration (30s, 5m): {e}"),
                );
            }
        },
    };
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before reading, so a change between the read and the wait is not missed.
    let mut rx = app.events.subscribe();
    loop {
        let d = match deployment(&app, &id).await {
            Ok(d) => d,
            Err(r) => return r.into_response(),
        };
        let answer = verdict_answer(&d);
        if answer["final"] == json!(true) {
            return json_response(StatusCode::OK, &answer);
        }
        // Wait for a change of this deployment (or a lag, after which it is read again).
        let changed = loop {
            let next = tokio::select! {
                r = tokio::time::timeout_at(deadline, rx.recv()) => r,
                () = app.stopped() => break false,
            };
            match next {
                Err(_) => break false,
                Ok(Ok(e)) if &*e.deployment_id == id.as_str() && e.kind == "deployment" => {
                    break true;
                }
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(_))) => break true,
                Ok(Err(RecvError::Closed)) => break false,
            }
        };
        if !changed {
            return json_response(StatusCode::OK, &answer);
        }
    }
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    /// Only events of this deployment.
    deployment: Option<String>,
}

async fn events(State(app): Shared, headers: HeaderMap, Query(q): Query<EventsQuery>) -> Response {
    if let Err(r) = authorize(&app, &headers, Scope::Read).await {
        return r.into_response();
    }
    let rx = app.events.subscribe();
    let only = q.deployment.filter(|d| !d.is_empty());
    let stopping = Arc::clone(&app);
    // The stream ends when the server stops, so the graceful shutdown does not wait for it.
    let stream = event_stream(rx, only).take_until(Box::pin(async move {
        stopping.stopped().await;
    }));
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event_stream(
    rx: tokio::sync::broadcast::Receiver<ServerEvent>,
    only: Option<String>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures::stream::unfold((rx, only), |(mut rx, only)| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if only.as_deref().is_some_and(|o| o != &*e.deployment_id) {
                        continue;
                    }
                    let event = Event::default().event(e.kind).data(&*e.data);
                    return Some((Ok(event), (rx, only)));
                }
                Err(RecvError::Lagged(n)) => {
                    // The listener fell behind: say how much it missed and go on.
                    let event = Event::default()
                        .event("lagged")
                        .data(json!({"skipped": n}).to_string());
                    return Some((Ok(event), (rx, only)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
