//! Ingest of deployment events: one writer, group commit.
//!
//! `POST /api/v1/deployments/` validates the event on the request's own task, then hands it to
//! the ingest writer: one thread with a connection of its own to `serve.db`. The writer takes
//! every request waiting (up to [`MAX_BATCH`]), handles them in order inside one transaction —
//! idempotency key, identity matching, store, session start or end — commits once, then answers
//! each. Handling stays one event at a time (a retry racing its original gets its answer;
//! a later event of a deployment sees the earlier one), while the cost of a commit is shared by
//! every event of the batch. Readers use the server's other connection and see what is
//! committed (SQLite WAL).

use std::sync::{Arc, Weak};

use cased_core::{DeploymentEvent, DeploymentStatus};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::store::{self, Store, StoredAnswer};
use super::{App, services};

/// Most events committed together.
const MAX_BATCH: usize = 256;
/// Requests waiting for the writer before a new one waits for room.
const QUEUE: usize = 4096;

/// One event for the writer, validated.
#[derive(Debug)]
pub(crate) struct Request {
    /// The API key id that posted it (idempotency keys are per caller).
    pub(crate) caller: String,
    pub(crate) idempotency_key: Option<String>,
    /// SHA-256 of the body: a reused key with another body is refused.
    pub(crate) request_hash: String,
    /// Where deployment pages are (`{pages}/deployments/{id}`).
    pub(crate) pages: String,
    pub(crate) event: DeploymentEvent,
}

/// What the writer answers.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Stored: the status (`201` new deployment, `200` a later event) and the JSON body.
    Stored { status: u16, body: String },
    /// The answer kept for this idempotency key, replayed.
    Replayed(StoredAnswer),
    /// The idempotency key was used with another body.
    KeyReused,
    /// A storage failure, worded.
    Failed(String),
}

/// The handle the handlers post to.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    tx: mpsc::Sender<(Request, oneshot::Sender<Answer>)>,
}

impl Queue {
    /// Starts the writer on its own thread with `store` (a connection only it uses). The writer
    /// ends once every `Queue` is dropped; it holds the app weakly, so the app can be.
    pub(crate) fn start(app: Weak<App>, store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("cased-ingest".into())
            .spawn(move || {
                // Sessions started by the writer spawn their tasks on the server's runtime.
                let _entered = runtime.enter();
                writer(&app, &store, rx);
            })
            .expect("cannot start the ingest thread");
        Self { tx }
    }

    /// Hands `request` to the writer and waits for its answer.
    pub(crate) async fn submit(&self, request: Request) -> Answer {
        let (tx, rx) = oneshot::channel();
        if self.tx.send((request, tx)).await.is_err() {
            return Answer::Failed("the ingest writer has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Answer::Failed("the ingest writer has stopped".into()))
    }
}

fn writer(
    app: &Weak<App>,
    store: &Store,
    mut rx: mpsc::Receiver<(Request, oneshot::Sender<Answer>)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let Some(app) = app.upgrade() else { return };
        let answers = handle_batch(&app, store, &batch);
        for ((_, reply), answer) in batch.drain(..).zip(answers) {
            // The client may have gone: its answer is not needed.
            let _ = reply.send(answer);
        }
    }
}

/// Handles `batch` in one transaction; one answer per request, in order.
fn handle_batch(
    app: &Arc<App>,
    store: &Store,
    batch: &[(Request, oneshot::Sender<Answer>)],
) -> Vec<Answer> {
    if let Err(e) = store.begin() {
        return batch.iter().map(|_| Answer::Failed(e.clone())).collect();
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut changed = Vec::new();
    for (request, _) in batch {
        match handle(app, store, request) {
            Ok((answer, deployment)) => {
                answers.push(answer);
                changed.extend(deployment);
            }
            Err(e) => answers.push(Answer::Failed(e)),
        }
    }
    if let Err(e) = store.commit() {
        // Nothing of the batch is stored: the sessions it started stop, every request fails.
        app.abandon_sessions(changed.iter().map(|d| d.id.as_str()));
        return batch.iter().map(|_| Answer::Failed(e.clone())).collect();
    }
    for d in &changed {
        app.publish_deployment(d);
    }
    answers
}

/// One request: the replayed answer of its idempotency key, or the event stored and applied.
fn handle(
    app: &Arc<App>,
    store: &Store,
    request: &Request,
) -> Result<(Answer, Option<store::Deployment>), String> {
    let now = store::now_ms();
    if let Some(key) = &request.idempotency_key {
        match store.idempotent_answer(&request.caller, key, now)? {
            Some(kept) if kept.request_hash == request.request_hash => {
                return Ok((Answer::Replayed(kept), None));
            }
            Some(_) => return Ok((Answer::KeyReused, None)),
            None => {}
        }
    }
    let (d, created) = ingest(app, store, request.event.clone())?;
    let mut body = json!({
        "id": d.id,
        "url": format!("{}/deployments/{}", request.pages, d.id),
        "created": created,
        "status": d.status,
        "state": d.state,
        "monitored": d.monitored,
        "service": d.service,
        "session_id": d.session_id,
    });
    if let Some(why) = &d.note {
        body["unmonitored_reason"] = json!(why);
    }
    let status = if created { 201 } else { 200 };
    let body = body.to_string();
    if let Some(key) = &request.idempotency_key {
        let kept = StoredAnswer {
            request_hash: request.request_hash.clone(),
            status,
            body: body.clone(),
        };
        store.keep_answer(&request.caller, key, &kept, now)?;
    }
    Ok((Answer::Stored { status, body }, Some(d)))
}

/// Stores `event` as a new deployment or a later event of a known one, and starts, ends or
/// leaves its session as its status says; the deployment as stored, and whether it is new.
fn ingest(
    app: &Arc<App>,
    store: &Store,
    event: DeploymentEvent,
) -> Result<(store::Deployment, bool), String> {
    let existing = store.find_same(&event)?;
    let created = existing.is_none();
    let id = match existing {
        Some(d) => {
            store.update_event(&d.id, &event)?;
            d.id
        }
        None => {
            let service = app.services.iter().find(|s| s.matches(&event));
            let id = format!("dep_{}", store::random_hex(8)?);
            let note = match service {
                Some(_) => None,
                None => Some(services::why_unmatched(&app.services, &event)),
            };
            store.insert(
                &id,
                &event,
                service.map(|s| s.name.as_str()),
                note.as_deref(),
            )?;
            id
        }
    };
    let deployment = store
        .get(&id)?
        .ok_or("the deployment just stored is gone")?;
    // A session started changed the row: read it again.
    let deployment = if apply_status(app, store, &deployment, event)? {
        store
            .get(&id)?
            .ok_or("the deployment just stored is gone")?
    } else {
        deployment
    };
    Ok((deployment, created))
}

/// `pending` records; `running` and `success` start a session when none ran yet (`success`
/// moves a running one into its cool-down); `failure` and `cancelled` end a running session
/// with that outcome. `true` when a session was started (the row changed).
fn apply_status(
    app: &Arc<App>,
    store: &Store,
    deployment: &store::Deployment,
    event: DeploymentEvent,
) -> Result<bool, String> {
    let running = app.session(&deployment.id);
    match (event.status(), running) {
        (DeploymentStatus::Pending, _) | (DeploymentStatus::Running, Some(_)) => {}
        (DeploymentStatus::Success, Some(s)) => s.complete(),
        (DeploymentStatus::Failure, Some(s)) => s.fail(),
        (DeploymentStatus::Cancelled, Some(s)) => s.cancel(),
        (DeploymentStatus::Running | DeploymentStatus::Success, None) => {
            // Started once: a finished or interrupted deployment is not monitored again.
            if deployment.state == store::State::Recorded
                && let Some(service) = deployment
                    .service
                    .as_deref()
                    .and_then(|n| app.services.iter().find(|s| s.name == n))
            {
                let session = app.start_session(&deployment.id, service, event)?;
                store.set_monitoring(&deployment.id, &session)?;
                return Ok(true);
            }
        }
        (DeploymentStatus::Failure | DeploymentStatus::Cancelled, None) => {}
    }
    Ok(false)
}
