//! `cased serve`: the self-hosted side of the deployments API, and `cased keys` for its API keys.
//!
//! ```text
//! cased keys create --scope ingest --name ci     # prints the key once
//! cased serve                                    # 127.0.0.1:8080, .cased/, cased.toml if present
//! cased serve --listen 0.0.0.0:8080 --store /var/lib/cased --config /etc/cased/cased.toml
//! ```
//!
//! This file holds the flags, start-up (stores, services, restart recovery) and the sessions the
//! server runs; `api.rs` the HTTP handlers, `store.rs` the server's own tables and
//! `services.rs` the `[[services]]` that decide what is monitored. Sessions are recorded in the
//! history store the other commands read (`history.db` in the store directory), so `cased
//! history --history .cased/history.db` lists them too.

mod api;
mod incidents;
mod ingest;
mod services;
mod store;
mod trends;
mod ui;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cased_core::{DeploymentEvent, Session, SqliteHistory, UpdateEvent};
use tokio::sync::broadcast;

use crate::Failure;
use crate::monitor::{BASELINES_FILE, open_baselines, open_history};

pub(crate) use store::Scope;

/// The store directory unless `--store` says otherwise.
const DEFAULT_STORE: &str = ".cased";
/// The history file inside the store directory (the one `cased monitor` writes by default).
const HISTORY_FILE: &str = "history.db";
/// The server's own tables inside the store directory.
const SERVE_FILE: &str = "serve.db";
/// Events buffered per SSE listener before it is told it fell behind.
const EVENT_BUFFER: usize = 1024;

/// Flags of `cased serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Endpoints: POST /api/v1/deployments/ (ingest scope); GET \
/api/v1/deployments/, /api/v1/deployments/{id}, /api/v1/deployments/{id}/report, \
/api/v1/deployments/{id}/verdict, /api/v1/events (read scope). See docs/serve.md."
)]
pub(crate) struct ServeArgs {
    /// The address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// The directory of the server's databases (serve.db, history.db, baselines.db); created
    /// when missing.
    #[arg(long, value_name = "DIR", env = "CASED_STORE", default_value = DEFAULT_STORE)]
    store: PathBuf,

    /// The configuration with the [[services]] to monitor [default: cased.toml when present;
    /// without one, events are stored and not monitored].
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// Accept requests without an API key. Allowed only on a loopback address.
    #[arg(long)]
    no_auth: bool,

    /// The server's address as clients reach it (behind a proxy, with TLS), for the links it
    /// answers with [default: http://<the request's Host>].
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

/// Flags of `cased keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysArgs {
    /// The store directory of `cased serve`.
    #[arg(long, value_name = "DIR", env = "CASED_STORE", default_value = DEFAULT_STORE, global = true)]
    store: PathBuf,

    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once: only its SHA-256 hash is kept).
    Create {
        /// What the key may do: `ingest` posts deployment events, `read` reads the API.
        #[arg(long, value_enum)]
        scope: Scope,
        /// A name to recognise the key by in `cased keys list`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List the keys (id, name, scope, created, revoked), never the keys themselves.
    List,
    /// Revoke a key by id: it is refused (401) from now on.
    Revoke {
        /// The key's id (`key_...`, from `cased keys list`).
        id: String,
    },
}

/// Runs `cased keys`.
pub(crate) fn keys(args: KeysArgs) -> Result<(), Failure> {
    let store = store::Store::open(&args.store.join(SERVE_FILE)).map_err(Failure::Other)?;
    match args.command {
        KeysCommand::Create { scope, name } => {
            let (id, key) = store
                .create_key(scope, name.as_deref())
                .map_err(Failure::Other)?;
            eprintln!(
                "created {} key {id}; it is shown once, keep it now (only its hash is stored):",
                scope.as_str()
            );
            println!("{key}");
        }
        KeysCommand::List => {
            let keys = store.list_keys().map_err(Failure::Other)?;
            if keys.is_empty() {
                println!("no keys; create one with `cased keys create --scope ingest`");
            }
            for k in keys {
                println!(
                    "{:<18} {:<7} {:<20} {}",
                    k.id,
                    k.scope.as_str(),
                    k.name.as_deref().unwrap_or("-"),
                    if k.revoked_at_unix_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        KeysCommand::Revoke { id } => {
            if !store.revoke_key(&id).map_err(Failure::Other)? {
                return Err(Failure::Other(format!("no active key {id:?}")));
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct App {
    store: store::Store,
    history: Arc<SqliteHistory>,
    services: Vec<services::Service>,
    /// Running sessions by deployment id.
    sessions: Mutex<HashMap<String, Session>>,
    /// What the event stream (`/api/v1/events`) sends.
    events: broadcast::Sender<ServerEvent>,
    /// The ingest writer (`ingest.rs`).
    ingest: ingest::Queue,
    auth: bool,
    /// `--public-url`.
    public_url: Option<String>,
    /// `true` once the server is stopping: event streams and long polls end, so the graceful
    /// shutdown does not wait for them.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Runs `cased serve` until Ctrl-C or SIGTERM.
impl ServeArgs {
    /// The server of `cased demo --serve`: no keys (loopback only), `store`, `config`.
    pub(crate) fn demo(listen: SocketAddr, store: PathBuf, config: PathBuf) -> Self {
        Self {
            listen,
            store,
            config: Some(config),
            no_auth: true,
            public_url: None,
        }
    }
}

/// Runs `cased serve` until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    run_notifying(args, None).await
}

/// Runs `cased serve`, sending the address it listens on to `ready` once the port is open.
pub(crate) async fn run_notifying(
    args: ServeArgs,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), Failure> {
    if args.no_auth && !args.listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "--no-auth is allowed only on a loopback address (127.0.0.1, ::1), not {}: \
             create a key with `cased keys create` instead",
            args.listen
        )));
    }
    if let Some(url) = &args.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Failure::Usage(format!(
            "--public-url {url:?} must be an absolute http(s) URL"
        )));
    }
    let store = store::Store::open(&args.store.join(SERVE_FILE)).map_err(Failure::Other)?;
    let history = open_history(&args.store.join(HISTORY_FILE))?;
    let baselines = open_baselines(&args.store.join(BASELINES_FILE))?;
    let config = match args.config {
        Some(path) => Some(path),
        None => Some(PathBuf::from("cased.toml")).filter(|p| p.exists()),
    };
    let services = match &config {
        Some(path) => services::load(path, &history, &baselines)?,
        None => Vec::new(),
    };
    let interrupted = store
        .interrupt_running(
            "cased serve stopped while this deployment was monitored; the session was not resumed \
             (its ticks so far are in history)",
        )
        .map_err(Failure::Other)?;
    store
        .prune_idempotency(store::now_ms())
        .map_err(Failure::Other)?;
    for id in &interrupted {
        eprintln!(
            "deployment {id} was being monitored when cased serve stopped: marked interrupted"
        );
    }
    // The ingest writer's own connection: its transactions never block the readers.
    let ingest_store = store::Store::open(&args.store.join(SERVE_FILE)).map_err(Failure::Other)?;
    let app = Arc::new_cyclic(|app| App {
        store,
        history,
        services,
        sessions: Mutex::new(HashMap::new()),
        events: broadcast::channel(EVENT_BUFFER).0,
        ingest: ingest::Queue::start(app.clone(), ingest_store),
        auth: !args.no_auth,
        public_url: args.public_url,
        stopping: tokio::sync::watch::channel(false).0,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener.local_addr().map_err(Failure::Io)?;
    describe_startup(&app, config.as_deref(), &args.store);
    // The line tests and scripts wait for: the port is open once it is printed.
    eprintln!("cased serve: listening on http://{local}");
    if let Some(ready) = ready {
        let _ = ready.send(local);
    }
    let stopping = Arc::clone(&app);
    axum::serve(listener, api::router(Arc::clone(&app)))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            stopping.stopping.send_replace(true);
        })
        .await
        .map_err(|e| Failure::Other(format!("the server failed: {e}")))?;
    let running = app.sessions.lock().expect("sessions lock").len();
    if running > 0 {
        eprintln!(
            "cased serve: {running} deployment{} still monitored; marked interrupted at the next start",
            if running == 1 { " was" } else { "s were" }
        );
    }
    eprintln!("cased serve: stopped");
    Ok(())
}

fn describe_startup(app: &App, config: Option<&Path>, store: &Path) {
    match config {
        Some(path) => eprintln!(
            "cased serve: {} service{} from {}",
            app.services.len(),
            if app.services.len() == 1 { "" } else { "s" },
            path.display()
        ),
        None => eprintln!("cased serve: no cased.toml; deployments are stored and not monitored"),
    }
    eprintln!("cased serve: store {}", store.display());
    if !app.auth {
        eprintln!("cased serve: --no-auth: requests are not authenticated (loopback only)");
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// One message of the event stream: `deployment` (a deployment was created or changed: its
/// new state) or `status` (a session's `StatusUpdate`).
#[derive(Debug, Clone)]
pub(crate) struct ServerEvent {
    pub(crate) kind: &'static str,
    pub(crate) deployment_id: Arc<str>,
    /// The JSON sent as the event's data.
    pub(crate) data: Arc<str>,
}

impl App {
    /// Runs `f` on a blocking thread: the store's SQLite calls (and a commit's fsync) never hold
    /// up the async workers that serve the event streams and run the sessions.
    pub(crate) async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Arc<Self>) -> T + Send + 'static,
    ) -> T {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&app))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// The session monitoring deployment `id`, if one runs.
    pub(crate) fn session(&self, id: &str) -> Option<Session> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(id)
            .cloned()
    }

    /// Stops the sessions of deployments `ids` whose start was not committed.
    pub(crate) fn abandon_sessions<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        for id in ids {
            if let Some(s) = sessions.remove(id) {
                s.cancel();
            }
        }
    }

    /// Starts monitoring deployment `id` with `service`; the session id (the caller records it).
    pub(crate) fn start_session(
        self: &Arc<Self>,
        id: &str,
        service: &services::Service,
        event: DeploymentEvent,
    ) -> Result<String, String> {
        let session = service
            .monitor
            .start(event)
            .map_err(|e| format!("cannot start monitoring: {e}"))?;
        let session_id = session.id().to_owned();
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(id.to_owned(), session.clone());
        let app = Arc::clone(self);
        let id = id.to_owned();
        tokio::spawn(async move {
            let mut updates = session.updates();
            while let Some(item) = updates.next().await {
                if let UpdateEvent::Update(u) = item {
                    app.publish(
                        "status",
                        &id,
                        &serde_json::json!({"deployment_id": id, "update": &*u}),
                    );
                }
            }
            // The core wrote the report to history before `wait` returns.
            let report = session.wait().await;
            let owned = id.clone();
            let stored = app
                .db(move |a| {
                    a.store
                        .set_finished(&owned, report.verdict, &report.reason)
                        .and_then(|()| a.store.get(&owned))
                })
                .await;
            app.sessions.lock().expect("sessions lock").remove(&id);
            match stored {
                Ok(Some(d)) => app.publish_deployment(&d),
                Ok(None) => {}
                Err(e) => eprintln!("warning: deployment {id}: {e}"),
            }
        });
        Ok(session_id)
    }

    /// Resolves once the server is stopping.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        // An error means the sender is gone: stopping too.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    pub(crate) fn publish_deployment(&self, d: &store::Deployment) {
        self.publish("deployment", &d.id, &serde_json::json!({"deployment": d}));
    }

    fn publish(&self, kind: &'static str, deployment_id: &str, data: &serde_json::Value) {
        // No listener is not an error.
        let _ = self.events.send(ServerEvent {
            kind,
            deployment_id: deployment_id.into(),
            data: data.to_string().into(),
        });
    }
}
