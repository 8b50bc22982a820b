//! `cased notify`: build a deployment event from flags and/or the CI environment and post it.
//!
//! ```text
//! cased notify -m "Deploy v1.4.2" --repository acme/checkout --status running \
//!     --commit-sha 4f2a9c1 --ref refs/heads/main --environment production
//! cased notify --from-ci --status success          # GitHub Actions or GitLab CI
//! cased notify --from-ci --dry-run                 # print the JSON, send nothing
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use cased_core::{
    Client, DeploymentEvent, DeploymentEventBuilder, DeploymentStatus, Error, FieldError, Secret,
    ValidationErrors,
};
use serde_json::Value;

use crate::Failure;

/// Flags of `cased notify`. Flags override what `--from-ci` read from the environment.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 delivered, 1 the API refused or failed, 3 usage or validation error."
)]
pub(crate) struct NotifyArgs {
    #[command(flatten)]
    pub(crate) event: EventArgs,

    /// The API key. Prefer the environment variable: flags show up in process listings.
    #[arg(long, env = cased_core::API_KEY_ENV, hide_env_values = true, value_name = "KEY", value_parser = parse_secret)]
    api_key: Option<Secret>,

    /// The API's base URL [default: https://app.cased.com].
    #[arg(long, env = "CASED_BASE_URL", value_name = "URL")]
    base_url: Option<String>,

    /// Timeout per attempt, not of the whole call, e.g. 10s, 1500ms [default: 10s]. Retried
    /// attempts each get it again, plus the backoff between them: the call can take up to
    /// (1 + max-retries) timeouts and the backoff. `--max-retries 0` bounds it by one timeout.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,

    /// Retries after the first attempt [default: 3].
    #[arg(long, value_name = "N")]
    max_retries: Option<u32>,

    /// Print the JSON that would be sent, and send nothing (no API key needed).
    #[arg(long)]
    dry_run: bool,
}

/// The flags that describe a deployment event, shared by `cased notify` and `cased monitor`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventArgs {
    /// What is being deployed, for a person (e.g. "Deploy v1.4.2"). Required unless --from-ci.
    #[arg(short = 'm', long, value_name = "TEXT")]
    deployment_request: Option<String>,

    /// The repository: owner/name, or group/sub/project on GitLab.
    #[arg(long, value_name = "OWNER/NAME")]
    repository: Option<String>,

    /// pending, running, success, failure or cancelled [default: success].
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,

    /// Link to the pipeline or deployment page (absolute http(s) URL).
    #[arg(long, value_name = "URL")]
    external_url: Option<String>,

    /// The deployed commit (7 to 64 hex characters).
    #[arg(long, value_name = "SHA")]
    commit_sha: Option<String>,

    /// The deployed commit's message.
    #[arg(long, value_name = "TEXT")]
    commit_message: Option<String>,

    /// The git ref (refs/heads/main, or a bare branch or tag name).
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,

    /// The environment deployed to (event_metadata.environment).
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,

    /// An event_metadata entry; repeatable. VALUE is parsed as JSON when it parses
    /// (42, true, {"a":1}, "quoted") and kept as a string otherwise.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    metadata: Vec<String>,

    /// Start from the CI environment (GitHub Actions or GitLab CI); other flags override it.
    #[arg(long)]
    from_ci: bool,
}

fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// Runs `cased notify`: prints the JSON it would send (`--dry-run`) or the server's answer.
pub(crate) async fn run(args: NotifyArgs) -> Result<(), Failure> {
    let event = build_event(&args.event, &process_env(), None);
    if args.dry_run {
        return print_line(&event?.to_json());
    }
    let client = build_client(&args);
    let (event, client) = match (event, client) {
        (Ok(event), Ok(client)) => (event, client),
        // Report the problems of the event and of the client settings together.
        (event, client) => return Err(merge_validation(event.err(), client.err()).into()),
    };
    let answer = client.create_deployment(&event).await?;
    let json = serde_json::to_string(&answer).expect("an API response always serializes");
    print_line(&json)
}

/// The process environment; variables whose name or value is not UTF-8 are skipped (where
/// `std::env::vars` would panic) since no variable cased reads can be one.
pub(crate) fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn print_line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// The event the flags (over the CI environment `env` with `--from-ci`) describe. Without
/// `--deployment-request` and `--from-ci`, `default_request` is used, and when that is `None`
/// too the request is reported missing.
///
/// # Errors
/// [`Error::Validation`] listing every problem: unparsable `--status` and `--metadata` values
/// as well as every rule of the event.
pub(crate) fn build_event(
    args: &EventArgs,
    env: &HashMap<String, String>,
    default_request: Option<&str>,
) -> Result<DeploymentEvent, Error> {
    let env = if args.from_ci {
        env.clone()
    } else {
        HashMap::new()
    };
    let env = &env;
    let mut problems: Vec<FieldError> = Vec::new();
    let mut builder = if args.from_ci {
        DeploymentEventBuilder::from_ci_env(env).unwrap_or_else(|e| {
            problems.extend_from_slice(e.field_errors());
            // Keep validating the flags; the request is not what is wrong here.
            DeploymentEvent::builder("-")
        })
    } else {
        DeploymentEvent::builder(default_request.unwrap_or(""))
    };
    let request_missing =
        !args.from_ci && args.deployment_request.is_none() && default_request.is_none();
    if let Some(v) = &args.deployment_request {
        builder = builder.deployment_request(v);
    }
    if let Some(v) = &args.repository {
        builder = builder.repository(v);
    }
    if let Some(v) = &args.status {
        match DeploymentStatus::parse(v) {
            Ok(status) => builder = builder.status(status),
            Err(e) => problems.extend_from_slice(e.field_errors()),
        }
    }
    if let Some(v) = &args.external_url {
        builder = builder.external_url(v);
    }
    if let Some(v) = &args.commit_sha {
        builder = builder.commit_sha(v);
    }
    if let Some(v) = &args.commit_message {
        builder = builder.commit_message(v);
    }
    if let Some(v) = &args.git_ref {
        builder = builder.git_ref(v);
    }
    for item in &args.metadata {
        match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
                builder = builder.metadata_entry(key.trim(), value);
            }
            _ => problems.push(FieldError::new(
                "event_metadata",
                format!("{item:?} is not KEY=VALUE"),
            )),
        }
    }
    if let Some(v) = &args.environment {
        builder = builder.environment(v);
    }
    let built = builder.build();
    let mut built_problems: Vec<FieldError> = built
        .as_ref()
        .err()
        .map(|e| e.field_errors().to_vec())
        .unwrap_or_default();
    if request_missing {
        for p in built_problems
            .iter_mut()
            .filter(|p| p.field == "deployment_request")
        {
            p.message = String::from("is required: pass --deployment-request (-m) or --from-ci");
        }
    }
    problems.extend(built_problems);
    if problems.is_empty() {
        return built;
    }
    // Present the problems in wire-field order, whichever step found them.
    problems.sort_by_key(|p| field_rank(&p.field));
    Err(Error::Validation(ValidationErrors {
        subject: String::from("deployment event"),
        errors: problems,
    }))
}

fn build_client(args: &NotifyArgs) -> Result<Client, Error> {
    let mut builder = Client::builder();
    if let Some(key) = &args.api_key {
        builder = builder.api_key(key.clone());
    }
    if let Some(url) = &args.base_url {
        builder = builder.base_url(url);
    }
    if let Some(timeout) = args.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(n) = args.max_retries {
        builder = builder.max_retries(n);
    }
    builder.build()
}

/// One validation error holding the field problems of both; a non-validation error wins as is.
fn merge_validation(event: Option<Error>, client: Option<Error>) -> Error {
    let mut errors = Vec::new();
    for e in [event, client].into_iter().flatten() {
        match e {
            Error::Validation(v) => errors.extend(v.errors),
            other => return other,
        }
    }
    Error::Validation(ValidationErrors {
        subject: String::from("notify arguments"),
        errors,
    })
}

const FIELD_ORDER: [&str; 9] = [
    "deployment_request",
    "repository_full_name",
    "status",
    "external_url",
    "commit_sha",
    "commit_message",
    "ref",
    "event_metadata",
    "environment",
];

fn field_rank(field: &str) -> usize {
    let base = field.split('.').next().unwrap_or(field);
    FIELD_ORDER
        .iter()
        .position(|f| *f == base)
        .unwrap_or(FIELD_ORDER.len())
}

/// The flag that sets a field, to point the user at it in error messages.
pub(crate) fn flag_for(field: &str) -> Option<&'static str> {
    Some(match field {
        "deployment_request" => "--deployment-request",
        "repository_full_name" => "--repository",
        "status" => "--status",
        "external_url" => "--external-url",
        "commit_sha" => "--commit-sha",
        "commit_message" => "--commit-message",
        "ref" => "--ref",
        "event_metadata.environment" => "--environment",
        "event_metadata" => "--metadata",
        "environment" => "--from-ci",
        "api_key" => "--api-key",
        "base_url" => "--base-url",
        "timeout" => "--timeout",
        "max_retries" => "--max-retries",
        _ => return None,
    })
}
